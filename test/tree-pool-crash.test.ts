/**
 * Crashes while a tree over a buffer pool writes its dirty pages back (test/fixtures/tree-pool-cycles.ts:
 * a 32-frame pool, seeded puts, some in overflow chains, and deletes, a write-back whenever a quarter
 * of the frames are dirty). Each write-back copies every dirty page at one moment between writes, so
 * after any crash and the repair open does (repairTornPages) the page file must hold the tree exactly
 * as of one write-back: the last that returned, or the one under way. Every page checksum must hold,
 * and the tree reopened from the file must pass checkTree.
 *
 * - SIGKILL: a child writes over real files with real fsync until it is killed at a seeded point.
 * - Power loss: the same writes run in-process under the fault file layer, whose journal is cut at
 *   seeded records (half of them just after a write of the double-write file, before its sync) and
 *   the directory rebuilt as a power loss there could leave it (the synced bytes plus a random part
 *   of the rest, 'prefix' and 'subset' orders). Some images must need the double-write file, or the
 *   test proves nothing about it.
 *
 *   LIGHTNING_SEED=<n>                     replay the seeded choices (printed at the start)
 *   LIGHTNING_TREE_POOL_KILLS=<n>          SIGKILL rounds (default 4)
 *   LIGHTNING_TREE_POWER_LOSSES=<n>        power-loss images (default 80)
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferPool } from '../src/shared-memory/pool/buffer-pool.js';
import { PooledPageSpace } from '../src/shared-memory/pool/pooled-page-space.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { installFileLayer, nodeFileLayer } from '../src/storage/file-layer.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import {
  createPageFile,
  pageFileProblems,
  repairTornPages,
} from '../src/storage/page-file/page-file-writer.js';
import { runUntilKilled } from './crash/kill-harness.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import {
  cyclesFramesMax,
  cyclesPageSize,
  cyclesPagesMax,
  runTreeWriteBacks,
  treeDigest,
} from './fixtures/tree-pool-cycles.js';
import { createFileLayer, noteInJournal } from './support/fault-file-layer.js';
import { journalEnvName, readJournal } from './support/fault-journal.js';
import { type LossPolicy, PowerLossReplay, writeImage } from './support/power-loss-image.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x7ee0_c001);
console.log(`tree-pool-crash: seed ${seed} (LIGHTNING_SEED to replay)`);
const kills = positiveFromEnv('LIGHTNING_TREE_POOL_KILLS', 4);
const powerLosses = positiveFromEnv('LIGHTNING_TREE_POWER_LOSSES', 80);
const powerLossOperations = 3000;
const childScript = fileURLToPath(new URL('./crash/tree-pool-crash-child.ts', import.meta.url));

/** What the writer reported: each write-back's digest, and the last one started and returned. */
class WriteBacks {
  readonly digests: string[] = [];
  lastStarted = -1;
  lastDone = -1;
  metaPageId = 0;

  /** Takes one report line: "M <meta>", "S <n> <digest>" or "D <n>". */
  take(line: string): void {
    const [kind, n, digest] = line.trim().split(' ');
    if (kind === 'M') this.metaPageId = Number(n);
    else if (kind === 'S') {
      this.lastStarted = Number(n);
      this.digests[this.lastStarted] = digest!;
    } else if (kind === 'D') this.lastDone = Number(n);
  }

  /** The digests the file may hold now: the last write-back that returned, or the one under way. */
  allowed(): string[] {
    return [this.lastDone, this.lastStarted].filter((n) => n >= 0).map((n) => this.digests[n]!);
  }
}

/** Repairs `dir` as open would, then everything wrong with it; `repaired` counts pages put back. */
async function recoverAndCheck(
  dir: string,
  expected: WriteBacks,
): Promise<{ repaired: number; problems: string[] }> {
  const repaired = await repairTornPages(dir, cyclesPageSize);
  const problems = await pageFileProblems(dir, cyclesPageSize);
  if (problems.length > 0) return { repaired, problems: problems.slice(0, 3) };
  const file = await PageFileReader.open(dir, { pageSizeBytes: cyclesPageSize, partition: 0 });
  const pool = BufferPool.create(
    {
      pageSizeBytes: cyclesPageSize,
      pagesMax: cyclesPagesMax,
      framesMax: cyclesFramesMax,
      ...file.poolStart(),
    },
    file,
  );
  try {
    const tree = BTree.openOn(PooledPageSpace.forOwner(pool), expected.metaPageId);
    checkTree(tree);
    const digest = treeDigest(tree);
    if (!expected.allowed().includes(digest)) {
      problems.push(`the tree is not as of write-back ${expected.lastDone} or ${expected.lastStarted}`);
    }
  } catch (error) {
    problems.push(String(error));
  } finally {
    pool.detach();
    file.close();
  }
  return { repaired, problems };
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-tree-pool-crash-'));
});

afterEach(async () => {
  installFileLayer(nodeFileLayer);
  await rm(dir, { recursive: true, force: true });
});

describe('tree write-backs under SIGKILL', () => {
  it('leaves the tree as of one write-back, whole', async () => {
    const random = mulberry32(seed);
    let writeBacksDone = 0;
    for (let round = 0; round < kills; round++) {
      const roundDir = join(dir, `round-${round}`);
      await mkdir(roundDir);
      await createPageFile(roundDir, { pageSizeBytes: cyclesPageSize, partition: 0 });
      const expected = new WriteBacks();
      const killAfter = 1 + (random() % 40);
      const killDelayMs = random() % 4;
      await runUntilKilled({
        script: childScript,
        args: [roundDir, String(seed + round)],
        reachKillPointMs: 60_000,
        planText: `after ${killAfter} write-backs and ${killDelayMs} ms`,
        onLine: (line, control) => {
          expected.take(line);
          if (line.startsWith('D ') && expected.lastDone >= killAfter) control.killAfter(killDelayMs);
        },
        judgeExit: (_code, signal, killedAtMs) =>
          signal === 'SIGKILL' && killedAtMs !== null
            ? null
            : `the child ended by ${String(signal)}, not the kill`,
      });
      const { problems } = await recoverAndCheck(roundDir, expected);
      expect(problems, `round ${round}, seed ${seed}`).toEqual([]);
      writeBacksDone += expected.lastDone;
    }
    expect(writeBacksDone).toBeGreaterThanOrEqual(kills);
  }, 180_000);
});

describe('tree write-backs under power loss', () => {
  it('holds the tree as of one write-back after any power loss, repaired and whole', async () => {
    const random = mulberry32(seed ^ 0x5bd1_e995);
    const live = join(dir, 'live');
    await mkdir(live);
    await createPageFile(live, { pageSizeBytes: cyclesPageSize, partition: 0 });
    const replay = await PowerLossReplay.fromDirectory(live);
    const journal = join(dir, 'journal');
    process.env[journalEnvName] = journal;
    installFileLayer(createFileLayer());
    let metaPageId = 0;
    try {
      await runTreeWriteBacks(
        live,
        seed,
        powerLossOperations,
        {
          starting: (n, digest) => noteInJournal(`S ${n} ${digest}`),
          done: (n) => noteInJournal(`D ${n}`),
        },
        (meta) => {
          metaPageId = meta;
        },
      );
    } finally {
      installFileLayer(nodeFileLayer);
    }
    const records = readJournal(journal);
    // Cut only after the empty tree's first write-back returned: before it there is no tree to check.
    const firstDone = records.findIndex(
      (record) => record.header.op === 'note' && record.header.text === 'D 0',
    );
    const span = records.length - firstDone;
    // Half the cuts anywhere; half just after a write of the double-write file and before its sync,
    // where a power loss leaves part of a set behind: the case a repair must refuse to use.
    const doubleWriteHandles = new Set<string>();
    const afterDoubleWrites: number[] = [];
    for (const [at, record] of records.entries()) {
      const header = record.header;
      if (header.op === 'open' && header.path.endsWith('pages.dwb')) doubleWriteHandles.add(header.h);
      if (header.op === 'write' && doubleWriteHandles.has(header.h) && at > firstDone)
        afterDoubleWrites.push(at + 1);
    }
    const cuts = Array.from({ length: powerLosses }, (_, i) =>
      i % 2 === 0 || afterDoubleWrites.length === 0
        ? firstDone + 1 + (random() % span)
        : afterDoubleWrites[random() % afterDoubleWrites.length]!,
    ).sort((a, b) => a - b);
    const expected = new WriteBacks();
    expected.metaPageId = metaPageId;
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
      for (const problem of problems)
        failures.push(`cut ${cut} of ${records.length} (${policy.order}): ${problem}`);
      await rm(target, { recursive: true, force: true });
    }
    console.log(
      `tree-pool-crash power loss: ${expected.lastDone} write-backs reached, ${records.length} journal records, ` +
        `${powerLosses} images, ${needingRepair} needed the double-write file`,
    );
    expect(failures.slice(0, 8), `seed ${seed}`).toEqual([]);
    expect(needingRepair).toBeGreaterThanOrEqual(Math.ceil(powerLosses / 20));
  }, 240_000);
});
