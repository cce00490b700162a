/**
 * The allocation-free read path: string keys encoded into a per-thread scratch, and getUnsafe, which
 * returns a view of a reused buffer valid until the next getUnsafe on the thread. Checked against get
 * (which copies) over seeded values of many sizes, inline and in overflow pages, with snapshots
 * holding older versions, and for the documented aliasing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLightningError, open } from '../src/index.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;

const seed = seedFromEnv(0x6e7);
let directory = '';
let db: Database;

beforeAll(async () => {
  console.log(`db-get-unsafe: seed ${seed}`);
  directory = mkdtempSync(join(tmpdir(), 'ldb-unsafe-'));
  db = await open(directory, { partitions: 4, workers: 2 });
});

afterAll(async () => {
  await db.close();
  rmSync(directory, { recursive: true, force: true });
});

function randomValue(random: () => number, length: number): Buffer {
  const value = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) value[i] = Math.floor(random() * 256);
  return value;
}

describe('getUnsafe and scratch-encoded keys', () => {
  it('read what get reads, for values inline and in overflow pages, and keys of every kind', async () => {
    const random = mulberry32(seed);
    const lengths = [0, 1, 7, 100, 1000, 4095, 4096, 4097, 20_000, 70_000, 300_000];
    const model = new Map<string, Buffer>();
    let n = 0;
    for (const length of lengths) {
      for (let i = 0; i < 4; i++) {
        // ASCII, two- and three-byte UTF-8, and a surrogate pair: each encodes into the scratch.
        const key = `${['k', 'é', '漢', '😀'][i]}:${length}:${n++}`;
        const value = randomValue(random, length);
        model.set(key, value);
        await db.put(key, value);
      }
    }
    let checked = 0;
    for (const [key, value] of model) {
      expect(db.get(key)?.equals(value), key).toBe(true);
      expect(db.getUnsafe(key)?.equals(value), key).toBe(true);
      // The same key as bytes reads the same value: the scratch encoding is the bytes' UTF-8.
      expect(db.getUnsafe(Buffer.from(key, 'utf8'))?.equals(value), key).toBe(true);
      checked++;
    }
    expect(checked).toBe(lengths.length * 4);
    expect(db.getUnsafe('absent')).toBeUndefined();
  });

  it('writes issued in one turn with string keys keep their own keys, also when the ring is full', async () => {
    // Each put's key is encoded into the same scratch; the put copies it into the ring, or into its
    // backlog when the ring has no room (8 MiB of values here: more than the rings hold).
    const value = Buffer.alloc(16 * 1024, 1);
    const keys = Array.from({ length: 512 }, (_, i) => `turn:${i}:${'é'.repeat(i % 7)}`);
    await Promise.all(keys.map((key) => db.put(key, value)));
    const dels = keys.filter((_, i) => i % 3 === 0);
    await Promise.all(dels.map((key) => db.del(key)));
    let present = 0;
    for (const [i, key] of keys.entries()) {
      const got = db.get(key);
      if (i % 3 === 0) expect(got, key).toBeUndefined();
      else {
        expect(got?.equals(value), key).toBe(true);
        present++;
      }
    }
    expect(present).toBe(keys.length - dels.length);
    const scanned = [...db.range({ gte: 'turn:', lt: 'turn;' })].length;
    expect(scanned).toBe(present);
  });

  it('returns a view that the next getUnsafe overwrites, and that get and getString leave alone', async () => {
    await db.put('alias:a', 'aaaa');
    await db.put('alias:b', 'bbbb');
    const first = db.getUnsafe('alias:a')!;
    expect(first.toString()).toBe('aaaa');
    expect(db.getString('alias:b')).toBe('bbbb');
    expect(db.get('alias:b')?.toString()).toBe('bbbb');
    expect(first.toString(), 'getString and get use buffers of their own').toBe('aaaa');
    const second = db.getUnsafe('alias:b')!;
    expect(second.toString()).toBe('bbbb');
    // As documented: the first view now shows the second value.
    expect(first.toString()).toBe('bbbb');
    // A copy taken before the next read is the caller's to keep.
    const kept = Buffer.from(db.getUnsafe('alias:a')!);
    db.getUnsafe('alias:b');
    expect(kept.toString()).toBe('aaaa');
  });

  it('reads the newest value while a snapshot keeps the older one', async () => {
    await db.put('mvcc:key', 'old value');
    const snapshot = db.snapshot();
    try {
      await db.put('mvcc:key', 'new value');
      expect(db.getUnsafe('mvcc:key')?.toString()).toBe('new value');
      expect(snapshot.getString('mvcc:key')).toBe('old value');
      await db.del('mvcc:key');
      expect(db.getUnsafe('mvcc:key')).toBeUndefined();
      expect(snapshot.getString('mvcc:key')).toBe('old value');
    } finally {
      snapshot.release();
    }
  });

  it('refuses keys too large in bytes, whatever their length in characters, and bad types', () => {
    const codeOf = (read: () => unknown): string => {
      try {
        read();
        return 'no error';
      } catch (error) {
        return isLightningError(error) ? error.code : String(error);
      }
    };
    // 1,024 bytes is the limit: 1,025 ASCII characters, and 400 three-byte characters (1,200 bytes).
    expect(codeOf(() => db.getUnsafe('x'.repeat(1025)))).toBe('ERR_KEY_TOO_LARGE');
    expect(codeOf(() => db.get('漢'.repeat(400)))).toBe('ERR_KEY_TOO_LARGE');
    expect(codeOf(() => db.getString('漢'.repeat(341)))).toBe('no error');
    expect(codeOf(() => db.getUnsafe(42 as unknown as string))).toBe('ERR_BAD_ARGUMENT');
  });
});
