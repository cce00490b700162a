/**
 * Damaged pages that only applying a write reads, besides its descent: the sibling leaf a delete
 * merges with, and the old overflow chain a put over a large value frees. Staging reads them too, so
 * such a write is refused with ERR_CORRUPTION before it is logged (nothing of it applied), the owner
 * keeps taking every other write, and the database closes and reopens with those writes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import { pageTypeLeaf, pageTypeOverflow } from '../src/shared-memory/page-layout.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';
import { damagePage, interiorChildren, pagesOfType } from './fixtures/page-file-damage.js';
import { outcome } from './support/call-outcome.js';

const pageSize = 4096;
const options = { partitions: 1, workers: 1, memoryMaxBytes: 64 * pageSize } as const;
const keys = 3000;
const keyName = (index: number): string => `key-${String(index).padStart(5, '0')}`;
const loaded = (index: number): string => `loaded ${index} ${'.'.repeat(300)}`;

let dir = '';
afterEach(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  dir = '';
});

/** A closed database of `keys` small values, in batches of five, and the path of its page file. */
async function loadSmallKeys(extra: (db: Database) => Promise<void> = async () => {}): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'lightning-damaged-apply-'));
  const db = await open(dir, options);
  for (let first = 0; first < keys; first += 5) {
    await db.batch(
      Array.from({ length: 5 }, (_, i) => ({
        type: 'put' as const,
        key: keyName(first + i),
        value: loaded(first + i),
      })),
    );
  }
  await extra(db);
  await db.close();
  return join(partitionDirectory(dir, 0), pageFileName);
}

/**
 * A leaf that is not the first child of its parent (the parent over leaves with the most children,
 * its middle child): the leaf before it, child i - 1, merges with it (TreeReshape takes the right
 * sibling of any child but the last).
 */
function rightSiblingLeaf(file: string): number {
  const leaves = new Set(pagesOfType(file, pageSize, pageTypeLeaf));
  const overLeaves = interiorChildren(file, pageSize).filter((children) => leaves.has(children[0]!));
  expect(overLeaves.length, 'interior pages over leaves').toBeGreaterThan(0);
  const parent = overLeaves.reduce((most, children) => (children.length > most.length ? children : most));
  expect(parent.length, 'children of the parent').toBeGreaterThan(3);
  return parent[parent.length >> 1]!;
}

it('refuses a delete whose merge meets a damaged sibling leaf, and reopens with every other key', async () => {
  const file = await loadSmallKeys();
  const pageId = rightSiblingLeaf(file);
  damagePage(file, pageSize, pageId);

  let db = await open(dir, options);
  try {
    const damaged: number[] = [];
    for (let index = 0; index < keys; index++)
      if ((await outcome(() => db.get(keyName(index)))) === 'ERR_CORRUPTION') damaged.push(index);
    expect(damaged.length, 'keys of the damaged leaf').toBeGreaterThan(0);

    // The keys before the damaged leaf's, last first: the leaf before it shrinks until a delete would
    // merge it with the damaged one.
    const deleted: number[] = [];
    let refused = -1;
    for (let index = damaged[0]! - 1; index >= 0 && refused < 0 && deleted.length < 100; index--) {
      const result = await db.del(keyName(index)).then(
        () => 'ok',
        (error: unknown) => error,
      );
      if (result === 'ok') deleted.push(index);
      else {
        expect(result).toMatchObject({ code: 'ERR_CORRUPTION' });
        expect(String(result)).toContain('nothing of that write was applied');
        refused = index;
      }
    }
    console.log(
      `paged-damaged-apply: leaf ${pageId} damaged (${damaged.length} keys); ${deleted.length} deletes ` +
        `before it went, then ${refused >= 0 ? `the delete of ${keyName(refused)} refused` : 'none refused'}`,
    );
    expect(refused, 'a delete refused').toBeGreaterThanOrEqual(0);
    expect(deleted.length, 'deletes that merged nothing').toBeGreaterThan(0);
    expect(db.getString(keyName(refused)), 'the refused key keeps its value').toBe(loaded(refused));

    // The owner still takes every other write: a rewrite of each key, and deletes far from the damage.
    for (let index = 0; index < keys; index++) {
      if (damaged.includes(index) || deleted.includes(index)) continue;
      if (index % 100 === 0) await db.del(keyName(index));
      else await db.put(keyName(index), `rewritten ${index}`);
    }
    await db.close();
    db = await open(dir, options);
    for (let index = 0; index < keys; index++) {
      const key = keyName(index);
      if (damaged.includes(index)) expect(await outcome(() => db.get(key)), key).toBe('ERR_CORRUPTION');
      else if (deleted.includes(index) || index % 100 === 0) expect(db.getString(key), key).toBeUndefined();
      else expect(db.getString(key), key).toBe(`rewritten ${index}`);
    }
  } finally {
    await db.close();
  }
}, 120_000);

const largeKeys = 20;
const largeName = (index: number): string => `large-${String(index).padStart(3, '0')}`;
const large = (index: number, text: string): string => `${text} ${index} ${'#'.repeat(12_000)}`;

it('refuses a write over a large value whose overflow chain is damaged, and reopens with every other key', async () => {
  const file = await loadSmallKeys(async (db) => {
    for (let index = 0; index < largeKeys; index++) await db.put(largeName(index), large(index, 'loaded'));
  });
  const overflow = pagesOfType(file, pageSize, pageTypeOverflow);
  expect(overflow.length, 'overflow pages').toBeGreaterThanOrEqual(largeKeys * 3);
  const pageId = overflow[overflow.length >> 1]!;
  damagePage(file, pageSize, pageId);

  let db = await open(dir, options);
  try {
    const damaged: number[] = [];
    for (let index = 0; index < largeKeys; index++)
      if ((await outcome(() => db.get(largeName(index)))) === 'ERR_CORRUPTION') damaged.push(index);
    console.log(`paged-damaged-apply: overflow page ${pageId} damaged, large values ${damaged.join(', ')}`);
    expect(damaged.length, 'large values over the damaged page').toBe(1);
    const key = largeName(damaged[0]!);

    const refused = await db.put(key, 'small').catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'ERR_CORRUPTION' });
    expect(String(refused)).toContain('nothing of that write was applied');
    expect(await outcome(() => db.put(key, large(0, 'rewritten'))), 'a large put').toBe('ERR_CORRUPTION');
    expect(await outcome(() => db.del(key)), 'a delete').toBe('ERR_CORRUPTION');
    const transaction = () => db.transaction((tx) => tx.put(key, 'in a transaction'));
    expect(await outcome(transaction), 'a transaction').toBe('ERR_CORRUPTION');

    // Every other value is overwritten, the large ones with large values (their chains freed).
    for (let index = 0; index < largeKeys; index++)
      if (index !== damaged[0]) await db.put(largeName(index), large(index, 'rewritten'));
    for (let index = 0; index < keys; index++) await db.put(keyName(index), `rewritten ${index}`);
    await db.close();
    db = await open(dir, options);
    for (let index = 0; index < largeKeys; index++) {
      if (index === damaged[0]) expect(await outcome(() => db.get(key)), key).toBe('ERR_CORRUPTION');
      else expect(db.getString(largeName(index)), largeName(index)).toBe(large(index, 'rewritten'));
    }
    for (let index = 0; index < keys; index++)
      expect(db.getString(keyName(index)), keyName(index)).toBe(`rewritten ${index}`);
  } finally {
    await db.close();
  }
}, 120_000);
