/**
 * Batches and transactions are limited by memory, not by a fixed reservation or ring size:
 * - a batch of LIGHTNING_BIG_BATCH_ENTRIES (default 200,000) entries of 16-byte keys and 16-byte
 *   values in one partition commits with the default partition size, every entry reads back, and
 *   again after a reopen that recovers it from the log alone (no checkpoint was written);
 * - a transaction of 100,000 puts in one partition commits;
 * - a batch spread over 4 partitions (a two-phase commit), of a quarter of that size, commits and
 *   recovers;
 * - a batch larger than one log record (64 MiB) fails with ERR_BAD_ARGUMENT naming that limit;
 * - in a small partition, a batch needing a fraction of it commits, while one that cannot fit fails
 *   with ERR_PARTITION_FULL naming partitionBytesMax and the numbers, and leaves nothing visible.
 * The keys come in a scrambled order (so the tree splits in the middle of its leaves, not only at its
 * right edge), derived from the seed the test names print; LIGHTNING_SEED replays one.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BatchOperation, open } from '../src/index.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import { seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;

const seed = seedFromEnv(0xb16b_a7c4);
const seedText = `0x${seed.toString(16)}`;
const entryCount = positiveFromEnv('LIGHTNING_BIG_BATCH_ENTRIES', 200_000);
const transactionPuts = 100_000;
/** A two-phase commit over 4 partitions: a quarter of the entries keeps its cost near the others'. */
const crossPartitionCount = Math.ceil(entryCount / 4);

const tempDirs: string[] = [];
const openDatabases: Database[] = [];

afterEach(async () => {
  for (const db of openDatabases.splice(0)) await db.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-big-batch-'));
  tempDirs.push(dir);
  return dir;
}

async function openTracked(dir: string, options: Parameters<typeof open>[1]): Promise<Database> {
  const db = await open(dir, options);
  openDatabases.push(db);
  return db;
}

async function closeTracked(db: Database): Promise<void> {
  openDatabases.splice(openDatabases.indexOf(db), 1);
  await db.close();
}

/**
 * The i-th key: 16 bytes, unique (an odd multiplier is a bijection of 32-bit integers), in an order
 * the seed scrambles.
 */
function keyOf(i: number, prefix = 'k'): string {
  const scrambled = (Math.imul(i + 1, 0x9e37_79b1) ^ seed) >>> 0;
  return `${prefix}${scrambled.toString(16).padStart(8, '0')}${String(i % 10_000_000).padStart(7, '0')}`;
}

function valueAt(i: number): string {
  return `v${String(i).padStart(15, '0')}`;
}

function puts(count: number, prefix?: string): BatchOperation[] {
  const operations: BatchOperation[] = [];
  for (let i = 0; i < count; i++) operations.push({ type: 'put', key: keyOf(i, prefix), value: valueAt(i) });
  return operations;
}

/** How many of the `count` entries read back with their value (all or none are expected). */
function readBack(db: Database, count: number, prefix?: string): number {
  let found = 0;
  for (let i = 0; i < count; i++) {
    const value = db.getString(keyOf(i, prefix));
    if (value === undefined) continue;
    expect(value, `entry ${i}`).toBe(valueAt(i));
    found++;
  }
  return found;
}

/** The checkpoint files of every partition of the database in `dir`. */
function checkpointFiles(dir: string): string[] {
  const partitions = join(dir, 'partitions');
  if (!existsSync(partitions)) return [];
  return readdirSync(partitions, { recursive: true, encoding: 'utf8' }).filter((name) =>
    name.endsWith('.ckp'),
  );
}

function rssMegabytes(): number {
  return Math.round(process.memoryUsage().rss / (1024 * 1024));
}

describe(`big batches and transactions (seed ${seedText}, ${entryCount} entries)`, () => {
  it('commits a batch of small entries in one partition and recovers it from the log', async () => {
    const dir = tempDir();
    const db = await openTracked(dir, { partitions: 1, workers: 1 });
    const rssBeforeMb = rssMegabytes();
    await db.batch(puts(entryCount));
    console.log(`batch of ${entryCount} entries: RSS ${rssBeforeMb} MB before, ${rssMegabytes()} MB after`);
    expect(readBack(db, entryCount)).toBe(entryCount);
    expect(db.stats().entries).toBe(entryCount);
    await closeTracked(db);
    // Nothing but the log holds the batch: no checkpoint was written.
    expect(checkpointFiles(dir)).toEqual([]);
    const reopened = await openTracked(dir, { partitions: 1, workers: 1 });
    expect(readBack(reopened, entryCount)).toBe(entryCount);
  });

  it(`commits a transaction of ${transactionPuts} puts in one partition`, async () => {
    const db = await openTracked(tempDir(), { partitions: 1, workers: 1 });
    await db.transaction(async (tx) => {
      for (let i = 0; i < transactionPuts; i++) tx.put(keyOf(i, 't'), valueAt(i));
    });
    expect(readBack(db, transactionPuts, 't')).toBe(transactionPuts);
  });

  it('commits a batch spread over several partitions', async () => {
    const dir = tempDir();
    const db = await openTracked(dir, { partitions: 4, workers: 2 });
    await db.batch(puts(crossPartitionCount, 'x'));
    expect(readBack(db, crossPartitionCount, 'x')).toBe(crossPartitionCount);
    await closeTracked(db);
    const reopened = await openTracked(dir, { partitions: 4, workers: 2 });
    expect(readBack(reopened, crossPartitionCount, 'x')).toBe(crossPartitionCount);
  });

  it('refuses a batch larger than one log record with ERR_BAD_ARGUMENT naming the limit', async () => {
    const db = await openTracked(tempDir(), { partitions: 1, workers: 1 });
    // 65 values of 1 MiB: more than the 64 MiB and 1 KiB one write-ahead log record holds.
    const value = new Uint8Array(1024 * 1024);
    const operations: BatchOperation[] = [];
    for (let i = 0; i < 65; i++) operations.push({ type: 'put', key: `large-${i}`, value });
    const error = await db.batch(operations).then(
      () => null,
      (rejection: unknown) => rejection,
    );
    expect(error).toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    expect((error as Error).message).toContain(String(64 * 1024 * 1024 + 1024));
    expect(db.get('large-0'), 'nothing of it is visible').toBeUndefined();
    // One record's worth commits.
    await db.batch(operations.slice(0, 60));
    expect(db.get('large-59')?.length).toBe(value.length);
  });

  it('fills a small partition in one batch, and refuses one that cannot fit, naming the limit', async () => {
    const partitionBytesMax = 4 * 1024 * 1024;
    const db = await openTracked(tempDir(), { partitions: 1, workers: 1, partitionBytesMax });
    // 10,000 entries of about 50 bytes in their leaves: half a megabyte of cells.
    const fitting = 10_000;
    await db.batch(puts(fitting));
    expect(readBack(db, fitting)).toBe(fitting);
    // 5 MB of cells cannot fit in 4 MiB, however they are packed.
    const tooMany = 100_000;
    const error = await db.batch(puts(tooMany, 'z')).then(
      () => null,
      (rejection: unknown) => rejection,
    );
    expect(error).toMatchObject({ code: 'ERR_PARTITION_FULL' });
    const message = (error as Error).message;
    expect(message).toContain('partitionBytesMax');
    expect(message, 'the message gives the partition size').toContain(String(partitionBytesMax));
    expect(message, 'and what the batch needs').toMatch(/needs? (up to |about )?[\d,]+ (bytes|pages)/);
    expect(readBack(db, tooMany, 'z'), 'nothing of the refused batch is visible').toBe(0);
    expect(db.stats().entries).toBe(fitting);
    // The partition still takes ordinary writes.
    await db.put('after', 'ok');
    expect(db.getString('after')).toBe('ok');
  });
});
