/**
 * Key and value encodings round trip through every path that takes or returns keys and values: put,
 * get, getMany, del, batch, range (bounds encoded, entries decoded, in the order of the encoded
 * bytes), keys, values, count, clear, snapshots, transactions, conditional writes and attach(). Each
 * encoding pair runs seeded random writes against a model (a Map) at 1 or 3 partitions. Bad input to
 * an encoding is ERR_BAD_ARGUMENT; a custom encoding does not travel in a handle.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test names.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { attach, type EncodingOption, open } from '../src/index.js';
import { codeOf, within } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { startTsWorker } from './support/ts-worker.js';
import { uint32 } from './support/uint32-encoding.js';

const baseSeed = seedFromEnv(0xe4c0de);
const seedText = `0x${baseSeed.toString(16)}`;
const writesPerCase = 120;

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-enc-'));
  tempDirs.push(dir);
  return dir;
}

const packr = new Packr({ useRecords: false });

interface Case<K, V> {
  name: string;
  partitions: number;
  keyEncoding: EncodingOption<K>;
  valueEncoding: EncodingOption<V>;
  /** The stored bytes of a key, as the encoding writes them: the model sorts by these. */
  keyBytes: (key: K) => Buffer;
  key: (random: () => number) => K;
  value: (random: () => number, i: number) => V;
}

const cases = [
  {
    name: 'utf8 keys, utf8 values',
    partitions: 1,
    keyEncoding: 'utf8',
    valueEncoding: 'utf8',
    keyBytes: (key: string) => Buffer.from(key),
    key: (random: () => number) => `k${random() % 50}é`,
    value: (_: () => number, i: number) => `value ${i} ✓`,
  } satisfies Case<string, string>,
  {
    name: 'utf8 keys, json values',
    partitions: 3,
    keyEncoding: 'utf8',
    valueEncoding: 'json',
    keyBytes: (key: string) => Buffer.from(key),
    key: (random: () => number) => `user:${random() % 40}`,
    value: (random: () => number, i: number) => ({ i, tags: ['a', random() % 3], nested: { ok: true } }),
  } satisfies Case<string, unknown>,
  {
    name: 'json keys, msgpack values',
    partitions: 3,
    keyEncoding: 'json',
    valueEncoding: 'msgpack',
    keyBytes: (key: unknown) => Buffer.from(JSON.stringify(key)),
    key: (random: () => number) => ['order', random() % 30],
    value: (random: () => number, i: number) => ({
      i,
      bytes: Buffer.from([i & 0xff, 0, 255]),
      big: random(),
    }),
  } satisfies Case<unknown, unknown>,
  {
    name: 'msgpack keys, binary values',
    partitions: 1,
    keyEncoding: 'msgpack',
    valueEncoding: 'binary',
    keyBytes: (key: unknown) => Buffer.from(packr.pack(key)),
    key: (random: () => number) => (random() % 2 === 0 ? random() % 100 : `s${random() % 20}`),
    value: (random: () => number) => Buffer.from([random() & 0xff, random() & 0xff]),
  } satisfies Case<unknown, Uint8Array>,
  {
    name: 'custom uint32 keys, json values',
    partitions: 3,
    keyEncoding: uint32,
    valueEncoding: 'json',
    keyBytes: (key: number) => uint32.encode(key) as Buffer,
    key: (random: () => number) => random() % 5000,
    value: (_: () => number, i: number) => [i, String(i)],
  } satisfies Case<number, unknown>,
];

describe.each(cases)(`$name at $partitions partitions (seed ${seedText})`, (c) => {
  it('round trips through every read and write path, in encoded-key order', async () => {
    const test = c as unknown as Case<unknown, unknown>;
    const random = mulberry32(baseSeed + test.partitions);
    const db = await open<unknown, unknown>(tempDir(), {
      partitions: test.partitions,
      workers: 1,
      keyEncoding: test.keyEncoding,
      valueEncoding: test.valueEncoding,
    });
    const model = new Map<string, { key: unknown; value: unknown }>();
    const name = (key: unknown): string => test.keyBytes(key).toString('hex');
    const sorted = (): Array<{ key: unknown; value: unknown }> =>
      [...model.entries()]
        .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')))
        .map(([, e]) => e);
    try {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < writesPerCase; i++) {
        const key = test.key(random);
        if (random() % 5 === 0) {
          writes.push(db.del(key));
          model.delete(name(key));
        } else if (random() % 4 === 0) {
          const value = test.value(random, i);
          writes.push(db.batch([{ type: 'put', key, value }]));
          model.set(name(key), { key, value });
        } else {
          const value = test.value(random, i);
          writes.push(db.put(key, value));
          model.set(name(key), { key, value });
        }
      }
      await Promise.all(writes);

      const expected = sorted();
      for (const { key, value } of expected) expect(db.get(key)).toEqual(value);
      const asked = [...expected.slice(0, 5).map((e) => e.key), test.key(random)];
      expect(db.getMany(asked)).toEqual(asked.map((key) => model.get(name(key))?.value));
      expect([...db.range()]).toEqual(expected.map((e) => [e.key, e.value]));
      expect([...db.keys({ reverse: true })]).toEqual(expected.map((e) => e.key).reverse());
      expect([...db.values({ limit: 3 })]).toEqual(expected.slice(0, 3).map((e) => e.value));
      const lower = expected[Math.floor(expected.length / 4)]!.key;
      const upper = expected[Math.floor((3 * expected.length) / 4)]!.key;
      const within = expected.filter(
        (e) =>
          Buffer.compare(test.keyBytes(e.key), test.keyBytes(lower)) >= 0 &&
          Buffer.compare(test.keyBytes(e.key), test.keyBytes(upper)) < 0,
      );
      expect([...db.range({ gte: lower, lt: upper })]).toEqual(within.map((e) => [e.key, e.value]));
      expect(db.count({ gte: lower, lt: upper })).toBe(within.length);

      // Snapshots and transactions decode the same way; a transaction sees its own typed writes.
      const snapshot = db.snapshot();
      const first = expected[0]!;
      expect(snapshot.get(first.key)).toEqual(first.value);
      const fresh = test.value(random, -1);
      const seen = await db.transaction((tx) => {
        tx.put(first.key, fresh);
        return [tx.get(first.key), [...tx.range({ lte: first.key })]];
      });
      expect(seen).toEqual([fresh, [[first.key, fresh]]]);
      expect(db.get(first.key)).toEqual(fresh);
      expect(snapshot.get(first.key), 'the snapshot still sees the old value').toEqual(first.value);
      expect([...snapshot.range({ limit: 1 })]).toEqual([[first.key, first.value]]);
      snapshot.release();

      // A conditional write compares encoded values.
      const code = await db
        .put(first.key, test.value(random, -2), { ifValue: first.value })
        .then(() => 'resolved', codeOf);
      expect(code).toBe('ERR_CONDITION_FAILED');
      await db.put(first.key, first.value, { ifValue: fresh });
      expect(db.get(first.key)).toEqual(first.value);

      // An attached thread gets the encodings the handle names (a custom one: given to attach).
      const attached = await attach<unknown, unknown>(
        db.share(),
        typeof test.keyEncoding === 'object' ? { keyEncoding: test.keyEncoding } : undefined,
      );
      try {
        expect([...attached.range()]).toEqual(expected.map((e) => [e.key, e.value]));
      } finally {
        await attached.close();
      }

      expect(await db.clear({ gte: lower, lt: upper })).toBe(within.length);
      expect(db.count()).toBe(expected.length - within.length);
    } finally {
      await db.close();
    }
  });
});

describe('an app worker that attaches', () => {
  it('reads and writes with the encodings the handle names', async () => {
    const db = await open<string, unknown>(tempDir(), {
      partitions: 2,
      workers: 1,
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
    try {
      await db.put('from-main', { list: [1, 'two'], nested: { ok: true } });
      const worker = startTsWorker(new URL('./fixtures/encoded-attached-worker.ts', import.meta.url), {
        handle: db.share(),
      });
      const reply = await within(
        new Promise<{ type: string; seen?: unknown; message?: string }>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) without replying`)));
        }),
        120_000,
        'the attached worker to reply',
      );
      await worker.terminate();
      expect(reply).toEqual({ type: 'done', seen: { list: [1, 'two'], nested: { ok: true } } });
      expect(db.get('from-worker')).toEqual({
        seen: { list: [1, 'two'], nested: { ok: true } },
        thread: 'worker',
      });
    } finally {
      await db.close();
    }
  });
});

describe('encodings refuse what they cannot encode', () => {
  it('bad values and keys are ERR_BAD_ARGUMENT; bad encoding options open nothing', async () => {
    const dir = tempDir();
    const db = await open<string, unknown>(dir, {
      partitions: 1,
      workers: 1,
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
    const unchecked = <T>(value: unknown): T => value as T;
    try {
      const outcome = (promise: Promise<unknown>): Promise<string> => promise.then(() => 'resolved', codeOf);
      expect(await outcome(db.put(unchecked<string>(42), 'v')), 'a number key under utf8').toBe(
        'ERR_BAD_ARGUMENT',
      );
      expect(await outcome(db.put('k', undefined)), 'undefined under json').toBe('ERR_BAD_ARGUMENT');
      expect(await outcome(db.put('k', 10n)), 'a BigInt under json').toBe('ERR_BAD_ARGUMENT');
      expect(() => db.get(unchecked<string>(Buffer.from('k'))), 'a Buffer key under utf8').toThrow(
        expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }),
      );
      expect(() => db.range({ gte: unchecked<string>(1) })).toThrow(
        expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }),
      );
      expect(await outcome(db.put('x'.repeat(1025), 1)), 'the key limit is on encoded bytes').toBe(
        'ERR_KEY_TOO_LARGE',
      );
      expect(db.count()).toBe(0);
      await db.put('k', { a: 1 });
      expect(db.getString('k'), 'getString returns the stored bytes').toBe('{"a":1}');
    } finally {
      await db.close();
    }
    // Bytes that are not JSON, written by a raw open, fail to decode with ERR_BAD_ARGUMENT.
    const raw = await open(dir, { workers: 1 });
    await raw.put('k', 'not json');
    await raw.close();
    const again = await open<string, unknown>(dir, {
      workers: 1,
      keyEncoding: 'utf8',
      valueEncoding: 'json',
    });
    try {
      expect(() => again.get('k')).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
      const handle = again.share();
      expect([handle.keyEncoding, handle.valueEncoding], 'the handle names the encodings').toEqual([
        'utf8',
        'json',
      ]);
    } finally {
      await again.close();
    }

    const refused = async (options: object): Promise<string> =>
      open(join(tempDir(), 'db'), { partitions: 1, workers: 1, ...(options as object) }).then(
        async (opened) => {
          await opened.close();
          return 'opened';
        },
        codeOf,
      );
    expect(await refused({ keyEncoding: 'base64' })).toBe('ERR_BAD_ARGUMENT');
    expect(await refused({ valueEncoding: 42 })).toBe('ERR_BAD_ARGUMENT');
    expect(await refused({ valueEncoding: null })).toBe('ERR_BAD_ARGUMENT');
    expect(await refused({ valueEncoding: { encode: () => 'x' } })).toBe('ERR_BAD_ARGUMENT');
  });

  it('a custom encoding that returns neither bytes nor a string is refused; it cannot cross threads', async () => {
    const broken = { encode: () => 42 as unknown as string, decode: (bytes: Buffer) => bytes.toString() };
    const db = await open<string, string>(tempDir(), { partitions: 1, workers: 1, valueEncoding: broken });
    try {
      expect(await db.put('k', 'v').then(() => 'resolved', codeOf)).toBe('ERR_BAD_ARGUMENT');
      const handle = db.share();
      expect(handle.valueEncoding).toBe('custom');
      expect(await attach(handle).then(() => 'attached', codeOf)).toBe('ERR_BAD_ARGUMENT');
    } finally {
      await db.close();
    }
  });
});
