/**
 * A tree that grew to a million entries and was emptied again must give every page back: the page
 * count in use returns to the empty-tree value, the height to 1, and a second fill reuses the freed
 * pages instead of growing the SharedArrayBuffer.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { describe, expect, it } from 'vitest';
import { BTree, checkTree } from '../src/shared-memory/index.js';
import { mulberry32, seedFromEnv, shuffle } from './support/seeded-random.js';

const seed = seedFromEnv(0x9e3779b9);

const entryCount = 1_000_000;
const keyBytes = 16;
const valueBytes = 100;

describe('shared-memory B+Tree gives pages back', () => {
  it(`inserting then deleting ${entryCount} random keys returns to the empty page count (seed ${seed})`, {
    timeout: 120_000,
  }, () => {
    const random = mulberry32(seed);
    const tree = BTree.create();
    const empty = tree.stats();
    expect(empty.height).toBe(1);
    expect(empty.entries).toBe(0);

    // All keys in one buffer: 16 MB instead of a million small Buffers.
    const keys = Buffer.allocUnsafe(entryCount * keyBytes);
    for (let i = 0; i < keys.length; i += 4) keys.writeUInt32LE(random(), i);
    const keyAt = (i: number): Buffer => keys.subarray(i * keyBytes, (i + 1) * keyBytes);
    // The value is derived from the key and its index, so any read can be verified without storing it.
    const value = Buffer.allocUnsafe(valueBytes);
    const valueFor = (i: number): Buffer => {
      const key = keyAt(i);
      for (let off = 0; off + keyBytes <= valueBytes; off += keyBytes) key.copy(value, off);
      value.writeUInt32LE(i, valueBytes - 4);
      return value;
    };
    const fill = (): void => {
      for (let i = 0; i < entryCount; i++) tree.put(keyAt(i), valueFor(i));
    };
    const spotCheck = (): void => {
      for (let i = 0; i < entryCount; i += 997) {
        const got = tree.get(keyAt(i));
        expect(got?.equals(valueFor(i)), `value of key #${i}`).toBe(true);
      }
    };

    fill();
    expect(tree.count).toBe(entryCount);
    const full = checkTree(tree);
    expect(full.entries).toBe(entryCount);
    expect(full.height).toBeGreaterThan(1);
    spotCheck();
    const afterFill = tree.stats();
    expect(afterFill.pagesInUse).toBeGreaterThan(empty.pagesInUse);
    expect(afterFill.bytesReserved).toBeLessThanOrEqual(afterFill.bytesMax);

    // Delete in a different random order (Fisher–Yates over the indices).
    const order = new Uint32Array(entryCount);
    for (let i = 0; i < entryCount; i++) order[i] = i;
    shuffle(order, random);
    for (let n = 0; n < entryCount; n++) {
      const i = order[n]!;
      if (!tree.delete(keyAt(i))) throw new Error(`delete #${n} of key #${i} returned false`);
      if (n === entryCount / 2) {
        // Half way: the shrinking tree must still be valid and hold exactly the other half.
        expect(checkTree(tree).entries).toBe(entryCount - n - 1);
      }
    }

    expect(tree.count).toBe(0);
    const emptied = tree.stats();
    expect(emptied.entries).toBe(0);
    expect(emptied.height).toBe(1);
    expect(emptied.pagesInUse).toBe(empty.pagesInUse);
    // The SharedArrayBuffer never shrinks; the pages went to the free list.
    expect(emptied.bytesReserved).toBe(afterFill.bytesReserved);
    const report = checkTree(tree);
    expect(report.entries).toBe(0);
    expect(report.height).toBe(1);
    expect([...tree.range()]).toEqual([]);
    expect(tree.get(keyAt(0))).toBeUndefined();

    // The same inserts again: every page they need is on the free list, so nothing is reserved.
    fill();
    expect(tree.count).toBe(entryCount);
    expect(checkTree(tree).entries).toBe(entryCount);
    spotCheck();
    const refilled = tree.stats();
    expect(refilled.bytesReserved).toBe(afterFill.bytesReserved);
    expect(refilled.pagesAllocated).toBeLessThanOrEqual(afterFill.pagesAllocated);
    expect(refilled.pagesInUse).toBe(afterFill.pagesInUse);
  });
});
