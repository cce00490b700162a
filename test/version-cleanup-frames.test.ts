/**
 * Version cleanup over buffer pools of a few frames. A cleanup group keeps every page it reads pinned
 * and every page it changes dirty until it ends, so it takes a removal only while the removal's worst
 * case (`removalFrames`) fits the frames its pool has free. These tests check that bound against real
 * removals, and the cases where it used to fail: a removal that read more than it counted (a large
 * value under a tombstone's key or a version's key) failed half-way and left the trees refusing
 * writes; a bound three pages per level too high left a stored version cleanup never removed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { versionValueHeaderBytes } from '../src/shared-memory/mvcc/version-key.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { PooledPageSpace } from '../src/shared-memory/pool/pooled-page-space.js';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { overflowPagesFor } from '../src/shared-memory/tree/overflow-chain.js';
import { PoolRoomError } from '../src/workers/pass-reservation.js';
import { removalFrames } from '../src/workers/version-cleanup.js';
import { PooledPartition, PoolFile } from './fixtures/mvcc-pool-partition.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0xc1ea);
console.log(`version-cleanup-frames: seed ${seed} (LIGHTNING_SEED to replay)`);

const sizes = { committers: 2, threads: 1, slotsPerThread: 2, transactionEntries: 4 };
const key = (i: number): Buffer => Buffer.from(`key${String(i).padStart(5, '0')}`);
const put = (i: number, value: Buffer): BatchEntry => ({ kind: operationPut, key: key(i), value });
const del = (i: number): BatchEntry => ({ kind: operationDel, key: key(i), value: null });

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function pooledPartition(treeFrames: number, versionFrames: number): Promise<PooledPartition> {
  const mvcc = MvccState.create(sizes);
  const pooled = await PooledPartition.create(mvcc, { pagesMax: 8192, treeFrames, versionFrames });
  closers.push(() => pooled.close());
  return pooled;
}

/**
 * Calls collectGarbage until it is done, writing every dirty page back after each false, as the
 * owner does between passes; returns how many times it returned false. Each false must follow some
 * progress, or cleanup would never end: the versions retained must drop every time.
 */
async function collectAll(pooled: PooledPartition): Promise<number> {
  let falses = 0;
  for (;;) {
    const before = pooled.partition.versionsRetained + pooled.tree.tombstoneCount;
    if (pooled.partition.collectGarbage(pooled.mvcc.oldestSnapshot())) return falses;
    falses++;
    expect(pooled.partition.versionsRetained + pooled.tree.tombstoneCount).toBeLessThan(before);
    await pooled.writeBackAll();
  }
}

describe('version cleanup over small buffer pools', () => {
  it(`takes no more frames per removal than removalFrames counts (seed ${seed})`, async () => {
    // Long keys make a low fan-out, so a few thousand cells give three levels and deletes merge.
    const file = await PoolFile.create('frames', 16_384, 8192);
    closers.push(() => file.close());
    const tree = BTree.createOn(PooledPageSpace.forOwner(file.pool));
    const random = mulberry32(seed);
    const longKey = (i: number): Buffer => Buffer.from(`${String(i).padStart(6, '0')}${'k'.repeat(300)}`);
    const valueBytes = new Map<number, number>();
    const keyCount = 2500;
    for (let i = 0; i < keyCount; i++) {
      // One value in ten spans overflow pages: their frees are counted too.
      const bytes = random() % 10 === 0 ? 4000 + (random() % 20_000) : 10 + (random() % 200);
      tree.put(longKey(i), Buffer.alloc(bytes, i));
      valueBytes.set(i, bytes);
      if (file.pool.dirtyPageCount() > 4000) await file.writeBack(0, 0);
    }
    await file.writeBack(0, 0);
    const heightAtStart = tree.stats().height;
    expect(heightAtStart).toBeGreaterThanOrEqual(3);
    const order = [...valueBytes.keys()].sort(() => (random() & 1) - 0.5);
    let removals = 0;
    // Frames a removal took besides its value's overflow pages.
    let mostBeyondValue = 0;
    while (order.length > 0) {
      const shape = tree.stats();
      // Short groups, each from a clean pool: a removal's merges then take frames no other one took.
      const groupSize = 1 + (random() % 8);
      tree.group(() => {
        for (let n = 0; n < groupSize && order.length > 0; n++) {
          const i = order.pop()!;
          const stored = valueBytes.get(i)!;
          const before = tree.framesAvailable();
          // As cleanup removes a version: its header read, then the cell deleted.
          expect(tree.readCellPrefix(longKey(i), versionValueHeaderBytes)?.length).toBe(
            Math.min(stored, versionValueHeaderBytes),
          );
          expect(tree.deleteCell(longKey(i))).toBe(true);
          const taken = before - tree.framesAvailable();
          const bound = removalFrames(shape, stored);
          expect(taken, `removal of key ${i} (${stored} bytes)`).toBeLessThanOrEqual(bound);
          mostBeyondValue = Math.max(mostBeyondValue, taken - overflowPagesFor(stored, shape.pageSizeBytes));
          removals++;
        }
      });
      await file.writeBack(0, 0);
    }
    expect(removals).toBe(keyCount);
    expect(tree.stats().height).toBe(1);
    expect(tree.count).toBe(0);
    // Some removal pinned its path and a sibling to merge with: the bound's terms are not idle.
    expect(mostBeyondValue).toBeGreaterThanOrEqual(heightAtStart + 1);
  });

  it("checks a tombstone's head without reading the large value written under its key since", async () => {
    const largeBytes = 56_000;
    const pooled = await pooledPartition(48, 256);
    const mvcc = pooled.mvcc;
    const count = 20;
    await pooled.applyWrites(Array.from({ length: count }, (_, i) => put(i, Buffer.from('small'))));
    await pooled.writeBackAll();
    mvcc.registerSnapshot(0, 0);
    // Each delete queues an item naming its tombstone; the put after it replaces the tombstone.
    await pooled.applyWrites(Array.from({ length: count }, (_, i) => del(i)));
    // As large as the pool admits: a put must leave its value deletable and overwritable at its size
    // (pass-reservation.ts requireRewritable), about 14 overflow pages of the 39 frames a clean pool
    // has. So a full read of it would fit too: the misses below show it is not read.
    for (let i = 0; i < count; i++) {
      await pooled.applyWrites([put(i, Buffer.alloc(largeBytes, i))]);
      await pooled.writeBackAll();
    }
    mvcc.releaseSnapshot(0, 0);
    await pooled.writeBackAll();
    const missesBefore = pooled.treeFile.pool.stats().misses;
    await collectAll(pooled);
    // Reading the values would load 14 overflow pages a key; the heads' leaves and paths take a few.
    expect(pooled.treeFile.pool.stats().misses - missesBefore).toBeLessThan(count * 4);
    expect(pooled.partition.hasGarbage).toBe(false);
    expect(pooled.partition.versionsRetained).toBe(0);
    // The trees still take writes, and every large value reads back.
    await pooled.applyWrites([put(0, Buffer.from('x'))]);
    expect(pooled.partition.reader.get(key(0), readLatest)?.toString()).toBe('x');
    for (let i = 1; i < count; i++)
      expect(pooled.partition.reader.get(key(i), readLatest)?.equals(Buffer.alloc(largeBytes, i))).toBe(true);
    expect(checkTree(pooled.versions).entries).toBe(0);
  });

  it('reads only the header of a version stored again, larger, under a key an item names', async () => {
    const pooled = await pooledPartition(512, 64);
    const mvcc = pooled.mvcc;
    const count = 12;
    // Heads written with no snapshot open carry no timestamp: kept, they are stored under timestamp 0.
    await pooled.applyWrites(Array.from({ length: count }, (_, i) => put(i, Buffer.from('first'))));
    mvcc.registerSnapshot(0, 0);
    // Queues an item per key for the version (key, 0) holding 'first'.
    await pooled.applyWrites(Array.from({ length: count }, (_, i) => put(i, Buffer.from('second'))));
    mvcc.releaseSnapshot(0, 0);
    for (let i = 0; i < count; i++) {
      // No snapshot open: the head is written in place, untimestamped, and (key, 0) dropped...
      await pooled.applyWrites([put(i, Buffer.alloc(40_000, i))]);
      // ...then a snapshot keeps that large head under (key, 0) again, with an item of its own.
      mvcc.registerSnapshot(0, 0);
      await pooled.applyWrites([put(i, Buffer.from('fourth'))]);
      mvcc.releaseSnapshot(0, 0);
      await pooled.writeBackAll();
    }
    expect(pooled.partition.versionsRetained).toBe(count);
    await collectAll(pooled);
    expect(pooled.partition.hasGarbage).toBe(false);
    expect(pooled.partition.versionsRetained).toBe(0);
    await pooled.applyWrites([put(0, Buffer.from('fifth'))]);
    for (let i = 0; i < count; i++)
      expect(pooled.partition.reader.get(key(i), readLatest)?.toString()).toBe(i === 0 ? 'fifth' : 'fourth');
  });

  it('removes a stored version as large as its pool can take, from a clean pool', async () => {
    const pooled = await pooledPartition(256, 24);
    const mvcc = pooled.mvcc;
    const big = 1000;
    // A version near the largest whose put (framesForWrites: its chain, path, splits and their parents) the
    // empty version store of a pool of 24 frames takes.
    const bigBytes = 36_000;
    await pooled.applyWrites([put(big, Buffer.alloc(bigBytes, 1))]);
    for (let i = 0; i < 200; i += 10)
      await pooled.applyWrites(Array.from({ length: 10 }, (_, k) => put(i + k, Buffer.alloc(100, 1))));
    mvcc.registerSnapshot(0, 0);
    await pooled.applyWrites([put(big, Buffer.alloc(bigBytes, 2))]);
    await pooled.writeBackAll();
    for (let i = 0; i < 200; i++) {
      await pooled.applyWrites([put(i, Buffer.alloc(100, 2))]);
      await pooled.writeBackIfHalfDirty();
    }
    mvcc.releaseSnapshot(0, 0);
    expect(pooled.versions.stats().height).toBe(2);
    // Its removal needs nearly every frame a clean pool of 24 has for changed pages.
    const removal = removalFrames(pooled.versions.stats(), bigBytes + versionValueHeaderBytes);
    expect(removal).toBeLessThanOrEqual(pooled.versions.framesAvailableWhenClean());
    expect(removal).toBeGreaterThanOrEqual(pooled.versions.framesAvailableWhenClean() - 2);
    await pooled.writeBackAll();
    const falses = await collectAll(pooled);
    expect(pooled.partition.versionsRetained).toBe(0);
    // Taking the pinned and changed frames as they are, not a worst case per removal, a few calls do.
    expect(falses).toBeLessThan(10);
    expect(pooled.partition.reader.get(key(big), readLatest)?.equals(Buffer.alloc(bigBytes, 2))).toBe(true);
  });

  for (const versionFrames of [24, 64]) {
    it(`refuses to keep a version a clean pool of ${versionFrames} frames could not remove`, async () => {
      const pooled = await pooledPartition(256, versionFrames);
      const mvcc = pooled.mvcc;
      const clean = pooled.versions.framesAvailableWhenClean();
      // The largest value whose put the empty version store (height 1) takes: overflow + height + 1
      // pages. Removing it later may take two pages per level: more than a clean pool has.
      const overflow = clean - 2;
      const chunk = 4096 - 32;
      const tooLarge = overflow * chunk - versionValueHeaderBytes - 16;
      expect(overflowPagesFor(tooLarge + versionValueHeaderBytes, 4096)).toBe(overflow);
      // The largest whose removal, a level of growth allowed for, fits.
      const fits = (overflow - 4) * chunk - versionValueHeaderBytes - 16;
      await pooled.applyWrites([
        put(1, Buffer.alloc(tooLarge, 1)),
        put(2, Buffer.alloc(fits, 2)),
        put(3, Buffer.from('a1')),
      ]);
      mvcc.registerSnapshot(0, 0);
      const refusal = await pooled.applyWrites([put(1, Buffer.from('small'))]).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(PoolRoomError);
      expect((refusal as PoolRoomError).needsPageSet).toBe(false);
      expect(String(refusal)).toContain('larger pool');
      // Refused before anything changed; the smaller version is kept, and a later one behind it.
      expect(pooled.partition.reader.get(key(1), readLatest)?.length).toBe(tooLarge);
      await pooled.applyWrites([put(2, Buffer.from('small'))]);
      await pooled.applyWrites([put(3, Buffer.from('a2'))]);
      expect(pooled.partition.versionsRetained).toBe(2);
      mvcc.releaseSnapshot(0, 0);
      await pooled.writeBackAll();
      await collectAll(pooled);
      expect(pooled.partition.versionsRetained).toBe(0);
      expect(pooled.partition.reader.get(key(2), readLatest)?.toString()).toBe('small');
    });
  }
});
