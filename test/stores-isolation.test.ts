/**
 * Named stores kept apart from the default store and from each other: the default store refuses
 * every key in the store region (FF FF FF FF ...) with ERR_BAD_ARGUMENT, for reads and writes, and
 * its ranges stop below the region in both directions; a batch or transaction over several stores is
 * all-or-nothing, also when its commit fails; bad arguments are typed errors; drop frees the name
 * and ids are never reused. One database (4 partitions) for the whole file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyBytesMax, open, type Store } from '../src/index.js';
import { codeOf, codeOfThrow, rejection } from './support/async.js';

type Database = Awaited<ReturnType<typeof open>>;

const regionKeys = [
  Buffer.from([0xff, 0xff, 0xff, 0xff]),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x00]),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x61]),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
];
/** Keys of the default store that sort right below the region. */
const edgeKeys = [
  Buffer.from([0xff, 0xff, 0xff]),
  Buffer.from([0xff, 0xff, 0xff, 0xfe, 0xff]),
  Buffer.from([0xff]),
];

function keysOf(entries: Iterable<[Buffer, Buffer]>): string[] {
  return [...entries].map(([key]) => key.toString('hex'));
}

let dir: string;
let db: Database;
let users: Store;
let orders: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ldb-stores-isolation-'));
  db = await open(dir, { partitions: 4, workers: 2, durability: 'none' });
  users = await db.store('users');
  orders = await db.store('orders');
  for (const key of edgeKeys) await db.put(key, `default:${key.toString('hex')}`);
  await db.put('a', 'default:a');
  for (const key of ['a', 'b', '\u00ff\u00ff', 'zz']) {
    await users.put(key, `users:${key}`);
    await orders.put(key, `orders:${key}`);
  }
  await users.put(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]), 'users:ff');
});

afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the default store and the store region', () => {
  it('refuses keys in the region on every read and write, with ERR_BAD_ARGUMENT', async () => {
    const snapshot = db.snapshot();
    try {
      for (const key of regionKeys) {
        const what = key.toString('hex');
        expect(
          codeOfThrow(() => db.get(key)),
          `get ${what}`,
        ).toBe('ERR_BAD_ARGUMENT');
        expect(
          codeOfThrow(() => db.getString(key)),
          `getString ${what}`,
        ).toBe('ERR_BAD_ARGUMENT');
        expect(
          codeOfThrow(() => db.getUnsafe(key)),
          `getUnsafe ${what}`,
        ).toBe('ERR_BAD_ARGUMENT');
        expect(
          codeOfThrow(() => snapshot.get(key)),
          `snapshot.get ${what}`,
        ).toBe('ERR_BAD_ARGUMENT');
        expect(codeOf(await rejection(db.put(key, 'x'))), `put ${what}`).toBe('ERR_BAD_ARGUMENT');
        expect(codeOf(await rejection(db.del(key))), `del ${what}`).toBe('ERR_BAD_ARGUMENT');
        const batch = db.batch([
          { type: 'put', key: 'ok', value: 'x' },
          { type: 'del', key },
        ]);
        expect(codeOf(await rejection(batch)), `batch ${what}`).toBe('ERR_BAD_ARGUMENT');
        for (const step of ['get', 'put', 'del'] as const) {
          const run = db.transaction((tx) => {
            if (step === 'get') tx.get(key);
            else if (step === 'put') tx.put(key, 'x');
            else tx.del(key);
          });
          expect(codeOf(await rejection(run)), `tx.${step} ${what}`).toBe('ERR_BAD_ARGUMENT');
        }
      }
      // FF is never a byte of UTF-8, so no string key lies in the region.
      expect(db.get('\u00ff\u00ff\u00ff\u00ff')).toBeUndefined();
    } finally {
      snapshot.release();
    }
    expect(db.get('ok'), 'the refused batch wrote nothing').toBeUndefined();
    // Keys next to the region are the default store's, and readable.
    for (const key of edgeKeys) expect(db.getString(key)).toBe(`default:${key.toString('hex')}`);
  });

  it('clips every default range below the region, forward and reverse, with limits', async () => {
    const all = ['61', ...edgeKeys.map((key) => key.toString('hex')).sort()];
    const highest = all.at(-1)!;
    expect(highest).toBe('fffffffeff');
    const snapshot = db.snapshot();
    try {
      const ranges = [
        (o?: Parameters<Database['range']>[0]) => db.range(o),
        (o?: Parameters<Database['range']>[0]) => snapshot.range(o),
      ];
      for (const [i, range] of ranges.entries()) {
        expect(keysOf(range()), `range ${i}`).toEqual(all);
        expect(keysOf(range({ reverse: true })), `reverse ${i}`).toEqual([...all].reverse());
        expect(keysOf(range({ reverse: true, limit: 1 })), `reverse limit 1 ${i}`).toEqual([highest]);
        expect(keysOf(range({ lte: Buffer.alloc(8, 0xff) })), `lte above the region ${i}`).toEqual(all);
        expect(keysOf(range({ gte: Buffer.from([0xff, 0xff, 0xff, 0xff]) })), `gte the region ${i}`).toEqual(
          [],
        );
        expect(
          keysOf(range({ gt: Buffer.from([0xff, 0xff, 0xff, 0xfe]), reverse: true })),
          `gt ${i}`,
        ).toEqual([highest]);
        const above = { gte: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), reverse: true, limit: 3 };
        expect(keysOf(range(above)), `inside the region ${i}`).toEqual([]);
      }
    } finally {
      snapshot.release();
    }
    await db.transaction((tx) => {
      tx.store(users).put('new', 'buffered');
      expect(keysOf(tx.range()), 'tx.range').toEqual(all);
      expect(keysOf(tx.range({ reverse: true, limit: 2 })), 'tx.range reverse').toEqual(
        [...all].reverse().slice(0, 2),
      );
      expect(keysOf(tx.store(users).range({ gte: 'new', lte: 'new' }))).toEqual([
        Buffer.from('new').toString('hex'),
      ]);
    });
    await users.del('new');
  });

  it('keeps stores apart from each other', () => {
    expect(users.getString('a')).toBe('users:a');
    expect(orders.getString('a')).toBe('orders:a');
    expect(keysOf(orders.range())).toEqual(['61', '62', 'c3bfc3bf', '7a7a'].sort());
    expect(keysOf(users.range({ reverse: true, limit: 1 }))).toEqual(['ffffffffff']);
    expect(users.get(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]))?.toString()).toBe('users:ff');
  });
});

describe('atomicity across stores', () => {
  it('applies a batch over stores and partitions all at once, and a bad one not at all', async () => {
    const operations = ['k1', 'k2', 'k3', 'k4', 'k5'].flatMap((key) => [
      { type: 'put' as const, key, value: `u-${key}`, store: users },
      { type: 'put' as const, key, value: `o-${key}`, store: orders },
      { type: 'put' as const, key, value: `d-${key}` },
    ]);
    const bad = [
      ...operations,
      { type: 'put' as const, key: 'k6', value: 42 as unknown as string, store: orders },
    ];
    expect(codeOf(await rejection(db.batch(bad)))).toBe('ERR_BAD_ARGUMENT');
    expect([users.get('k1'), orders.get('k1'), db.get('k1')]).toEqual([undefined, undefined, undefined]);
    await db.batch(operations);
    const snapshot = db.snapshot();
    try {
      for (const key of ['k1', 'k5']) {
        expect(snapshot.store(users).getString(key)).toBe(`u-${key}`);
        expect(snapshot.store(orders).getString(key)).toBe(`o-${key}`);
        expect(snapshot.getString(key)).toBe(`d-${key}`);
      }
    } finally {
      snapshot.release();
    }
  });

  it('leaves every store unchanged when a transaction throws or fails to commit', async () => {
    const thrown = db.transaction((tx) => {
      tx.store(users).put('t1', 'x');
      tx.store(orders).del('k1');
      tx.put('t1', 'x');
      throw new Error('abort on purpose');
    });
    await expect(thrown).rejects.toThrow('abort on purpose');
    // A read of users:k2 that a write invalidates before the commit: a conflict, no retry.
    const conflicted = db.transaction(
      async (tx) => {
        tx.store(users).get('k2');
        tx.store(orders).put('t1', 'x');
        tx.store(users).put('t1', 'x');
        tx.del('k1');
        await users.put('k2', 'changed');
      },
      { retries: 0 },
    );
    expect(codeOf(await rejection(conflicted))).toBe('ERR_TX_CONFLICT');
    expect([users.get('t1'), orders.get('t1'), db.get('t1')]).toEqual([undefined, undefined, undefined]);
    expect(orders.getString('k1')).toBe('o-k1');
    expect(db.getString('k1')).toBe('d-k1');
  });
});

describe('store arguments and the catalog', () => {
  it('rejects bad arguments with typed errors', async () => {
    for (const name of [42, '', 'a\u0000b', 'x'.repeat(256), null]) {
      expect(codeOf(await rejection(db.store(name as string))), `name ${String(name)}`).toBe(
        'ERR_BAD_ARGUMENT',
      );
      expect(codeOf(await rejection(db.dropStore(name as string))), `drop ${String(name)}`).toBe(
        'ERR_BAD_ARGUMENT',
      );
    }
    expect(codeOf(await rejection(db.store('users', { create: 'yes' as unknown as boolean })))).toBe(
      'ERR_BAD_ARGUMENT',
    );
    expect(codeOf(await rejection(db.store('missing', { create: false })))).toBe('ERR_NOT_FOUND');
    expect(codeOf(await rejection(db.dropStore('missing')))).toBe('ERR_NOT_FOUND');
    expect(db.stores()).not.toContain('missing');

    const longest = Buffer.alloc(keyBytesMax - 6, 0x61);
    await users.put(longest, 'fits');
    expect(users.getString(longest)).toBe('fits');
    const tooLong = Buffer.alloc(keyBytesMax - 5, 0x61);
    const error = await rejection(users.put(tooLong, 'x'));
    expect(codeOf(error)).toBe('ERR_KEY_TOO_LARGE');
    expect(error.message).toContain(`the limit is ${keyBytesMax - 6}`);
    expect(codeOfThrow(() => users.get(tooLong))).toBe('ERR_KEY_TOO_LARGE');
    expect(codeOfThrow(() => [...users.range({ gte: tooLong })])).toBe('ERR_KEY_TOO_LARGE');
    await users.del(longest);

    const fake = { type: 'put' as const, key: 'k', value: 'v', store: {} as Store };
    expect(codeOf(await rejection(db.batch([fake])))).toBe('ERR_BAD_ARGUMENT');
    const viaTx = db.transaction((tx) => tx.store({} as Store));
    expect(codeOf(await rejection(viaTx))).toBe('ERR_BAD_ARGUMENT');
    const snapshot = db.snapshot();
    try {
      expect(codeOfThrow(() => snapshot.store({} as Store))).toBe('ERR_BAD_ARGUMENT');
    } finally {
      snapshot.release();
    }
  });

  it('drops a store with its entries, frees its name and never reuses its id', async () => {
    const scratch = await db.store('scratch');
    expect(await db.store('scratch'), 'one Store per store and thread').toBe(scratch);
    for (let i = 0; i < 1200; i++) await scratch.put(`k${i}`, 'v');
    const entriesBefore = db.stats().entries;
    expect(db.stores()).toEqual(['orders', 'scratch', 'users']);
    await db.dropStore('scratch');
    expect(db.stats().entries, 'the entries and the record are gone').toBe(entriesBefore - 1201);
    expect(db.stores()).toEqual(['orders', 'users']);
    expect(
      codeOfThrow(() => scratch.get('k1')),
      'a dropped store handle',
    ).toBe('ERR_STORE_DROPPED');
    expect(codeOf(await rejection(scratch.put('k1', 'v')))).toBe('ERR_STORE_DROPPED');
    expect(codeOf(await rejection(db.batch([{ type: 'del', key: 'k1', store: scratch }])))).toBe(
      'ERR_STORE_DROPPED',
    );
    const again = await db.store('scratch');
    expect(again.id).toBeGreaterThan(scratch.id);
    expect([...again.range()]).toEqual([]);
    expect(again.get('k1')).toBeUndefined();
    await db.dropStore('scratch');
  });
});
