/**
 * The B+Tree over a buffer pool holding a fraction of its pages, against a model: seeded puts
 * (some values long enough for overflow chains), overwrites and deletes on the owner's thread, with
 * the dirty pages written back to a real page file whenever half the frames are dirty and the clean
 * ones evicted, so that reads and the writer's own descents keep missing. After every round the tree
 * must match the model through point reads and scans and pass checkTree; at the end the tree reopens
 * from the page file (free-page list included) whole and writable, and a second pool
 * over the page file alone must read the same tree.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed below>.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLightningError } from '../src/shared-memory/errors.js';
import { BufferPool } from '../src/shared-memory/pool/buffer-pool.js';
import { PooledPageSpace } from '../src/shared-memory/pool/pooled-page-space.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { TreeReader } from '../src/shared-memory/tree/tree-reader.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import {
  createPageFile,
  pageFileProblems,
  writeDirtyPages,
} from '../src/storage/page-file/page-file-writer.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const pageSize = 4096;
const durableAll = Number.MAX_SAFE_INTEGER;
const seed = seedFromEnv(0x7ee0_b001);
console.log(`tree-pool: seed ${seed} (LIGHTNING_SEED to replay)`);

let dir: string;
let files: PageFileReader[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-tree-pool-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
  files = [];
});

afterEach(async () => {
  for (const file of files) file.close();
  await rm(dir, { recursive: true, force: true });
});

async function openPool(pagesMax: number, framesMax: number): Promise<BufferPool> {
  const file = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
  files.push(file);
  return BufferPool.create({ pageSizeBytes: pageSize, pagesMax, framesMax, ...file.poolStart() }, file);
}

/** Every entry of a tree in key order, as hex pairs. */
function contents(reader: TreeReader): string[] {
  const out: string[] = [];
  for (const [key, value] of reader.range()) out.push(`${key.toString('hex')}=${value.toString('hex')}`);
  return out;
}

function modelContents(model: Map<string, Buffer>): string[] {
  return [...model.entries()]
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')))
    .map(([key, value]) => `${key}=${value.toString('hex')}`);
}

interface Shape {
  name: string;
  keys: number;
  rounds: number;
  opsPerRound: number;
  /** Frames as a fraction of the pages the tree ends up with: checked after the run. */
  framesMax: number;
  /** The most pages the tree may reach (its page table). */
  pagesMax: number;
  maxFractionResident: number;
}

const shapes: Shape[] = [
  // About 1,000 pages of tree: 64 frames is 1/16 of it.
  {
    name: '1/16 of the pages',
    keys: 10_000,
    rounds: 8,
    opsPerRound: 5000,
    framesMax: 64,
    pagesMax: 4096,
    maxFractionResident: 1 / 12,
  },
  // A handful of frames: a put's whole path, its splits and an overflow chain must still fit.
  {
    name: '16 frames',
    keys: 1500,
    rounds: 6,
    opsPerRound: 1500,
    framesMax: 16,
    pagesMax: 4096,
    maxFractionResident: 1 / 8,
  },
];

describe('B+Tree over a buffer pool', () => {
  for (const shape of shapes) {
    it(`matches a model with the pool at ${shape.name} (seed ${seed})`, { timeout: 120_000 }, async () => {
      const next = mulberry32(seed);
      // A fraction in [0, 1) from the uint32 source.
      const random = (): number => next() / 2 ** 32;
      const pool = await openPool(shape.pagesMax, shape.framesMax);
      const space = PooledPageSpace.forOwner(pool);
      const tree = BTree.createOn(space);
      const model = new Map<string, Buffer>();
      const keys = Array.from({ length: shape.keys }, (_, i) =>
        Buffer.concat([Buffer.from(`k${(i * 7919) % shape.keys}:`), randomBytes(next, 8 + (i % 24))]),
      );
      let writeBacks = 0;
      let pagesWritten = 0;
      const writeBack = async (): Promise<void> => {
        const written = await writeDirtyPages(pool, dir, durableAll);
        pagesWritten += written.pagesWritten;
        writeBacks++;
        // Everything is clean now: drop it all, so that what follows misses.
        pool.evict(shape.framesMax);
      };
      let full = 0;
      /** As an owner does: a put the pool cannot take now fails before changing anything; write back, retry. */
      const putWritingBack = async (key: Buffer, value: Buffer): Promise<void> => {
        try {
          tree.put(key, value);
        } catch (error) {
          if (!isLightningError(error, 'ERR_PARTITION_FULL')) throw error;
          full++;
          await writeBack();
          tree.put(key, value);
        }
      };
      let gets = 0;
      for (let round = 0; round < shape.rounds; round++) {
        for (let op = 0; op < shape.opsPerRound; op++) {
          const key = keys[Math.floor(random() * keys.length)]!;
          const hex = key.toString('hex');
          const roll = random();
          if (roll < 0.6) {
            // One value in 25 spans overflow pages (up to 3 of them).
            const length =
              random() < 0.04 ? 4000 + Math.floor(random() * 8000) : 20 + Math.floor(random() * 180);
            const value = randomBytes(next, length);
            await putWritingBack(key, value);
            model.set(hex, value);
          } else if (roll < 0.8) {
            expect(tree.delete(key)).toBe(model.delete(hex));
          } else {
            gets++;
            const got = tree.get(key);
            const want = model.get(hex);
            if (want === undefined) expect(got).toBeUndefined();
            else expect(got?.equals(want)).toBe(true);
          }
          if (pool.stats().dirtyPages >= shape.framesMax / 2) await writeBack();
        }
        expect(tree.count).toBe(model.size);
        expect(contents(tree)).toEqual(modelContents(model));
        checkTree(tree);
      }
      // A run of deletes empties leaves, so that the free-page list is not empty when the file is reopened.
      for (const key of [...model.keys()].sort().slice(0, Math.floor(model.size / 4))) {
        expect(tree.delete(Buffer.from(key, 'hex'))).toBe(true);
        model.delete(key);
        if (pool.dirtyPageCount() >= shape.framesMax / 2) await writeBack();
      }
      await writeBack();
      const stats = pool.stats();
      const treePages = tree.stats().pagesInUse;
      console.log(
        `tree-pool ${shape.name}: ${model.size} keys in ${treePages} pages, ${shape.framesMax} frames, ` +
          `${gets} gets, ${full} puts retried after a write-back, ${stats.misses} misses, ${stats.evictions} evictions, ${writeBacks} write-backs of ` +
          `${pagesWritten} pages`,
      );
      // The pool really held a small fraction of the tree, and really went to the file.
      expect(shape.framesMax / treePages).toBeLessThanOrEqual(shape.maxFractionResident);
      expect(stats.misses).toBeGreaterThan(treePages);
      expect(stats.evictions).toBeGreaterThan(treePages);

      // The page file alone holds the same tree: a second pool over it reads it whole.
      expect(await pageFileProblems(dir, pageSize)).toEqual([]);
      const second = await openPool(shape.pagesMax, 8);
      const reader = TreeReader.over(PooledPageSpace.forReader(second), tree.view.metaPageId);
      expect(contents(reader)).toEqual(modelContents(model));
      expect(reader.count).toBe(model.size);
      second.detach();

      // Reopened from the file, the tree is whole, free list included, and takes writes again.
      const freed = pool.spaceState();
      expect(freed.freePageCount).toBeGreaterThan(0);
      pool.detach();
      const third = await openPool(shape.pagesMax, shape.framesMax);
      expect(third.spaceState()).toEqual(freed);
      const reopened = BTree.openOn(PooledPageSpace.forOwner(third), tree.view.metaPageId);
      checkTree(reopened);
      expect(contents(reopened)).toEqual(modelContents(model));
      for (const [i, key] of keys.slice(0, 200).entries()) {
        const value = randomBytes(next, 20 + (i % 100));
        try {
          reopened.put(key, value);
        } catch (error) {
          if (!isLightningError(error, 'ERR_PARTITION_FULL')) throw error;
          await writeDirtyPages(third, dir, durableAll);
          reopened.put(key, value);
        }
        model.set(key.toString('hex'), value);
      }
      checkTree(reopened);
      expect(contents(reopened)).toEqual(modelContents(model));
      // The new pages came off the free list first, as they would have before the reopen.
      expect(third.pagesAllocated() - freed.pagesAllocated).toBeLessThanOrEqual(
        Math.max(0, 200 - freed.freePageCount),
      );
      third.detach();
    });
  }

  it('refuses, before changing anything, a write whose pages the pool cannot hold', async () => {
    const pool = await openPool(4096, 16);
    const tree = BTree.createOn(PooledPageSpace.forOwner(pool));
    tree.put('before', 'kept');
    // 20 overflow pages: more than 16 frames can hold dirty until a write-back.
    const tooLarge = Buffer.alloc(20 * pageSize, 7);
    expect(() => tree.put('large', tooLarge)).toThrow(
      expect.objectContaining({ code: 'ERR_PARTITION_FULL' }) as unknown as Error,
    );
    // Nothing changed, and the tree still takes writes (a write that failed half-way would refuse them).
    expect(tree.get('large')).toBeUndefined();
    expect(tree.count).toBe(1);
    checkTree(tree);
    tree.put('after', Buffer.alloc(pageSize, 1));
    await writeDirtyPages(pool, dir, durableAll);
    expect(tree.get('after')?.length).toBe(pageSize);
    expect(tree.get('before')?.toString()).toBe('kept');
    pool.detach();
  });
});
