/**
 * Power loss while a tree over a buffer pool writes its dirty pages back. The owner's writes run
 * in-process under the fault file layer with a 32-frame pool: seeded puts (some in overflow chains)
 * and deletes, and a write-back whenever a quarter of the frames are dirty. Each write-back copies
 * every dirty page at one moment between writes, so the page file must always hold the tree exactly
 * as of one write-back: the last that returned before the power was cut, or the one under way.
 *
 * The journal is cut at seeded records and the directory rebuilt as a power loss there could leave
 * it (synced bytes plus a random part of the rest, 'prefix' and 'subset' orders). Each image is
 * repaired as open would (repairTornPages), every page checksum must hold, and the tree reopened from
 * the file must pass checkTree and hold one of those two states, key for key. Some images must need
 * the double-write file, or the test proves nothing about it.
 *
 *   LIGHTNING_SEED=<n>                     replay the seeded choices (printed at the start)
 *   LIGHTNING_TREE_POWER_LOSSES=<n>        power-loss images (default 80)
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
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
  writeDirtyPages,
} from '../src/storage/page-file/page-file-writer.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import { createFileLayer, noteInJournal } from './support/fault-file-layer.js';
import { journalEnvName, readJournal } from './support/fault-journal.js';
import { type LossPolicy, PowerLossReplay, writeImage } from './support/power-loss-image.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x7ee0_c001);
console.log(`tree-pool-crash: seed ${seed} (LIGHTNING_SEED to replay)`);
const powerLosses = positiveFromEnv('LIGHTNING_TREE_POWER_LOSSES', 80);
const pageSize = 4096;
const pagesMax = 4096;
const framesMax = 32;
const keyCount = 600;
const operations = 3000;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-tree-pool-crash-'));
});

afterEach(async () => {
  installFileLayer(nodeFileLayer);
  await rm(dir, { recursive: true, force: true });
});

/** A tree's entries in key order, as one string per entry. */
function entriesOf(tree: BTree): string[] {
  const out: string[] = [];
  for (const [key, value] of tree.range()) out.push(`${key.toString('hex')}=${value.toString('hex')}`);
  return out;
}

it('holds the tree as of one write-back after any power loss, repaired and whole', async () => {
  const random = mulberry32(seed);
  const live = join(dir, 'live');
  await mkdir(live);
  await createPageFile(live, { pageSizeBytes: pageSize, partition: 0 });
  const file = await PageFileReader.open(live, { pageSizeBytes: pageSize, partition: 0 });
  const pool = BufferPool.create({ pageSizeBytes: pageSize, pagesMax, framesMax, ...file.poolStart() }, file);
  const tree = BTree.createOn(PooledPageSpace.forOwner(pool));
  const metaPageId = tree.view.metaPageId;
  // The empty tree is in the file before the journal starts: state 0.
  await writeDirtyPages(pool, live, Number.MAX_SAFE_INTEGER);
  const states: string[][] = [entriesOf(tree)];
  const replay = await PowerLossReplay.fromDirectory(live);
  const journal = join(dir, 'journal');
  process.env[journalEnvName] = journal;
  installFileLayer(createFileLayer());
  const keys = Array.from({ length: keyCount }, (_, i) => Buffer.from(`k${i.toString().padStart(5, '0')}`));
  const writeBack = async (): Promise<void> => {
    await writeDirtyPages(pool, live, Number.MAX_SAFE_INTEGER);
    states.push(entriesOf(tree));
    noteInJournal(`B ${states.length - 1}`);
  };
  try {
    for (let op = 0; op < operations; op++) {
      const key = keys[random() % keyCount]!;
      if (random() % 4 === 0) {
        tree.delete(key);
      } else {
        const length = random() % 40 === 0 ? 4500 + (random() % 4000) : 20 + (random() % 300);
        const value = randomBytes(random, length);
        try {
          tree.put(key, value);
        } catch (error) {
          if ((error as { code?: string }).code !== 'ERR_PARTITION_FULL') throw error;
          await writeBack();
          tree.put(key, value);
        }
      }
      if (pool.dirtyPageCount() >= framesMax / 4) {
        await writeBack();
        pool.evict(framesMax / 2);
      }
    }
    await writeBack();
  } finally {
    installFileLayer(nodeFileLayer);
    pool.detach();
    file.close();
  }

  const records = readJournal(journal);
  const cuts = Array.from({ length: powerLosses }, () => random() % (records.length + 1)).sort(
    (a, b) => a - b,
  );
  const policies: LossPolicy[] = [
    { order: 'prefix', keep: 0.5, tear: 0.5 },
    { order: 'subset', keep: 0.5, tear: 0.3 },
  ];
  let applied = 0;
  let lastBoundary = 0;
  let needingRepair = 0;
  const failures: string[] = [];
  for (const [index, cut] of cuts.entries()) {
    for (; applied < cut; applied++) {
      const record = records[applied]!;
      if (record.header.op === 'note') lastBoundary = Number(record.header.text.slice(2));
      else replay.apply(record);
    }
    const policy = policies[index % policies.length]!;
    const image = replay.image(random, policy);
    const target = join(dir, `image-${index}`);
    await writeImage(image, target);
    const where = `cut ${cut} of ${records.length} (${policy.order}, after write-back ${lastBoundary})`;
    try {
      if ((await repairTornPages(target, pageSize)) > 0) needingRepair++;
      const problems = await pageFileProblems(target, pageSize);
      if (problems.length > 0) {
        failures.push(`${where}: ${problems.slice(0, 3).join('; ')}`);
        continue;
      }
      const reopenedFile = await PageFileReader.open(target, { pageSizeBytes: pageSize, partition: 0 });
      const reopenedPool = BufferPool.create(
        { pageSizeBytes: pageSize, pagesMax, framesMax, ...reopenedFile.poolStart() },
        reopenedFile,
      );
      try {
        const reopened = BTree.openOn(PooledPageSpace.forOwner(reopenedPool), metaPageId);
        checkTree(reopened);
        const entries = entriesOf(reopened).join('\n');
        const allowed = [lastBoundary, lastBoundary + 1].filter((state) => state < states.length);
        if (!allowed.some((state) => states[state]!.join('\n') === entries)) {
          failures.push(`${where}: the tree is not as of write-back ${allowed.join(' or ')}`);
        }
      } finally {
        reopenedPool.detach();
        reopenedFile.close();
      }
    } catch (error) {
      failures.push(`${where}: ${String(error)}`);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  }
  console.log(
    `tree-pool-crash: ${states.length - 1} write-backs, ${records.length} journal records, ${powerLosses} ` +
      `images, ${needingRepair} needed the double-write file`,
  );
  expect(failures.slice(0, 8), `seed ${seed}`).toEqual([]);
  expect(needingRepair).toBeGreaterThanOrEqual(Math.ceil(powerLosses / 20));
}, 240_000);
