/**
 * An owner worker that dies (fail-point `owner.apply: crash-after:N`, which makes it exit when it is
 * about to apply its (N+1)-th operation) must not take the database down with it: its pending writes
 * and any later writes to its partitions reject with ERR_WORKER_CRASHED within a bounded time, nothing
 * hangs, the other worker keeps serving its partitions, reads keep working (the data is in shared
 * memory), stats() reports the dead worker, and close() still resolves.
 *
 * Which worker owns a key is found without knowing the hash: a key's partition is learned from the
 * partitionStats entry count it bumps in a database without fail-points (routing depends only on the
 * key and the partition count: it is part of the on-disk format), and partition ownership comes from
 * stats().workerStats.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { codeOf, within } from './support/async.js';

type Database = Awaited<ReturnType<typeof open>>;

const partitionCount = 4;
/** Writes that start after a crash was observed must fail at least this fast. */
const failFastMs = 2000;
/** Everything that was pending when a worker died must settle within this. */
const settleMs = 10_000;

/** 'resolved' or the rejection's code, never a rejection: for counting outcomes. */
function outcome(promise: Promise<unknown>): Promise<string> {
  return promise.then(() => 'resolved', codeOf);
}

function tally(outcomes: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of outcomes) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

/**
 * Whether stats() reports a worker as alive. The brief names the field `alive: boolean`; the engine
 * may report a `state` instead, so accept either spelling rather than test a field name.
 */
function workerAlive(worker: object): boolean {
  const fields: Record<string, unknown> = { ...worker };
  if (typeof fields.alive === 'boolean') return fields.alive;
  return fields.state === 'running';
}

const openDatabases: Database[] = [];
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-'));
  tempDirs.push(dir);
  return dir;
}

async function openCrashing(workers: number, crashAfter: number): Promise<Database> {
  const db = await open(tempDir(), {
    partitions: partitionCount,
    workers,
    failpoints: { 'owner.apply': `crash-after:${crashAfter}` },
  });
  openDatabases.push(db);
  return db;
}

afterEach(async () => {
  for (const db of openDatabases.splice(0)) {
    await within(db.close(), 10_000, 'close() in afterEach').catch(() => {});
  }
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** keysByPartition[p]: keys that route to partition p (with partitionCount partitions). */
let keysByPartition: string[][] = [];

beforeAll(async () => {
  const dir = tempDir();
  const db = await open(dir, { partitions: partitionCount, workers: 1 });
  try {
    keysByPartition = Array.from({ length: partitionCount }, () => []);
    let before = db.stats().partitionStats.map((partition) => partition.entries);
    for (let i = 0; i < 600; i++) {
      const key = `crash:${i}`;
      await within(db.put(key, 'probe'), failFastMs, `mapping put ${key}`);
      const after = db.stats().partitionStats.map((partition) => partition.entries);
      const grown = after.flatMap((entries, partition) =>
        entries === before[partition]! + 1 ? [partition] : [],
      );
      if (grown.length !== 1) throw new Error(`put ${key} grew ${grown.length} partitions' entry counts`);
      keysByPartition[grown[0]!]!.push(key);
      before = after;
    }
  } finally {
    await db.close();
  }
  for (const [partition, keys] of keysByPartition.entries()) {
    if (keys.length < 60) throw new Error(`only ${keys.length} of 600 keys route to partition ${partition}`);
  }
}, 30_000);

/** Partitions owned by each worker, from stats(); they must cover every partition exactly once. */
function ownership(db: Database): number[][] {
  const owned = db.stats().workerStats.map((worker) => [...worker.partitions]);
  const all = owned.flat().sort((a, b) => a - b);
  expect(all, 'workerStats[].partitions cover each partition once').toEqual(
    Array.from({ length: partitionCount }, (_, i) => i),
  );
  return owned;
}

function keysOf(partitions: readonly number[]): string[] {
  // Interleave the partitions' keys so writes alternate between them.
  const lists = partitions.map((partition) => keysByPartition[partition]!);
  const out: string[] = [];
  for (let i = 0; i < Math.max(...lists.map((list) => list.length)); i++) {
    for (const list of lists) if (i < list.length) out.push(list[i]!);
  }
  return out;
}

describe('an owner worker that crashes', () => {
  it('fails its pending and later writes with ERR_WORKER_CRASHED while the other worker keeps serving', async () => {
    const crashAfter = 40;
    const db = await openCrashing(2, crashAfter);
    const [victimPartitions, survivorPartitions] = ownership(db);
    const victimKeys = keysOf(victimPartitions!);
    const survivorKeys = keysOf(survivorPartitions!);

    // Ten writes to each worker, awaited: both healthy, well below the crash point.
    for (let i = 0; i < 10; i++) {
      await within(db.put(victimKeys[i]!, `pre ${i}`), failFastMs, `victim put ${i} before the crash`);
      await within(db.put(survivorKeys[i]!, `pre ${i}`), failFastMs, `survivor put ${i} before the crash`);
    }

    // Flood the victim past its crash point, without awaiting the writes: some are applied, then it
    // dies. Each put is issued in a turn of its own (a microtask apart), so each has its own promise
    // and outcome: writes of one turn share a promise, and a crash rejects a group some of whose
    // writes the owner may already have applied.
    const flood = victimKeys.slice(10, 110).map((key) => ({ key, value: `flood ${key}` }));
    const pendingFlood: Promise<string>[] = [];
    for (const { key, value } of flood) {
      pendingFlood.push(outcome(db.put(key, value)));
      await null;
    }
    const floodOutcomes = await within(
      Promise.all(pendingFlood),
      settleMs,
      'writes pending on a crashed worker never settled',
    );
    const counts = tally(floodOutcomes);
    expect(Object.keys(counts).filter((o) => o !== 'resolved' && o !== 'ERR_WORKER_CRASHED')).toEqual([]);
    expect(counts.ERR_WORKER_CRASHED ?? 0, `flood outcomes ${JSON.stringify(counts)}`).toBeGreaterThan(0);
    // The worker applied 10 operations before the flood and dies before its 41st.
    expect(counts.resolved ?? 0, `flood outcomes ${JSON.stringify(counts)}`).toBeLessThanOrEqual(
      crashAfter - 10,
    );
    flood.forEach(({ key, value }, index) => {
      const got = db.getString(key);
      if (floodOutcomes[index] === 'resolved') {
        expect(got, `${key}: its put resolved, so it was applied`).toBe(value);
      } else {
        // Durable before visible: a write is applied only after its log write, and the worker dies
        // while staging, so a put of its own turn rejected with ERR_WORKER_CRASHED was never applied
        // (what the owner completed before it died resolves, even when the crash is seen first).
        expect(got, `${key}: its put was rejected, yet a reader sees it`).toBeUndefined();
      }
    });

    // Later writes to the dead worker's partitions fail fast, every kind of write, more than once.
    for (let round = 0; round < 2; round++) {
      const later = await within(
        Promise.all([
          outcome(db.put(victimKeys[victimKeys.length - 1 - round]!, 'later')),
          outcome(db.del(victimKeys[0]!)),
          outcome(db.batch([{ type: 'put', key: victimKeys[1]!, value: 'later' }])),
        ]),
        failFastMs,
        'a write to a crashed worker did not fail fast',
      );
      expect(later, `round ${round}: put, del, batch to the crashed worker`).toEqual([
        'ERR_WORKER_CRASHED',
        'ERR_WORKER_CRASHED',
        'ERR_WORKER_CRASHED',
      ]);
    }

    // The survivor still serves writes (20 operations in total, below its own crash point).
    for (let i = 10; i < 20; i++) {
      await within(db.put(survivorKeys[i]!, `post ${i}`), failFastMs, `survivor put ${i}`);
      expect(db.getString(survivorKeys[i]!)).toBe(`post ${i}`);
    }
    // Reads work everywhere: the dead worker's data applied before the crash is still in shared memory.
    for (let i = 0; i < 10; i++) {
      expect(db.getString(victimKeys[i]!), `victim key ${i} written before the crash`).toBe(`pre ${i}`);
      expect(db.getString(survivorKeys[i]!), `survivor key ${i}`).toBe(`pre ${i}`);
    }
    const scanned = [...db.range({ gte: 'crash:', lt: 'crash;' })].map(([key]) => key.toString());
    for (let i = 0; i < 20; i++) expect(scanned).toContain(survivorKeys[i]!);

    const workerStats = db.stats().workerStats;
    expect(workerStats.map(workerAlive), 'workerStats[].alive: victim dead, survivor alive').toEqual([
      false,
      true,
    ]);

    await within(db.close(), settleMs, 'close() after a worker crash did not resolve');
  });

  it('crash on the very first operation: the put rejects, nothing was applied, close still resolves', async () => {
    const db = await openCrashing(1, 0);
    expect(await within(outcome(db.put('first', 'x')), settleMs, 'first put')).toBe('ERR_WORKER_CRASHED');
    expect(db.get('first')).toBeUndefined();
    expect(await within(outcome(db.put('second', 'y')), failFastMs, 'second put')).toBe('ERR_WORKER_CRASHED');
    expect(await within(outcome(db.del('first')), failFastMs, 'del')).toBe('ERR_WORKER_CRASHED');
    expect([...db.range()]).toEqual([]);
    await within(db.close(), settleMs, 'close() after a crash did not resolve');
  });

  it('both workers crash under a load with fragmented big values: everything settles, close resolves', async () => {
    const db = await openCrashing(2, 150);
    const writes: Array<{ key: string; value: Buffer; result: Promise<string> }> = [];
    for (let i = 0; i < 1500; i++) {
      const key = `load:${i}`;
      // Every 50th value is bigger than a ring record, so some die half-sent.
      const value = i % 50 === 0 ? Buffer.alloc(700_000, i & 0xff) : Buffer.from(`v${i}`);
      writes.push({ key, value, result: outcome(db.put(key, value)) });
    }
    const outcomes = await within(
      Promise.all(writes.map((write) => write.result)),
      settleMs,
      'writes pending on crashed workers never settled',
    );
    const counts = tally(outcomes);
    expect(Object.keys(counts).filter((o) => o !== 'resolved' && o !== 'ERR_WORKER_CRASHED')).toEqual([]);
    // Two workers die before their 151st operation each: at most 300 of 1500 can have been applied.
    expect(counts.resolved ?? 0, JSON.stringify(counts)).toBeLessThanOrEqual(300);
    writes.forEach(({ key, value }, index) => {
      const got = db.get(key);
      if (outcomes[index] === 'resolved')
        expect(got?.equals(value), `${key} resolved but reads wrong`).toBe(true);
      else if (got !== undefined)
        expect(got.equals(value), `${key} rejected but holds a torn value`).toBe(true);
    });
    expect(db.stats().workerStats.map(workerAlive)).toEqual([false, false]);
    expect(await within(outcome(db.put('after', 'x')), failFastMs, 'put after both crashed')).toBe(
      'ERR_WORKER_CRASHED',
    );
    await within(db.close(), settleMs, 'close() after both workers crashed did not resolve');
  });

  it('close() right after writes that crash a worker: every write settles and close resolves', async () => {
    const db = await openCrashing(2, 5);
    const results = Array.from({ length: 400 }, (_, i) => outcome(db.put(`close:${i}`, `v${i}`)));
    const closing = db.close();
    const outcomes = await within(Promise.all(results), settleMs, 'writes never settled');
    await within(closing, settleMs, 'close() racing a worker crash did not resolve');
    const counts = tally(outcomes);
    const allowed = new Set(['resolved', 'ERR_WORKER_CRASHED', 'ERR_CLOSED']);
    expect(
      Object.keys(counts).filter((o) => !allowed.has(o)),
      JSON.stringify(counts),
    ).toEqual([]);
    expect(counts.resolved ?? 0, JSON.stringify(counts)).toBeLessThanOrEqual(10);
  });
});
