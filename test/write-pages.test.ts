/**
 * `BTree.pagesForWrites` (write-pages.ts) is what stands between a logged batch and an owner that
 * runs out of pages half-way through applying it, so it must be an upper bound for every shape of
 * batch: checked here against the pages a group of writes really allocates, over trees that already
 * hold cells of every size, batches in ascending, descending and random order, with overwrites that
 * grow or shrink cells, deletes among the puts, long keys, overflowed values and MVCC timestamps, at
 * the smallest and largest page sizes. It must also stay close to the truth for many small entries
 * (within 3 times the pages they take, plus a split of each page the tree held before), or large
 * batches would be refused for no reason.
 *
 * Each tree starts with an empty free list (it was only ever grown), so every page a group allocates
 * shows as growth of `pagesAllocated`. Reproduce a failure with the LIGHTNING_SEED printed in its name.
 */
import { describe, expect, it } from 'vitest';
import { BTree } from '../src/shared-memory/index.js';
import { cellBytesMax, keyBytesMax } from '../src/shared-memory/limits.js';
import { cellFlagTimestamp } from '../src/shared-memory/tree/node-format.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x9a6e_5b0d);
const seedText = `0x${seed.toString(16)}`;

type Order = 'ascending' | 'descending' | 'random';

interface Scenario {
  name: string;
  pageSizeBytes: number;
  existing: number;
  writes: number;
  order: Order;
  keyBytes: () => number;
  valueBytes: () => number;
  deleteShare: number;
  mvcc: boolean;
}

interface Write {
  key: Uint8Array;
  value: Uint8Array | null;
}

function keyOf(random: () => number, index: number, length: number): Uint8Array {
  // A 4-byte rank first, so the order is the index's; random bytes after it to the wanted length.
  const key = randomBytes(random, Math.max(4, length));
  key.writeUInt32BE(index >>> 0, 0);
  return key;
}

function run(
  scenario: Scenario,
  random: () => number,
): { pages: number; bound: number; pagesBefore: number } {
  const tree = BTree.create({ pageSizeBytes: scenario.pageSizeBytes, maxBytes: 1024 * 1024 * 1024 });
  const flags = scenario.mvcc ? cellFlagTimestamp : 0;
  // The existing keys take even ranks, the batch's new keys odd ones, so they interleave.
  const existingKeys: Uint8Array[] = [];
  for (let i = 0; i < scenario.existing; i++) {
    const rank = Math.floor(random() % (scenario.existing * 4)) * 2;
    const key = keyOf(random, rank, scenario.keyBytes());
    existingKeys.push(key);
    tree.putCell(key, new Uint8Array(scenario.valueBytes()), flags, 1);
  }
  expect(tree.stats().pagesFree, 'the tree only grew').toBe(0);
  const writes: Write[] = [];
  for (let i = 0; i < scenario.writes; i++) {
    const roll = random() / 0x1_0000_0000;
    const old = existingKeys.length > 0 ? existingKeys[random() % existingKeys.length]! : null;
    if (old !== null && roll < scenario.deleteShare) writes.push({ key: old, value: null });
    else if (old !== null && roll < scenario.deleteShare + 0.1)
      writes.push({ key: old, value: new Uint8Array(scenario.valueBytes()) });
    else {
      const rank = Math.floor(random() % (scenario.existing * 4 + scenario.writes * 4)) * 2 + 1;
      writes.push({
        key: keyOf(random, rank, scenario.keyBytes()),
        value: new Uint8Array(scenario.valueBytes()),
      });
    }
  }
  if (scenario.order !== 'random') {
    writes.sort((a, b) => Buffer.compare(a.key, b.key));
    if (scenario.order === 'descending') writes.reverse();
  }
  const tally = tree.newWriteTally();
  for (const write of writes) {
    if (write.value === null) tally.addDelete();
    else tally.addPut(write.key.length, write.value.length);
  }
  const bound = tree.pagesForWrites(tally).pages;
  const before = tree.stats().pagesAllocated;
  const pagesBefore = tree.stats().pagesInUse;
  tree.reserve(bound);
  tree.group(() => {
    for (const write of writes) {
      if (write.value === null) tree.deleteCell(write.key);
      else tree.putCell(write.key, write.value, flags, 2);
    }
  });
  return { pages: tree.stats().pagesAllocated - before, bound, pagesBefore };
}

const small = () => 16;
const inlineMax = (pageSizeBytes: number) => cellBytesMax(pageSizeBytes) - 7 - 8 - 16 - 8;

function scenarios(random: () => number): Scenario[] {
  const list: Scenario[] = [];
  const orders: Order[] = ['ascending', 'descending', 'random'];
  for (const pageSizeBytes of [4096, 32768]) {
    for (const order of orders) {
      const base = { pageSizeBytes, order, mvcc: false, deleteShare: 0 };
      list.push({
        ...base,
        name: 'small entries, empty tree',
        existing: 0,
        writes: 20_000,
        keyBytes: small,
        valueBytes: small,
      });
      list.push({
        ...base,
        name: 'small entries into small',
        existing: 5_000,
        writes: 20_000,
        keyBytes: small,
        valueBytes: small,
      });
      list.push({
        ...base,
        name: 'small entries into the largest inline cells',
        existing: 1_000,
        writes: 5_000,
        keyBytes: small,
        valueBytes: () => inlineMax(pageSizeBytes),
      });
      list.push({
        ...base,
        name: 'cells of every inline size, deletes among them, with timestamps',
        existing: 2_000,
        writes: 5_000,
        keyBytes: () => 4 + (random() % 60),
        valueBytes: () => random() % inlineMax(pageSizeBytes),
        deleteShare: 0.3,
        mvcc: true,
      });
      list.push({
        ...base,
        name: 'longest keys',
        existing: 500,
        writes: 2_000,
        keyBytes: () => keyBytesMax,
        valueBytes: small,
      });
      list.push({
        ...base,
        name: 'overflowed values',
        existing: 200,
        writes: 300,
        keyBytes: small,
        valueBytes: () => 2 * pageSizeBytes + (random() % pageSizeBytes),
        deleteShare: 0.2,
      });
    }
  }
  return list;
}

describe(`pagesForWrites (seed ${seedText})`, () => {
  it('bounds the pages every shape of group allocates, and stays near them for small entries', () => {
    const random = mulberry32(seed);
    for (const scenario of scenarios(random)) {
      const { pages, bound, pagesBefore } = run(scenario, random);
      const label = `${scenario.name}, ${scenario.order}, ${scenario.pageSizeBytes}-byte pages`;
      expect(pages, `${label}: allocated within the bound ${bound}`).toBeLessThanOrEqual(bound);
      if (process.env.LIGHTNING_WRITE_PAGES_VERBOSE === '1') console.log(`${label}: ${pages} of ${bound}`);
      if (scenario.valueBytes === small && scenario.keyBytes === small) {
        // Every page of the tree before may split once; the new cells' pages are counted about twice.
        expect(bound, `${label}: bound near the ${pages} pages allocated`).toBeLessThanOrEqual(
          3 * pages + pagesBefore + 8,
        );
      }
    }
  });
});
