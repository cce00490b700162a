/**
 * Per-store encodings: a store opened with `db.store<K, V>(name, { keyEncoding, valueEncoding })`
 * round-trips its keys and values through every path (put, get, getMany, del, batch of the store and
 * of the database, range with encoded bounds in the order of the encoded bytes, keys, values, count,
 * clear, snapshots, transactions, conditional writes), checked against a model (a Map) after seeded
 * random writes. A store's encodings are independent of the database's and of other stores'; they
 * are a view, not stored: two views of one store read the same bytes. Bad encodings are
 * ERR_BAD_ARGUMENT, as the database's are.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test names.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EncodingOption, open, type Store } from '../src/index.js';
import { codeOf, codeOfThrow, rejection } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { uint32 } from './support/uint32-encoding.js';

const baseSeed = seedFromEnv(0x5707e5);
const seedText = `0x${baseSeed.toString(16)}`;
const writesPerCase = 150;

type Database = Awaited<ReturnType<typeof open<string, { n: number }>>>;

let dir: string;
let db: Database;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ldb-stores-enc-'));
  // The database has encodings of its own: the stores' must not depend on them.
  db = await open<string, { n: number }>(dir, {
    partitions: 3,
    workers: 2,
    durability: 'none',
    keyEncoding: 'utf8',
    valueEncoding: 'json',
  });
});

afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Case<K, V> {
  name: string;
  keyEncoding?: EncodingOption<K>;
  valueEncoding?: EncodingOption<V>;
  /** The stored bytes of a key: the model sorts by these. */
  keyBytes: (key: K) => Buffer;
  key: (random: () => number) => K;
  value: (random: () => number, i: number) => V;
  /** The value as get returns it (the default encoding returns Buffers). */
  out: (value: V) => unknown;
}

const cases = [
  {
    name: 'utf8 keys, json values',
    keyEncoding: 'utf8',
    valueEncoding: 'json',
    keyBytes: (key: string) => Buffer.from(key, 'utf8'),
    key: (random: () => number) => `k${Math.floor(random() * 60)}é`,
    value: (random: () => number, i: number) => ({ i, tags: [random() < 0.5 ? 'a' : 'b'] }),
    out: (value: unknown) => value,
  } satisfies Case<string, { i: number; tags: string[] }>,
  {
    name: 'custom uint32 keys, msgpack values',
    keyEncoding: uint32,
    valueEncoding: 'msgpack',
    keyBytes: (key: number) => uint32.encode(key) as Buffer,
    key: (random: () => number) => (Math.floor(random() * 3000) * 1_000_003) % 2 ** 32,
    value: (random: () => number, i: number) => ({ i, big: random() < 0.5 ? 2 ** 40 : -1 }),
    out: (value: unknown) => value,
  } satisfies Case<number, { i: number; big: number }>,
  {
    name: 'binary keys, utf8 values',
    keyEncoding: 'binary',
    valueEncoding: 'utf8',
    keyBytes: (key: Uint8Array) => Buffer.from(key),
    key: (random: () => number) => Uint8Array.of(Math.floor(random() * 8), 0xff, Math.floor(random() * 8)),
    value: (_random: () => number, i: number) => `v${i}`,
    out: (value: unknown) => value,
  } satisfies Case<Uint8Array, string>,
  {
    name: 'no encodings (bytes in, Buffers out)',
    keyBytes: (key: string) => Buffer.from(key, 'utf8'),
    key: (random: () => number) => `b${Math.floor(random() * 40)}`,
    value: (_random: () => number, i: number) => `raw${i}`,
    out: (value: string) => Buffer.from(value),
  } satisfies Case<string, string>,
] as Case<unknown, unknown>[];

function compareBuffers(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

describe(`per-store encodings (LIGHTNING_SEED=${seedText})`, () => {
  for (const [index, c] of cases.entries()) {
    it(`${c.name}: ${writesPerCase} random writes against a model, every read path`, async () => {
      const next = mulberry32(baseSeed + index);
      const random = () => next() / 2 ** 32;
      const options = {
        ...(c.keyEncoding === undefined ? {} : { keyEncoding: c.keyEncoding }),
        ...(c.valueEncoding === undefined ? {} : { valueEncoding: c.valueEncoding }),
      };
      const store = (await db.store(`case-${index}`, options as object)) as unknown as Store<
        unknown,
        unknown
      >;
      const model = new Map<string, { key: unknown; value: unknown }>();
      const name = (key: unknown) => c.keyBytes(key).toString('hex');
      for (let i = 0; i < writesPerCase; i++) {
        const key = c.key(random);
        const roll = random();
        if (roll < 0.5) {
          const value = c.value(random, i);
          await store.put(key, value);
          model.set(name(key), { key, value });
        } else if (roll < 0.65) {
          await store.del(key);
          model.delete(name(key));
        } else if (roll < 0.8) {
          const other = c.key(random);
          const value = c.value(random, i);
          await store.batch([
            { type: 'put', key: other, value },
            { type: 'del', key },
          ]);
          // Later operations win: with other equal to key, the del.
          model.set(name(other), { key: other, value });
          model.delete(name(key));
        } else if (roll < 0.9) {
          // The database's batch: a store operation is encoded with the store's encodings.
          const value = c.value(random, i);
          await db.batch([
            { type: 'put', key, value, store },
            { type: 'put', key: 'default-key', value: { n: i } },
          ]);
          model.set(name(key), { key, value });
        } else {
          const value = c.value(random, i);
          await db.transaction((tx) => {
            tx.store(store).put(key, value);
          });
          model.set(name(key), { key, value });
        }
      }
      const sorted = [...model.entries()]
        .sort(([a], [b]) => compareBuffers(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')))
        .map(([, entry]) => entry);
      const expected = sorted.map(({ key, value }) => [c.out(key), c.out(value)]);
      const outKey = (key: unknown) =>
        c.keyEncoding === undefined || (c.keyEncoding as unknown) === 'binary' ? c.keyBytes(key) : key;
      const expectedEntries = sorted.map(({ key, value }) => [outKey(key), c.out(value)]);
      expect([...store.range()]).toEqual(expectedEntries);
      expect([...store.range({ reverse: true })]).toEqual([...expectedEntries].reverse());
      expect([...store.keys()]).toEqual(expectedEntries.map(([key]) => key));
      expect([...store.values()]).toEqual(expected.map(([, value]) => value));
      expect(store.count()).toBe(model.size);
      const asyncKeys: unknown[] = [];
      for await (const key of store.keys({ limit: 5 })) asyncKeys.push(key);
      expect(asyncKeys).toEqual(expectedEntries.slice(0, 5).map(([key]) => key));
      for (const { key, value } of sorted) expect(store.get(key)).toEqual(c.out(value));
      const probe = sorted.slice(0, 3).map(({ key }) => key);
      const missing = c.key(() => 0.999_999);
      const many = store.getMany([...probe, missing]);
      expect(many.slice(0, 3)).toEqual(sorted.slice(0, 3).map(({ value }) => c.out(value)));
      if (!model.has(name(missing))) expect(many[3]).toBeUndefined();

      // Bounds are keys in the store's key encoding, compared as encoded bytes.
      if (sorted.length >= 4) {
        const low = sorted[1]!.key;
        const high = sorted[sorted.length - 2]!.key;
        const within = expectedEntries.slice(1, sorted.length - 2);
        expect([...store.range({ gte: low, lt: high })]).toEqual(within);
        expect(store.count({ gte: low, lt: high })).toBe(within.length);
        const snapshot = db.snapshot();
        try {
          expect([...snapshot.store(store).range({ gte: low, lt: high })]).toEqual(within);
          expect(snapshot.store(store).get(low)).toEqual(c.out(sorted[1]!.value));
        } finally {
          snapshot.release();
        }
        const inTx = await db.transaction((tx) => [...tx.store(store).range({ gte: low, lt: high })]);
        expect(inTx).toEqual(within);
        expect(await store.clear({ gte: low, lt: high })).toBe(within.length);
        expect(store.count()).toBe(model.size - within.length);
      }
      // Conditional writes compare the stored bytes in the store's value encoding.
      const first = sorted[0]!;
      const replacement = c.value(random, -1);
      expect(codeOf(await rejection(store.put(first.key, replacement, { ifValue: replacement })))).toBe(
        'ERR_CONDITION_FAILED',
      );
      await store.put(first.key, replacement, { ifValue: first.value });
      expect(store.get(first.key)).toEqual(c.out(replacement));
      await store.del(first.key, { ifValue: replacement });
      expect(store.get(first.key)).toBeUndefined();
      // The database's own entries never show in the store, and keep the database's encodings.
      expect(db.get('default-key')).toEqual(expect.objectContaining({ n: expect.any(Number) }));
    });
  }
});

describe('encodings are a view of the store, not stored with it', () => {
  it('gives one object per store and encodings on a thread, and views that share the bytes', async () => {
    const asJson = await db.store<string, { name: string }>('people', {
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
    expect(
      await db.store<string, { name: string }>('people', { keyEncoding: 'utf8', valueEncoding: 'json' }),
    ).toBe(asJson);
    const asBytes = await db.store('people');
    expect(asBytes).not.toBe(asJson);
    expect(asBytes.id).toBe(asJson.id);
    await asJson.put('p1', { name: 'ada' });
    expect(asBytes.getString('p1')).toBe('{"name":"ada"}');
    expect(asBytes.get('p1')).toEqual(Buffer.from('{"name":"ada"}'));
    // Bytes written through another view that are not JSON: the json view fails to decode them.
    await asBytes.put('p2', 'not json');
    expect(codeOfThrow(() => asJson.get('p2'))).toBe('ERR_BAD_ARGUMENT');
    expect(asJson.getString('p2')).toBe('not json');
    const custom = {
      encode: (s: string) => s.toUpperCase(),
      decode: (b: Buffer) => b.toString().toLowerCase(),
    };
    const upper = await db.store<string, string>('people', { keyEncoding: custom, valueEncoding: custom });
    expect(
      await db.store<string, string>('people', { keyEncoding: custom }),
      'custom: a view each time',
    ).not.toBe(upper);
    await upper.put('p3', 'Hello');
    expect(asBytes.getString('P3')).toBe('HELLO');
    expect(upper.get('p3')).toBe('hello');
  });

  it('refuses bad encodings and values that do not fit them with ERR_BAD_ARGUMENT', async () => {
    const bad: unknown[] = ['utf-16', 42, null, { encode: () => 'x' }, 'Binary'];
    for (const encoding of bad) {
      for (const option of ['keyEncoding', 'valueEncoding']) {
        const error = await rejection(db.store('bad', { [option]: encoding } as object));
        expect(codeOf(error), `${option} ${String(encoding)}`).toBe('ERR_BAD_ARGUMENT');
        expect(error.message).toContain(`store option ${option}`);
      }
    }
    expect(db.stores()).not.toContain('bad');
    const typed = await db.store<string, string>('typed', { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    expect(codeOf(await rejection(typed.put(7 as unknown as string, 'v')))).toBe('ERR_BAD_ARGUMENT');
    expect(codeOf(await rejection(typed.put('k', Buffer.from('v') as unknown as string)))).toBe(
      'ERR_BAD_ARGUMENT',
    );
    expect(codeOfThrow(() => typed.get(Buffer.from('k') as unknown as string))).toBe('ERR_BAD_ARGUMENT');
    expect(codeOfThrow(() => [...typed.range({ gte: 1 as unknown as string })])).toBe('ERR_BAD_ARGUMENT');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const json = await db.store<string, unknown>('json', { keyEncoding: 'utf8', valueEncoding: 'json' });
    expect(codeOf(await rejection(json.put('k', cyclic)))).toBe('ERR_BAD_ARGUMENT');
    // The store's key limit holds for the encoded key: 1,018 bytes of UTF-8.
    await typed.put('é'.repeat(509), 'fits');
    expect(codeOf(await rejection(typed.put(`${'é'.repeat(509)}x`, 'x')))).toBe('ERR_KEY_TOO_LARGE');
  });
});
