/**
 * Durable, then visible: in 'sync' mode no reader, on any path (get, range, snapshot, transaction),
 * sees a write before its log record is on disk. The owner's log write and fdatasync are slowed with
 * the 'owner.before-sync' fail-point (a slow disk), and the test polls the key from the main thread
 * while the put is in flight: every poll before the put's promise resolves must miss it.
 *
 * A reader may see the write once its log record is written and synced, a moment before the
 * caller's promise resolves; what it must never do is see it while the record is not in the files.
 * So every poll that sees the write also measures the database's files: they must have grown since
 * before the write was issued (the fail-point holds the pass before its log write, so until then
 * they have not). The bound is on what is seen, not on time, and the test requires a minimum number
 * of polls inside the window so it cannot pass by not looking.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import { within } from './support/async.js';

const delayMs = 300;
const pollsMin = 20;
const dirs: string[] = [];
const databases: Database[] = [];

afterEach(async () => {
  for (const db of databases.splice(0)) await db.close().catch(() => {});
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Bytes of every file under `dir`: what the database has handed to the file system. */
function bytesOnDisk(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    try {
      bytes += statSync(join(entry.parentPath, entry.name)).size;
    } catch {
      // Removed between the listing and the stat (a rotated or checkpointed file): not counted.
    }
  }
  return bytes;
}

let currentDir = '';

async function openSlowDisk(durability: 'sync' | 'relaxed'): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'lightning-visible-'));
  dirs.push(dir);
  currentDir = dir;
  const db = await open(dir, {
    partitions: 4,
    workers: 2,
    durability,
    failpoints: { 'owner.before-sync': `delay:${delayMs}` },
  });
  databases.push(db);
  return db;
}

/**
 * Polls `seen()` on every turn of the event loop until `pending` settles; counts polls, and sightings
 * made while the files have not grown since `bytesBefore` (the write is visible but not logged).
 */
async function pollWhilePending(
  pending: Promise<unknown>,
  bytesBefore: number,
  seen: () => boolean,
): Promise<{ polls: number; sightings: number }> {
  let settled = false;
  void pending.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  let polls = 0;
  let sightings = 0;
  while (!settled) {
    polls++;
    if (seen() && bytesOnDisk(currentDir) <= bytesBefore) sightings++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { polls, sightings };
}

describe("durability 'sync': durable, then visible", () => {
  it('get, range, snapshot and transaction reads miss a put until its promise resolves', async () => {
    const db = await openSlowDisk('sync');
    for (let round = 0; round < 4; round++) {
      const key = `k${round}`;
      const value = `v${round}`;
      const before = bytesOnDisk(currentDir);
      const put = db.put(key, value);
      const { polls, sightings } = await pollWhilePending(put, before, () => {
        const snapshot = db.snapshot();
        try {
          let inRange = false;
          for (const [k] of db.range({ gte: key, lte: key })) inRange ||= k.toString() === key;
          return db.getString(key) !== undefined || inRange || snapshot.get(key) !== undefined;
        } finally {
          snapshot.release();
        }
      });
      await within(put, 30_000, `put ${key}`);
      console.log(
        `[durable-before-visible] round ${round}: ${polls} polls while pending, ${sightings} saw it unlogged`,
      );
      expect(polls, 'the reads looked while the put was pending').toBeGreaterThanOrEqual(pollsMin);
      expect(sightings, 'a read saw a write whose log record was not written').toBe(0);
      expect(db.getString(key)).toBe(value);
    }
  });

  it('a cross-partition batch and a transaction become visible only when they resolve', async () => {
    const db = await openSlowDisk('sync');
    const keys = Array.from({ length: 8 }, (_, i) => `batch-${i}`);
    const beforeBatch = bytesOnDisk(currentDir);
    const batch = db.batch(keys.map((key) => ({ type: 'put' as const, key, value: 'b' })));
    const batchSeen = await pollWhilePending(batch, beforeBatch, () =>
      keys.some((key) => db.get(key) !== undefined),
    );
    await within(batch, 30_000, 'batch');
    expect(batchSeen.polls).toBeGreaterThanOrEqual(pollsMin);
    expect(batchSeen.sightings, 'a batch key was visible before the batch resolved').toBe(0);
    for (const key of keys) expect(db.getString(key)).toBe('b');

    const beforeTx = bytesOnDisk(currentDir);
    const tx = db.transaction(async (t) => {
      for (const key of keys) t.put(key, 't');
    });
    const txSeen = await pollWhilePending(tx, beforeTx, () => keys.some((key) => db.getString(key) === 't'));
    await within(tx, 30_000, 'transaction');
    expect(txSeen.polls).toBeGreaterThanOrEqual(pollsMin);
    expect(txSeen.sightings, 'a transaction write was visible before the commit resolved').toBe(0);
    for (const key of keys) expect(db.getString(key)).toBe('t');
  });
});
