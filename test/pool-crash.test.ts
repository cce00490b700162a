/**
 * Crashes during the buffer pool's checkpoints (writeDirtyPages: the double-write file, then the pages
 * in place) with a small pool, and the recovery at open (repairTornPages):
 *
 * - SIGKILL: a child runs checkpoint cycles over real files with real fsync until it is killed at a
 *   seeded point. The file afterwards holds every page sound, each at a generation at least the one
 *   last acknowledged (a checkpoint returned) and at most the last one written.
 * - Power loss: the same cycles run in-process under the fault file layer, whose journal is then cut
 *   at seeded records and the directory rebuilt as a power loss there could leave it: the synced bytes
 *   plus a random part of the rest, kept whole, torn or lost ('prefix' and 'subset' orders). Each
 *   image is repaired and checked like the killed child's. Some images must need the double-write
 *   file (pages torn or lost in place), or the test would not prove that path.
 *
 *   LIGHTNING_SEED=<n>                   replay the seeded choices (printed at the start)
 *   LIGHTNING_POOL_CRASH_KILLS=<n>       SIGKILL rounds (default 4)
 *   LIGHTNING_POOL_POWER_LOSSES=<n>      power-loss images (default 120)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installFileLayer, nodeFileLayer } from '../src/storage/file-layer.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import { pageFileProblems, repairTornPages } from '../src/storage/page-file/page-file-writer.js';
import { runUntilKilled } from './crash/kill-harness.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import { crashPageCount, runCheckpointCycles } from './fixtures/pool-crash-cycles.js';
import { buildStressPageFile, readStressPage, stressPageSize } from './fixtures/pool-stress-pages.js';
import { createFileLayer, noteInJournal } from './support/fault-file-layer.js';
import { journalEnvName, readJournal } from './support/fault-journal.js';
import { type LossPolicy, PowerLossReplay, writeImage } from './support/power-loss-image.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0xc2a5_b001);
console.log(`pool-crash: seed ${seed} (LIGHTNING_SEED to replay)`);
const kills = positiveFromEnv('LIGHTNING_POOL_CRASH_KILLS', 4);
const powerLosses = positiveFromEnv('LIGHTNING_POOL_POWER_LOSSES', 120);
const powerLossCycles = 40;
const childScript = fileURLToPath(new URL('./crash/pool-crash-child.ts', import.meta.url));

/** Per page: the last generation acknowledged and the last one written; the file must lie between. */
class Expectations {
  readonly acknowledged = new Array<number>(crashPageCount + 1).fill(0);
  readonly written = new Array<number>(crashPageCount + 1).fill(0);

  /** Takes one report line: "W <page> <generation>" or "A <page>:<generation>,...". */
  take(line: string): void {
    if (line.startsWith('W ')) {
      const [, page, generation] = line.trim().split(' ');
      this.written[Number(page)] = Number(generation);
    } else if (line.startsWith('A ')) {
      for (const pair of line.slice(2).trim().split(',')) {
        const [page, generation] = pair.split(':').map(Number) as [number, number];
        this.acknowledged[page] = Math.max(this.acknowledged[page]!, generation);
      }
    }
  }
}

/** Repairs `dir` as open() would, then lists every way its pages fail `expected`; returns both. */
async function recoverAndCheck(
  dir: string,
  expected: Expectations,
): Promise<{ repaired: number; problems: string[] }> {
  const repaired = await repairTornPages(dir, stressPageSize);
  const problems = await pageFileProblems(dir, stressPageSize);
  if (problems.length > 0) return { repaired, problems };
  const reader = await PageFileReader.open(dir, { pageSizeBytes: stressPageSize, partition: 0 });
  try {
    const frame = new Uint8Array(stressPageSize);
    for (let pageId = 1; pageId <= crashPageCount; pageId++) {
      reader.load(pageId, frame);
      const seen = readStressPage(frame, 0);
      const low = expected.acknowledged[pageId]!;
      const high = expected.written[pageId]!;
      if (seen.pageId !== pageId || !seen.whole) problems.push(`page ${pageId}: not one whole write of it`);
      else if (seen.generation < low || seen.generation > high) {
        problems.push(`page ${pageId}: generation ${seen.generation}, expected ${low}..${high}`);
      }
    }
  } finally {
    reader.close();
  }
  return { repaired, problems };
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-pool-crash-'));
});

afterEach(async () => {
  installFileLayer(nodeFileLayer);
  await rm(dir, { recursive: true, force: true });
});

describe('buffer pool checkpoints under SIGKILL', () => {
  it('keeps every acknowledged page and every page sound', async () => {
    const random = mulberry32(seed);
    let acknowledgedTotal = 0;
    for (let round = 0; round < kills; round++) {
      const roundDir = join(dir, `round-${round}`);
      const { mkdir } = await import('node:fs/promises');
      await mkdir(roundDir);
      await buildStressPageFile(roundDir, crashPageCount);
      const expected = new Expectations();
      const killAtAck = 1 + (random() % 30);
      const killDelayMs = random() % 4;
      let acks = 0;
      await runUntilKilled({
        script: childScript,
        args: [roundDir, String(seed + round)],
        reachKillPointMs: 60_000,
        planText: `after ${killAtAck} checkpoints and ${killDelayMs} ms`,
        onLine: (line, control) => {
          expected.take(line);
          if (line.startsWith('A ') && ++acks >= killAtAck) control.killAfter(killDelayMs);
        },
        judgeExit: (_code, signal, killedAtMs) =>
          signal === 'SIGKILL' && killedAtMs !== null
            ? null
            : `the child ended by ${String(signal)}, not the kill`,
      });
      const { problems } = await recoverAndCheck(roundDir, expected);
      expect(problems, `round ${round}, seed ${seed}`).toEqual([]);
      acknowledgedTotal += expected.acknowledged.filter((generation) => generation > 0).length;
    }
    expect(acknowledgedTotal).toBeGreaterThan(0);
  }, 180_000);
});

describe('buffer pool checkpoints under power loss', () => {
  it('repairs torn in-place writes from the double-write file and keeps every acknowledged page', async () => {
    const random = mulberry32(seed ^ 0x5bd1_e995);
    const live = join(dir, 'live');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(live);
    await buildStressPageFile(live, crashPageCount);
    const replay = await PowerLossReplay.fromDirectory(live);
    const journal = join(dir, 'journal');
    process.env[journalEnvName] = journal;
    installFileLayer(createFileLayer());
    try {
      await runCheckpointCycles(live, seed, powerLossCycles, {
        write: (pageId, generation) => noteInJournal(`W ${pageId} ${generation}`),
        acknowledge: (pages) =>
          noteInJournal(`A ${pages.map(([pageId, generation]) => `${pageId}:${generation}`).join(',')}`),
      });
    } finally {
      installFileLayer(nodeFileLayer);
    }
    const records = readJournal(journal);
    const cuts = Array.from({ length: powerLosses }, () => random() % (records.length + 1)).sort(
      (a, b) => a - b,
    );
    const expected = new Expectations();
    const policies: LossPolicy[] = [
      { order: 'prefix', keep: 0.5, tear: 0.5 },
      { order: 'subset', keep: 0.5, tear: 0.3 },
    ];
    let applied = 0;
    let needingRepair = 0;
    const failures: string[] = [];
    for (const [index, cut] of cuts.entries()) {
      for (; applied < cut; applied++) {
        const record = records[applied]!;
        if (record.header.op === 'note') expected.take(record.header.text);
        else replay.apply(record);
      }
      const policy = policies[index % policies.length]!;
      const image = replay.image(random, policy);
      const target = join(dir, `image-${index}`);
      await writeImage(image, target);
      const { repaired, problems } = await recoverAndCheck(target, expected);
      if (repaired > 0) needingRepair++;
      for (const problem of problems) {
        failures.push(
          `cut ${cut} of ${records.length} (${policy.order}): ${problem}; ${image.choices.slice(0, 4).join('; ')}`,
        );
      }
      await rm(target, { recursive: true, force: true });
    }
    console.log(
      `pool-crash power loss: ${powerLosses} images over ${records.length} journal records; ` +
        `${needingRepair} needed the double-write file`,
    );
    expect(failures.slice(0, 10), `seed ${seed}`).toEqual([]);
    // The double-write path must have been exercised, or the images proved nothing about it.
    expect(needingRepair).toBeGreaterThanOrEqual(Math.ceil(powerLosses / 20));
  }, 180_000);
});
