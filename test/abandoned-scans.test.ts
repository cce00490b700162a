import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

/**
 * db.range() scans left unfinished (neither run to the end nor return()ed) must not use up the
 * thread's snapshot slots: when slots run out, open scans share the oldest scan's slot, whether or not
 * the garbage collector has found the abandoned ones; and an abandoned scan the collector does find is
 * released and counted in stats().mvcc.leakedSnapshots.
 */

type Database = Awaited<ReturnType<typeof open>>;

const seed = seedFromEnv(0x5ca7_0012);
console.log(`abandoned-scans seed ${seed} (LIGHTNING_SEED to replay)`);

/** The per-thread snapshot slots (README: "1,024 open snapshots per thread"). */
const slotsPerThread = 1024;
const keyCount = 16;
const bounds = { gte: 'scan:', lt: 'scan;' };
const keyOf = (i: number): string => `scan:${i.toString().padStart(2, '0')}`;

let directory: string;
let db: Database;

beforeEach(async () => {
  directory = mkdtempSync(join(tmpdir(), 'ldb-abandoned-scans-'));
  db = await open(directory, { partitions: 4, workers: 1, durability: 'none' });
});

afterEach(async () => {
  await db.close();
  rmSync(directory, { recursive: true, force: true });
});

async function writeGeneration(generation: number): Promise<void> {
  await Promise.all(Array.from({ length: keyCount }, (_, i) => db.put(keyOf(i), `v${generation}`)));
}

interface OpenScan {
  iterator: IterableIterator<[Buffer, Buffer]>;
  /** The generation of values written when the scan started: all it may see. */
  generation: number;
  seen: number;
}

describe('abandoned range() scans', () => {
  it('more unfinished scans than snapshot slots, all still reachable, leave snapshot(), range() and transaction() working', async () => {
    const random = mulberry32(seed);
    const scanCount = slotsPerThread + 100 + (random() % 400);
    let generation = 0;
    await writeGeneration(generation);
    const base = db.stats().mvcc;
    // Kept in an array on purpose: the garbage collector cannot help, so the slots must come back
    // some other way.
    const scans: OpenScan[] = [];
    for (let i = 0; i < scanCount; i++) {
      if (random() % 64 === 0) await writeGeneration(++generation);
      const scan: OpenScan = { iterator: db.range(bounds), generation, seen: 0 };
      for (let steps = random() % 3; steps > 0; steps--) {
        expect(scan.iterator.next().value![1].toString()).toBe(`v${scan.generation}`);
        scan.seen++;
      }
      scans.push(scan);
    }
    console.log(`${scanCount} scans over ${generation + 1} generations`);

    const snapshot = db.snapshot();
    expect(snapshot.getString(keyOf(0))).toBe(`v${generation}`);
    snapshot.release();
    expect([...db.range(bounds)].map(([, value]) => value.toString())).toEqual(
      Array.from({ length: keyCount }, () => `v${generation}`),
    );
    await db.transaction((tx) => tx.put(keyOf(0), 'by a transaction'));
    expect(db.getString(keyOf(0))).toBe('by a transaction');
    await writeGeneration(generation + 1);

    // Every scan, its slot shared or not, still reads the state it started at.
    for (const scan of scans) {
      for (const [, value] of scan.iterator) {
        expect(value.toString()).toBe(`v${scan.generation}`);
        scan.seen++;
      }
      expect(scan.seen).toBe(keyCount);
    }
    expect(db.stats().mvcc.openSnapshots, 'every slot is free once the scans ended').toBe(base.openSnapshots);
  }, 60_000);

  it('an abandoned scan found by the garbage collector is released and counted in leakedSnapshots', async () => {
    const random = mulberry32(seed ^ 0x9e37_79b9);
    const abandoned = 3 + (random() % 20);
    await writeGeneration(0);
    const base = db.stats().mvcc;
    abandonScans(db, abandoned);
    expect(db.stats().mvcc.openSnapshots).toBe(base.openSnapshots + abandoned);
    // The collector is forced here (vitest cannot pass --expose-gc), and finalizers run as tasks
    // after a collection: collect and yield until they ran, with a generous round count.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let rounds = 0;
    for (; rounds < 500; rounds++) {
      gc();
      await sleep(10);
      const { leakedSnapshots, openSnapshots } = db.stats().mvcc;
      if (leakedSnapshots >= base.leakedSnapshots + abandoned && openSnapshots <= base.openSnapshots) break;
    }
    console.log(`${abandoned} abandoned scans reclaimed after ${rounds} collections`);
    expect(db.stats().mvcc).toMatchObject({
      leakedSnapshots: base.leakedSnapshots + abandoned,
      openSnapshots: base.openSnapshots,
    });
  }, 60_000);
});

/** In its own function so no reference to the scans survives on the caller's stack. */
function abandonScans(database: Database, count: number): void {
  for (let i = 0; i < count; i++) database.range(bounds).next();
}
