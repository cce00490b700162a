/**
 * Read locks of prepared serializable transactions, end to end: two cross-partition transactions read
 * the same key and are both held PREPARED (by a gate on the 'tx.after-prepare' fail-point) while a
 * plain db.put writes that key. The put must wait until both are decided, whichever is decided
 * first: if it landed between a reader's PREPARE and its decision, a reader of the database could see
 * the put and not that transaction's writes although the transaction read the key before the put.
 *
 * How the wait is observed without timing: after the first decision, two single-partition
 * transactions on the key's partition go through its owner one after the other. The owner applies
 * published decisions at the start of every pass and retries waiting writes first, so the pass that
 * completes the second one started after the first decision was applied: a put freed by that
 * decision has landed by then, and is visible to db.get().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { setFailpointGate } from '../src/workers/failpoints.js';
import { within } from './support/async.js';
import { keyPicker } from './support/tx-keys.js';

type Database = Awaited<ReturnType<typeof open>>;

const partitions = 8;
const waitMs = 20_000;
let db: Database;
let dir: string;
/** The key both transactions read and the put writes, and two more keys of its partition. */
let readKey: string;
let barrierKeys: string[];
/** One key per transaction, in partitions other than the read key's: each is a two-phase commit. */
let writtenKeys: string[];

/** While true, the gate holds every transaction; else they pass. */
let holding = false;
/** Transactions held at the gate, in the order they arrived (each had prepared everywhere). */
const held: (() => void)[] = [];
let arrivalWaiters: { count: number; resolve: () => void }[] = [];

function arrivals(count: number): Promise<void> {
  if (held.length >= count) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => arrivalWaiters.push({ count, resolve })),
    waitMs,
    `${count} transactions to prepare`,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ldb-tx-read-locks-'));
  db = await open(dir, { partitions, workers: 2, durability: 'none' });
  const keys = await keyPicker(partitions);
  [readKey, ...barrierKeys] = keys.samePartition('read-', 3) as [string, ...string[]];
  const readPartition = keys.partitionOf(readKey);
  writtenKeys = keys
    .differentPartitions('written-', partitions)
    .filter((key) => keys.partitionOf(key) !== readPartition)
    .slice(0, 2);
  setFailpointGate('tx.after-prepare', () => {
    if (!holding) return Promise.resolve();
    const decided = new Promise<void>((resolve) => held.push(resolve));
    arrivalWaiters = arrivalWaiters.filter((waiter) => {
      if (held.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
    return decided;
  });
});

// A failed test must not leave transactions held for the next one: let every one go on.
afterEach(() => {
  holding = false;
  for (const release of held) release();
});

afterAll(async () => {
  setFailpointGate('tx.after-prepare', null);
  await within(db.close(), 10_000, 'db.close()');
  rmSync(dir, { recursive: true, force: true });
});

/** Reads the read key and writes what it saw under its own key: a two-phase commit over two partitions. */
function readAndRecord(writtenKey: string): Promise<string | undefined> {
  return db.transaction((tx) => {
    const seen = tx.getString(readKey);
    tx.put(writtenKey, `saw ${seen}`);
    return seen;
  });
}

/** Resolves once the read key's owner has run a whole pass that started after this call. */
async function ownerPassesAfterNow(): Promise<void> {
  for (const [n, key] of barrierKeys.entries()) {
    await within(
      db.transaction((tx) => tx.put(key, `barrier ${n}`)),
      waitMs,
      `barrier transaction ${n}`,
    );
  }
}

describe('read locks of prepared transactions hold off plain writes until every reader is decided', () => {
  for (const firstDecided of [0, 1]) {
    const which = firstDecided === 0 ? 'first' : 'second';
    it(`when the ${which} transaction to prepare is decided first`, async () => {
      await db.put(readKey, 'before');
      await Promise.all(writtenKeys.map((key) => db.del(key)));
      held.length = 0;
      holding = true;
      const before = db.stats().transactions;
      const events: string[] = [];

      // One after the other, so the first holds its read lock before the second takes its own.
      const first = readAndRecord(writtenKeys[0]!);
      await arrivals(1);
      const second = readAndRecord(writtenKeys[1]!);
      await arrivals(2);
      holding = false;
      const transactions = [first, second];

      const put = db.put(readKey, 'plain').then(() => {
        events.push('put');
      });
      events.push(`decide ${firstDecided}`);
      held[firstDecided]!();
      expect(await within(transactions[firstDecided]!, waitMs, 'the first decision')).toBe('before');
      await ownerPassesAfterNow();

      // One reader is still undecided: the put has neither landed nor been acknowledged.
      expect(db.getString(readKey)).toBe('before');
      expect(events).not.toContain('put');
      expect(db.getString(writtenKeys[firstDecided]!)).toBe('saw before');
      expect(db.getString(writtenKeys[1 - firstDecided]!)).toBeUndefined();

      events.push(`decide ${1 - firstDecided}`);
      held[1 - firstDecided]!();
      expect(await within(transactions[1 - firstDecided]!, waitMs, 'the second decision')).toBe('before');
      await within(put, waitMs, 'the plain put');

      // The only serial order: both transactions (which read 'before'), then the put.
      expect(events).toEqual([`decide ${firstDecided}`, `decide ${1 - firstDecided}`, 'put']);
      expect(db.getString(readKey)).toBe('plain');
      expect(writtenKeys.map((key) => db.getString(key))).toEqual(['saw before', 'saw before']);
      const after = db.stats().transactions;
      expect(after.crossPartitionCommits - before.crossPartitionCommits).toBe(2);
      expect(held.length).toBe(2);
    });
  }
});
