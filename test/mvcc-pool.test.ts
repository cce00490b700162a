/**
 * The MVCC layer over buffer pools, against a model. One partition's main tree and version store each
 * live in a pool of their own holding a small share of their pages, over a real page file of their own;
 * the owner writes dirty pages back whenever half a pool's frames are dirty and evicts every clean
 * frame, so that reads and the writer's own descents keep missing. After a fill in key order, seeded
 * owner passes (test/fixtures/mvcc-pool-workload.ts) put (some values in overflow chains), overwrite
 * and delete keys in commit windows of increasing timestamps while snapshots open and close, so that
 * overwrites keep versions while an older snapshot is open and write in place while none is (every
 * fourth round opens none); two-phase commits prepare intents, committed or aborted passes later;
 * version cleanup runs with the oldest open snapshot.
 *
 * The model keeps every key's history of (commit timestamp, value or deleted). After every round, at
 * each open snapshot, point reads (VersionedReader) and snapshot scans (a partition cursor under the
 * merge db.snapshot().range() uses) must equal the model as of the snapshot; the newest reads and
 * the checkpoint's scan (readLatest) must equal the model's heads; and checkTree must pass for both
 * trees. A snapshot is also read a little when it is released. At the end, with every transaction
 * decided and every snapshot released, cleanup must empty the version store (no version retained, its
 * pages back to those of an empty tree) and leave no tombstone in the main tree, and each page file
 * must hold only sound pages.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed below>.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import { latestEntries } from '../src/workers/versioned-partition.js';
import { entriesAsText } from './fixtures/mvcc-pool-model.js';
import { mvccPoolPageSize, PooledPartition } from './fixtures/mvcc-pool-partition.js';
import { MvccPoolWorkload, type WorkloadShape } from './fixtures/mvcc-pool-workload.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x3ecc_9001);
console.log(`mvcc-pool: seed ${seed} (LIGHTNING_SEED to replay)`);

interface Shape extends WorkloadShape {
  name: string;
  rounds: number;
  /** Keys point-read at each open snapshot after a round (the newest reads read every key). */
  snapshotSample: number;
  /** Frames may be at most this share of the most pages each tree held: checked after the run. */
  framesShareMax: number;
}

const shapes: Shape[] = [
  {
    name: '1/16 of the pages',
    keys: 4000,
    batchMax: 3,
    shortBytesMax: 1000,
    longBytesMax: 12_000,
    snapshotsMax: 5,
    rounds: 6,
    opsPerRound: 400,
    snapshotSample: 600,
    pagesMax: 16_384,
    treeFrames: 64,
    versionFrames: 48,
    // The version store holds fewer pages than the tree: its 48 frames are about 1/8 of them.
    framesShareMax: 1 / 7,
  },
  // A handful of frames: the pages a write of two entries may change in either tree (framesForWrites:
  // its path, its splits and their parents, its overflow chains new and freed) must fit.
  {
    name: '48 frames',
    keys: 800,
    batchMax: 2,
    shortBytesMax: 200,
    longBytesMax: 8000,
    snapshotsMax: 4,
    rounds: 6,
    opsPerRound: 300,
    snapshotSample: 200,
    pagesMax: 16_384,
    treeFrames: 48,
    versionFrames: 48,
    framesShareMax: 0.6,
  },
];

let cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of cleanup) await close();
  cleanup = [];
});

describe('MVCC partition over buffer pools', () => {
  for (const shape of shapes) {
    it(`matches a model with the pools at ${shape.name} (seed ${seed})`, { timeout: 120_000 }, async () => {
      const workload = await MvccPoolWorkload.create(shape, mulberry32(seed));
      const { pooled, model } = workload;
      cleanup.push(() => pooled.close());
      const partition = pooled.partition;
      const emptyVersionPages = partition.versions.stats().pagesInUse;

      await workload.fill();
      for (let round = 0; round < shape.rounds; round++) {
        for (let n = 0; n < shape.opsPerRound; n++) await workload.pass(round % 4 === 3);
        workload.notePages();
        for (const snapshot of workload.open) {
          workload.checkReadsAt(
            snapshot.at,
            shape.snapshotSample,
            `round ${round}, snapshot at ${snapshot.at}`,
          );
        }
        workload.checkReadsAt(readLatest, null, `round ${round}, newest`);
        expect(entriesAsText(latestEntries(partition)), `round ${round}: the checkpoint's scan`).toEqual(
          model.contentsAt(readLatest),
        );
        checkTree(partition.tree);
        checkTree(partition.versions);
      }

      await workload.finish();
      expect(workload.transactions.pending).toBe(0);
      expect(workload.mvcc.oldestSnapshot()).toBe(Number.POSITIVE_INFINITY);
      expect(partition.hasGarbage).toBe(false);
      expect(partition.versionsRetained).toBe(0);
      // Back to the pages of an empty tree: its meta page and a lone leaf.
      const versionStats = partition.versions.stats();
      expect(versionStats.height).toBe(1);
      expect(versionStats.pagesInUse).toBe(emptyVersionPages);
      checkTree(partition.versions);
      // No tombstone is left in the main tree: every cell is a live key.
      const live = model.liveAt(readLatest);
      expect(checkTree(partition.tree).entries).toBe(live);
      expect(partition.tree.count).toBe(live);
      workload.checkReadsAt(readLatest, null, 'after the last cleanup');

      await pooled.writeBackAll();
      expect(await pageFileProblems(pooled.treeFile.dir, mvccPoolPageSize)).toEqual([]);
      expect(await pageFileProblems(pooled.versionFile.dir, mvccPoolPageSize)).toEqual([]);

      const { counts, held, transactions } = workload;
      const treePool = pooled.treeFile.pool.stats();
      const versionPool = pooled.versionFile.pool.stats();
      console.log(
        `mvcc-pool ${shape.name}: ${JSON.stringify({ ...counts, ...workload.reads })}, ` +
          `${transactions.prepared} prepared (${transactions.committed} committed, ${transactions.aborted} aborted); ` +
          `tree ${held.treePages} pages at most in ${shape.treeFrames} frames (${treePool.misses} misses, ` +
          `${pooled.treeFile.writeBacks} write-backs); version store ${held.versionPages} pages and ` +
          `${held.versionsRetained} versions at most in ${shape.versionFrames} frames (${versionPool.misses} misses, ` +
          `${pooled.versionFile.writeBacks} write-backs); ${pooled.retried} writes staged again after a write-back`,
      );
      // The pools really held a small share of each tree, and really went to their files.
      expect(shape.treeFrames / held.treePages).toBeLessThanOrEqual(shape.framesShareMax);
      expect(shape.versionFrames / held.versionPages).toBeLessThanOrEqual(shape.framesShareMax);
      expect(treePool.misses).toBeGreaterThan(held.treePages);
      expect(versionPool.misses).toBeGreaterThan(held.versionPages);
      // Every path was taken: versions kept and not, transactions committed and aborted, cleanup.
      expect(counts.keptVersions).toBeGreaterThan(0);
      expect(counts.keptVersions).toBeLessThan(counts.windows);
      expect(transactions.committed).toBeGreaterThan(0);
      expect(transactions.aborted).toBeGreaterThan(0);
      expect(counts.cleanups).toBeGreaterThan(0);
    });
  }
});

describe('MVCC partition over buffer pools, one case', () => {
  // Dropping a key's kept versions counts the version store first. The second key's drop in the same
  // window found the store's meta page latched by the first one's deletions, and the count, read the
  // way other threads read it, refused a latch this thread held ("already latched by this thread").
  it('drops the kept versions of two keys in one commit window', async () => {
    const mvcc = MvccState.create({ committers: 1, threads: 1, slotsPerThread: 1, transactionEntries: 1 });
    const pooled = await PooledPartition.create(mvcc, {
      pagesMax: 4096,
      treeFrames: 256,
      versionFrames: 256,
    });
    cleanup.push(() => pooled.close());
    const put = (key: string, fill: number): BatchEntry => ({
      kind: operationPut,
      key: Buffer.from(key),
      value: Buffer.alloc(200, fill),
    });
    await pooled.applyWrites([put('a', 0), put('b', 0)]);
    mvcc.registerSnapshot(0, 0);
    for (let fill = 1; fill <= 60; fill++) await pooled.applyWrites([put('a', fill)]);
    await pooled.applyWrites([put('b', 1)]);
    expect(pooled.partition.versionsRetained).toBe(61);
    mvcc.releaseSnapshot(0, 0);
    await pooled.applyWrites([put('a', 99), put('b', 99)]);
    expect(pooled.partition.versionsRetained).toBe(0);
    expect(pooled.versions.count).toBe(0);
    expect(pooled.partition.reader.get(Buffer.from('b'), readLatest)).toEqual(Buffer.alloc(200, 99));
    checkTree(pooled.versions);
  });
});
