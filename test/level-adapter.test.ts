import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyBytesMax, valueBytesMax } from '../src/index.js';
import { LightningLevel } from '../src/level/index.js';

/**
 * What LightningLevel adds beyond Level's suite: lightning-db's limits surface with Level's error
 * codes, seek stays within the iterator's bounds and at its snapshot, and the lightning-db database
 * underneath is reachable. One database for the file keeps it to one open.
 */

let directory: string;
let db: LightningLevel<string, string>;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'ldb-level-'));
  db = new LightningLevel(join(directory, 'db'), { partitions: 2, workers: 1, durability: 'none' });
  await db.open();
});

afterAll(async () => {
  await db?.close();
  rmSync(directory, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; cause?: { code?: string } }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; cause?: { code?: string } };
  }
  throw new Error('expected a rejection');
}

describe('LightningLevel', () => {
  it('surfaces lightning-db key and value limits as LEVEL_INVALID_KEY and LEVEL_INVALID_VALUE', async () => {
    const longKey = 'k'.repeat(keyBytesMax + 1);
    for (const error of [
      await rejection(db.put(longKey, 'v')),
      await rejection(db.get(longKey)),
      await rejection(db.batch([{ type: 'del', key: longKey }])),
    ]) {
      expect(error.code).toBe('LEVEL_INVALID_KEY');
      expect(error.cause?.code).toBe('ERR_KEY_TOO_LARGE');
    }
    expect(() => db.getSync(longKey)).toThrow(expect.objectContaining({ code: 'LEVEL_INVALID_KEY' }));
    const bigValue = Buffer.alloc(valueBytesMax + 1);
    const error = await rejection(db.put('k', bigValue, { valueEncoding: 'buffer' }));
    expect(error.code).toBe('LEVEL_INVALID_VALUE');
    expect(error.cause?.code).toBe('ERR_VALUE_TOO_LARGE');
    // A key of exactly the limit is fine.
    await db.put('k'.repeat(keyBytesMax), 'at the limit');
    expect(db.getSync('k'.repeat(keyBytesMax))).toBe('at the limit');
  });

  it('seeks within the bounds and at the snapshot of the iterator', async () => {
    const keys = ['s:a', 's:b', 's:c', 's:d', 's:e'];
    await db.batch(keys.map((key) => ({ type: 'put' as const, key, value: key.toUpperCase() })));
    const forward = db.keys({ gt: 's:a', lt: 's:e' });
    await db.del('s:c');
    forward.seek('s:0');
    expect(await forward.next()).toBe('s:b');
    forward.seek('s:c');
    expect(await forward.all()).toEqual(['s:c', 's:d']);
    const reverse = db.iterator({ gte: 's:b', lte: 's:d', reverse: true });
    reverse.seek('s:z');
    expect(await reverse.next()).toEqual(['s:d', 'S:D']);
    reverse.seek('s:c');
    expect(await reverse.all()).toEqual([['s:b', 'S:B']]);
  });

  it('gives the lightning-db database underneath for transactions', async () => {
    await db.database.transaction((tx) => tx.put('tx-key', 'written in a transaction'));
    expect(await db.get('tx-key')).toBe('written in a transaction');
  });
});
