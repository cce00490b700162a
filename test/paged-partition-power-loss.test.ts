/**
 * Power loss under a partition whose tree lives in a page file behind a 48-frame buffer pool, with
 * the real write-ahead log (test/fixtures/paged-partition-cycles.ts: each operation logged and
 * fdatasynced, applied, acknowledged; a checkpoint every 150 operations writing a page set, recording
 * it in the manifest and removing the log segments below it; a set whenever the pool is full). The
 * writes run in-process under the fault file layer, whose journal is cut at seeded records: half
 * anywhere, half just after a write of the double-write file, a manifest's rename, or a log segment's
 * removal. The directory is rebuilt as a power loss there could leave it (the synced bytes plus a
 * random part of the rest, 'prefix' and 'subset' orders) and opened as an owner would, with 24 frames.
 * It must hold every operation acknowledged before the cut and nothing else, but the one in flight;
 * pass checkTree; have every page of its file sound; and open a second time to the same tree.
 *
 *   LIGHTNING_SEED=<n>                    replay the seeded choices (printed at the start)
 *   LIGHTNING_PAGED_POWER_LOSSES=<n>      power-loss images (default 40)
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { installFileLayer, nodeFileLayer } from '../src/storage/file-layer.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import {
  createPagedDatabase,
  openPagedPartition,
  PagedModel,
  pagedCheckFramesMax,
  pagedPageSize,
  runPagedWrites,
  treeDigest,
} from './fixtures/paged-partition-cycles.js';
import { createFileLayer, noteInJournal } from './support/fault-file-layer.js';
import { journalEnvName, readJournal } from './support/fault-journal.js';
import { type LossPolicy, PowerLossReplay, writeImage } from './support/power-loss-image.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x9a6e_d002);
console.log(`paged-partition-power-loss: seed ${seed} (LIGHTNING_SEED to replay)`);
const powerLosses = positiveFromEnv('LIGHTNING_PAGED_POWER_LOSSES', 40);
const operations = 1200;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-power-'));
});

afterEach(async () => {
  installFileLayer(nodeFileLayer);
  await rm(dir, { recursive: true, force: true });
});

/** What one image opened to, or why it is wrong. */
async function openAndCheck(target: string, model: PagedModel, inFlight: PagedModel): Promise<string[]> {
  const problems: string[] = [];
  let first: string | null = null;
  for (const pass of ['first open', 'second open']) {
    try {
      const opened = await openPagedPartition(target, 2, pagedCheckFramesMax);
      try {
        checkTree(opened.paged.tree);
        const digest = treeDigest(opened.paged.tree);
        if (first === null) {
          if (digest !== model.digest() && digest !== inFlight.digest())
            problems.push(
              `${pass}: the tree is not as of the acknowledged operations (or the one in flight)`,
            );
          first = digest;
        } else if (digest !== first) {
          problems.push(`${pass}: a different tree from the first open`);
        }
      } finally {
        opened.paged.close();
      }
    } catch (error) {
      problems.push(`${pass}: ${String(error)}`);
      break;
    }
  }
  const pages = await pageFileProblems(partitionDirectory(target, 0), pagedPageSize);
  if (pages.length > 0) problems.push(`page file: ${pages.slice(0, 3).join('; ')}`);
  return problems;
}

describe('a partition over a page file under power loss', () => {
  it('keeps every acknowledged write, whole, after any power loss', async () => {
    const random = mulberry32(seed);
    const live = join(dir, 'live');
    await mkdir(live);
    await createPagedDatabase(live);
    const replay = await PowerLossReplay.fromDirectory(live);
    const journal = join(dir, 'journal');
    process.env[journalEnvName] = journal;
    installFileLayer(createFileLayer());
    let checkpoints = 0;
    try {
      await runPagedWrites(live, seed, 1, operations, {
        acknowledged: (index) => noteInJournal(`A ${index}`),
        pageSet: (_redoLsn, forRoom) => {
          if (!forRoom) checkpoints++;
        },
      });
    } finally {
      installFileLayer(nodeFileLayer);
    }
    const records = readJournal(journal);
    // Half the cuts anywhere; half just after a step whose loss matters most: a write of the
    // double-write file (part of a set), a manifest's rename, a log segment's removal.
    const handles = new Set<string>();
    const pointed: number[] = [];
    for (const [at, record] of records.entries()) {
      const header = record.header;
      if (header.op === 'open' && header.path.endsWith('pages.dwb')) handles.add(header.h);
      if (
        (header.op === 'write' && handles.has(header.h)) ||
        (header.op === 'rename' && header.to.endsWith('MANIFEST.json')) ||
        (header.op === 'unlink' && header.path.endsWith('.log'))
      )
        pointed.push(at + 1);
    }
    const cuts = Array.from({ length: powerLosses }, (_, i) =>
      i % 2 === 0 || pointed.length === 0
        ? 1 + (random() % records.length)
        : pointed[random() % pointed.length]!,
    ).sort((a, b) => a - b);
    const policies: LossPolicy[] = [
      { order: 'prefix', keep: 0.5, tear: 0.5 },
      { order: 'subset', keep: 0.5, tear: 0.3 },
    ];
    // `model`: every operation acknowledged before the cut; `inFlight`: and the next one.
    const model = new PagedModel();
    const inFlight = new PagedModel();
    inFlight.apply(seed, 0);
    let acknowledged = -1;
    let applied = 0;
    const failures: string[] = [];
    for (const [index, cut] of cuts.entries()) {
      for (; applied < cut; applied++) {
        const record = records[applied]!;
        if (record.header.op !== 'note') {
          replay.apply(record);
          continue;
        }
        const text = record.header.text;
        if (!text.startsWith('A ')) continue;
        acknowledged = Number(text.slice(2));
        model.apply(seed, acknowledged);
        inFlight.apply(seed, acknowledged + 1);
      }
      const policy = policies[index % policies.length]!;
      const target = join(dir, `image-${index}`);
      await writeImage(replay.image(random, policy), target);
      for (const problem of await openAndCheck(target, model, inFlight))
        failures.push(
          `cut ${cut} of ${records.length} (${policy.order}, ${acknowledged + 1} acknowledged): ${problem}`,
        );
      await rm(target, { recursive: true, force: true });
    }
    console.log(
      `paged-partition-power-loss: ${operations} operations, ${checkpoints} checkpoints, ${records.length} journal ` +
        `records, ${powerLosses} images (${pointed.length} pointed cut places)`,
    );
    expect(failures.slice(0, 8), `seed ${seed}`).toEqual([]);
    expect(checkpoints).toBeGreaterThanOrEqual(Math.floor(operations / 150));
  }, 240_000);
});
