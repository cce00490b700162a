/**
 * A clean close of a database over page files checkpoints every partition that changed and starts
 * its owner's log on a new segment, so the segments holding the run's records go: the next open
 * reads a log with nothing in it (it read the whole log before, to find every record below where the
 * pages were, 265 MB after a load of 10 million records). A partition holding a prepared
 * transaction keeps its log tail (page-sets.ts), which this does not cover.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { segmentHeaderBytes } from '../src/storage/wal/wal-format.js';

const partitions = 2;
const pageSize = 4096;
const options = { partitions, workers: 1, memoryMaxBytes: partitions * 64 * pageSize } as const;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-close-log-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes of records in the log directory: every segment's bytes past its header. */
async function logRecordBytes(): Promise<number> {
  const wal = join(dir, 'wal');
  let bytes = 0;
  for (const name of await readdir(wal))
    bytes += Math.max(0, (await stat(join(wal, name))).size - segmentHeaderBytes);
  return bytes;
}

it('leaves no log records after a clean close, and the reopen replays none', async () => {
  const value = (i: number): Buffer => Buffer.alloc(100 + (i % 300), i & 0xff);
  const keys = 6000;
  let db = await open(dir, options);
  for (let i = 0; i < keys; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) => db.put(`key${String(i + j).padStart(6, '0')}`, value(i + j))),
    );
  }
  // The trees are several times the pools: page sets were written while loading.
  const evictions = db.stats().bufferPools!.reduce((sum, pool) => sum + pool.evictions, 0);
  expect(evictions).toBeGreaterThan(0);
  expect(await logRecordBytes()).toBeGreaterThan(keys * 100);
  await db.close();
  expect(await logRecordBytes()).toBe(0);

  db = await open(dir, options);
  try {
    expect(db.stats().recovery?.replayedRecords ?? 0).toBe(0);
    for (let i = 0; i < keys; i += 97) expect(db.get(`key${String(i).padStart(6, '0')}`)).toEqual(value(i));
    // Writes after the reopen are logged, and the next clean close takes them out of the log too.
    await db.put('after', 'reopen');
    expect(await logRecordBytes()).toBeGreaterThan(0);
  } finally {
    await db.close();
  }
  expect(await logRecordBytes()).toBe(0);
  db = await open(dir, options);
  try {
    expect(db.get('after')?.toString()).toBe('reopen');
  } finally {
    await db.close();
  }
});
