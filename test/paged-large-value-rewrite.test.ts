/**
 * A value a buffer pool admits must stay deletable and overwritable at its size: freeing its overflow
 * chain changes every page of it, so a delete counts the chain and a merge per level, and a same-size
 * overwrite counts the chain twice, both more than the put did. A put whose later delete or
 * overwrite would not fit a clean pool is refused at the put (pass-reservation.ts requireRewritable).
 *
 * One partition, 64 frames of 4 KiB, 3,000 keys of 200 bytes (three levels). The largest value the
 * pool admits, found by bisection over whole KiB (no randomness, no timing), is then overwritten at
 * its size, deleted, put again and deleted in a batch, in a transaction and by clear(), and deleted
 * after a reopen. A value one KiB larger is refused with a message naming its later delete or
 * overwrite; a single write refused for its own size is not told to split itself.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';

const options = { partitions: 1, memoryMaxBytes: 64 * 4096 } as const;

let dir = '';
afterEach(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  dir = '';
});

async function fill(db: Database): Promise<void> {
  for (let i = 0; i < 3000; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, j) => db.put(`f${i + j}`, 'y'.repeat(200))));
  }
}

async function refusal(write: Promise<unknown>): Promise<{ code?: string; message: string } | null> {
  try {
    await write;
    return null;
  } catch (error) {
    return error as { code?: string; message: string };
  }
}

it('keeps the largest value a pool admits deletable and overwritable, after a reopen too', async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-large-value-'));
  let db = await open(dir, options);
  await fill(db);
  // Bisection over KiB: 1 KiB is admitted, 1 MiB is not.
  let low = 1;
  let high = 1024;
  while (high - low > 1) {
    const mid = (low + high) >>> 1;
    const error = await refusal(db.put('probe', Buffer.alloc(mid * 1024, 7)));
    if (error === null) {
      low = mid;
      await db.del('probe');
    } else {
      expect(error.code).toBe('ERR_PARTITION_FULL');
      high = mid;
    }
  }
  const size = low * 1024;
  expect(low).toBeGreaterThan(16);
  const value = (fillByte: number): Buffer => Buffer.alloc(size, fillByte);

  // One KiB more is refused at the put, with the reason.
  const larger = await refusal(db.put('big', Buffer.alloc(size + 1024, 1)));
  expect(larger?.code).toBe('ERR_PARTITION_FULL');
  expect(larger?.message).toMatch(/deleting or overwriting its value later could change up to \d+ pages/);
  expect(larger?.message).not.toMatch(/split it/);
  // A single put too large for the pool on its own is not told to split itself.
  const huge = await refusal(db.put('huge', Buffer.alloc(1024 * 1024, 1)));
  expect(huge?.code).toBe('ERR_PARTITION_FULL');
  expect(huge?.message).not.toMatch(/split it/);

  await db.put('big', value(1));
  await db.put('big', value(2));
  expect(db.get('big')).toEqual(value(2));
  await db.del('big');
  expect(db.get('big')).toBeUndefined();

  await db.put('big', value(3));
  await db.batch([{ type: 'del', key: 'big' }]);
  expect(db.get('big')).toBeUndefined();

  await db.put('big', value(4));
  await db.transaction((tx) => {
    tx.del('big');
  });
  expect(db.get('big')).toBeUndefined();

  await db.put('big', value(5));
  await db.transaction((tx) => {
    tx.put('big', value(6));
  });
  expect(db.get('big')).toEqual(value(6));
  await db.clear({ gte: 'big', lte: 'big' });
  expect(db.get('big')).toBeUndefined();

  await db.put('big', value(7));
  await db.close();
  db = await open(dir, options);
  expect(db.get('big')).toEqual(value(7));
  await db.put('big', value(8));
  expect(db.get('big')).toEqual(value(8));
  await db.del('big');
  expect(db.get('big')).toBeUndefined();
  await db.put('big', value(9));
  await db.close();
  db = await open(dir, options);
  await db.transaction((tx) => {
    tx.del('big');
  });
  expect(db.get('big')).toBeUndefined();
  expect(db.getString('f1234')).toBe('y'.repeat(200));
  await db.close();
}, 120_000);
