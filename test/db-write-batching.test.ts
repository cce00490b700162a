/**
 * One promise per write batch: puts and deletes issued in one turn (the caller's synchronous run, up to
 * a microtask or macrotask boundary) to one partition-owner worker share one promise, settled when the
 * last of them is applied; each owner has its own, and every turn a new one. Checked here:
 * - the sharing itself: one promise object per owner per turn, a new one after an `await` or a
 *   setImmediate, and every write of every turn applied when its promise resolves;
 * - bad input (wrong type, key or value too large) rejects that call alone, before anything is queued,
 *   and does not split or fail the turn's shared promise;
 * - writes to one key in one turn are applied in issue order (puts, deletes, and a batch() among them,
 *   which keeps a promise of its own and ends its owner's shared one), against a model;
 * - a write that fails in the owner (ERR_PARTITION_FULL, with a tiny partitionBytesMax) rejects its
 *   turn's shared promise with that typed error, while the writes that did not fail stay applied, the
 *   other owner's promise of the same turn resolves, and earlier and later turns keep their outcomes.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { createPartitionRouter } from '../src/main/partition-router.js';
import { codeOf, within } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
type OpenOptions = NonNullable<Parameters<typeof open>[1]>;

const seed = seedFromEnv(0xba7c_0011);
const seedText = `0x${seed.toString(16)}`;
/** A write settles in milliseconds; this only turns a lost wake-up into a named failure. */
const settleMs = 20_000;

const openDatabases: Database[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const db of openDatabases.splice(0)) await db.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openTemp(options: OpenOptions): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-batching-'));
  tempDirs.push(dir);
  const db = await open(dir, options);
  openDatabases.push(db);
  return db;
}

/** 'resolved' or the rejection's code: outcomes to compare without unhandled rejections. */
function outcome(promise: Promise<unknown>): Promise<string> {
  return within(
    promise.then(() => 'resolved', codeOf),
    settleMs,
    'a write promise',
  );
}

/**
 * `count` distinct keys with `prefix` for each owner worker, found by routing candidate keys as the
 * database does (the router is part of the on-disk format).
 */
async function keysByWorker(db: Database, prefix: string, count: number): Promise<string[][]> {
  const { partitions, partitionWorkers } = db.share();
  const router = await createPartitionRouter(partitions);
  const workers = Math.max(...partitionWorkers) + 1;
  const keys: string[][] = Array.from({ length: workers }, () => []);
  for (let i = 0; keys.some((list) => list.length < count); i++) {
    const key = `${prefix}${i}`;
    const list = keys[partitionWorkers[router.partitionOf(Buffer.from(key))]!]!;
    if (list.length < count) list.push(key);
    if (i > count * workers * 1000) throw new Error('the router never reached some worker');
  }
  return keys;
}

/** The distinct objects among `promises`. */
function distinct(promises: readonly Promise<void>[]): Set<Promise<void>> {
  return new Set(promises);
}

describe(`one promise per write batch (seed ${seedText})`, () => {
  it('puts and deletes of one turn share one promise per owner; every turn gets a new one', async () => {
    const db = await openTemp({ partitions: 4, workers: 2 });
    const random = mulberry32(seed);
    const [keysA, keysB] = await keysByWorker(db, 'turn-', 40);
    const turns = 12;
    const seen = new Set<Promise<void>>();
    const expected = new Map<string, string | undefined>();
    for (let turn = 0; turn < turns; turn++) {
      const promisesA: Promise<void>[] = [];
      const promisesB: Promise<void>[] = [];
      const writes = 20 + (random() % 60);
      for (let i = 0; i < writes; i++) {
        const toA = random() % 2 === 0;
        const keys = toA ? keysA! : keysB!;
        const key = keys[random() % keys.length]!;
        const isDelete = random() % 5 === 0;
        const promise = isDelete ? db.del(key) : db.put(key, `${key}@${turn}.${i}`);
        expected.set(key, isDelete ? undefined : `${key}@${turn}.${i}`);
        (toA ? promisesA : promisesB).push(promise);
      }
      const shared = [...distinct(promisesA), ...distinct(promisesB)];
      // One promise per owner that received writes this turn, none of them seen in an earlier turn.
      expect(shared.length, `turn ${turn}: promises per owner`).toBe(
        (promisesA.length > 0 ? 1 : 0) + (promisesB.length > 0 ? 1 : 0),
      );
      for (const promise of shared) {
        expect(seen.has(promise), `turn ${turn}: a promise of an earlier turn was reused`).toBe(false);
        seen.add(promise);
      }
      // Alternate the boundary that ends the turn: a microtask, then a macrotask.
      if (turn % 2 === 0) await null;
      else await new Promise((resolve) => setImmediate(resolve));
    }
    expect(seen.size, 'one promise per owner per turn').toBeLessThanOrEqual(2 * turns);
    const outcomes = await Promise.all([...seen].map(outcome));
    expect(
      outcomes.every((o) => o === 'resolved'),
      outcomes.join(','),
    ).toBe(true);
    for (const [key, value] of expected) expect(db.getString(key), key).toBe(value);
  });

  it('writes across turns resolve each with their own promise, awaited one by one or together', async () => {
    const db = await openTemp({ partitions: 2, workers: 1 });
    const rounds = 50;
    const promises: Promise<void>[] = [];
    for (let round = 0; round < rounds; round++) {
      const first = db.put(`across-${round}`, `v${round}`);
      const second = db.put(`across-${round}-b`, `w${round}`);
      // Same owner, same turn: one promise.
      expect(second).toBe(first);
      promises.push(first);
      if (round % 3 === 0) await first;
      else await null;
    }
    expect(distinct(promises).size, 'one promise per turn').toBe(rounds);
    const outcomes = await Promise.all(promises.map(outcome));
    expect(outcomes.filter((o) => o === 'resolved').length).toBe(rounds);
    for (let round = 0; round < rounds; round++) {
      expect(db.getString(`across-${round}`)).toBe(`v${round}`);
      expect(db.getString(`across-${round}-b`)).toBe(`w${round}`);
    }
  });

  it('20,000 small puts issued in one turn to one partition all commit (a pass reserves for them together)', async () => {
    const db = await openTemp({ partitions: 1, workers: 1 });
    const count = 20_000;
    const promises = new Set<Promise<void>>();
    for (let i = 0; i < count; i++) promises.add(db.put(`turn-${i}`, `value-${i}`));
    const outcomes = await Promise.all([...promises].map(outcome));
    expect(outcomes.filter((o) => o !== 'resolved')).toEqual([]);
    for (let i = 0; i < count; i += 97) expect(db.getString(`turn-${i}`)).toBe(`value-${i}`);
    expect(db.stats().entries).toBe(count);
  });

  it('bad input rejects that call alone, before anything is queued, and leaves the turn its promise', async () => {
    const db = await openTemp({ partitions: 1, workers: 1 });
    const tooLongKey = 'k'.repeat(5000);
    const bad: [string, () => Promise<void>][] = [
      ['key too large', () => db.put(tooLongKey, 'v')],
      ['value of a wrong type', () => db.put('bad-1', 42 as unknown as string)],
      ['key of a wrong type', () => db.put(null as unknown as string, 'v')],
      ['delete of a key too large', () => db.del(tooLongKey)],
      ['delete of a key of a wrong type', () => db.del({} as unknown as string)],
    ];
    const good: Promise<void>[] = [];
    const badOutcomes: Promise<string>[] = [];
    for (let i = 0; i < bad.length; i++) {
      good.push(db.put(`good-${i}`, `value-${i}`));
      const [, call] = bad[i]!;
      let promise: Promise<void> | undefined;
      expect(() => {
        promise = call();
      }, bad[i]![0]).not.toThrow();
      expect(good.includes(promise!), `${bad[i]![0]}: got the turn's shared promise`).toBe(false);
      badOutcomes.push(outcome(promise!));
    }
    good.push(db.del('good-0'));
    // Every valid write of the turn shares one promise, and it resolves: the bad calls did not fail it.
    expect(distinct(good).size).toBe(1);
    expect(await outcome(good[0]!)).toBe('resolved');
    expect(await Promise.all(badOutcomes)).toEqual([
      'ERR_KEY_TOO_LARGE',
      'ERR_BAD_ARGUMENT',
      'ERR_BAD_ARGUMENT',
      'ERR_KEY_TOO_LARGE',
      'ERR_BAD_ARGUMENT',
    ]);
    expect(db.getString('good-0')).toBeUndefined();
    for (let i = 1; i < bad.length; i++) expect(db.getString(`good-${i}`)).toBe(`value-${i}`);
    // Nothing of the bad calls was queued: the database holds the good keys and nothing else.
    expect([...db.range()].map(([key]) => key.toString())).toEqual(
      Array.from({ length: bad.length - 1 }, (_, i) => `good-${i + 1}`),
    );
  });

  it('writes to the same keys in one turn apply in issue order, a batch() among them keeping its own promise', async () => {
    const db = await openTemp({ partitions: 4, workers: 2 });
    const random = mulberry32(seed ^ 0x0bde_0001);
    const keys = Array.from({ length: 6 }, (_, i) => `same-${i}`);
    const model = new Map<string, string>();
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      const shared: Promise<void>[] = [];
      const batches: Promise<void>[] = [];
      const operations = 300 + (random() % 300);
      for (let i = 0; i < operations; i++) {
        const key = keys[random() % keys.length]!;
        const choice = random() % 10;
        if (choice < 6) {
          const value = `${round}.${i}`;
          shared.push(db.put(key, value));
          model.set(key, value);
        } else if (choice < 9) {
          shared.push(db.del(key));
          model.delete(key);
        } else {
          // A batch on one key (one partition): its own promise, in its place in the order.
          const value = `batch ${round}.${i}`;
          batches.push(
            db.batch([
              { type: 'del', key },
              { type: 'put', key, value },
            ]),
          );
          model.set(key, value);
        }
      }
      // A batch ends the turn's shared promise of its owner (a write after it gets a new one), so
      // at most one shared promise per owner between batches, and no batch shares one.
      expect(distinct(shared).size, `round ${round}`).toBeLessThanOrEqual(2 * (batches.length + 1));
      expect(distinct(shared).size, `round ${round}`).toBeLessThan(shared.length);
      for (const batch of batches) expect(shared.includes(batch)).toBe(false);
      expect(distinct(batches).size).toBe(batches.length);
      const outcomes = await Promise.all([...distinct(shared), ...batches].map(outcome));
      expect(
        outcomes.every((o) => o === 'resolved'),
        outcomes.join(','),
      ).toBe(true);
      for (const key of keys) expect(db.getString(key), `round ${round}, ${key}`).toBe(model.get(key));
    }
  });

  it('a write failing in its owner (ERR_PARTITION_FULL) rejects its turn and owner, and no other outcome changes', async () => {
    const db = await openTemp({ partitions: 2, workers: 2, partitionBytesMax: 128 * 1024 });
    const [keysA, keysB] = await keysByWorker(db, 'full-', 400);
    const random = mulberry32(seed ^ 0x0f11_0001);
    const bigValue = (key: string): Buffer => {
      const value = Buffer.alloc(3000, key.length);
      value.write(key);
      value.writeUInt32LE(random(), 2000);
      return value;
    };

    // Turn 1: a few small writes to each owner.
    const turn1 = [...keysA!.slice(0, 5), ...keysB!.slice(0, 5)].map((key) => db.put(key, `small ${key}`));
    expect(distinct(turn1).size).toBe(2);
    expect(await Promise.all([...distinct(turn1)].map(outcome))).toEqual(['resolved', 'resolved']);

    // Turn 2: far more than owner A's partition holds, and a few small writes to owner B.
    const bigKeys = keysA!.slice(5);
    const bigValues = bigKeys.map(bigValue);
    const turn2A = bigKeys.map((key, i) => db.put(key, bigValues[i]!));
    const turn2B = keysB!.slice(5, 10).map((key) => db.put(key, `turn 2 ${key}`));
    expect(distinct(turn2A).size).toBe(1);
    expect(distinct(turn2B).size).toBe(1);
    let failure: unknown;
    await within(
      turn2A[0]!.catch((error: unknown) => {
        failure = error;
      }),
      settleMs,
      'the full partition owner promise',
    );
    expect(codeOf(failure)).toBe('ERR_PARTITION_FULL');
    expect(String((failure as Error).message)).toMatch(/of the \d+ writes issued in one turn/);
    expect(await outcome(turn2B[0]!)).toBe('resolved');

    // Each write of the failed turn was applied exactly or not at all: some of each.
    let applied = 0;
    for (let i = 0; i < bigKeys.length; i++) {
      const got = db.get(bigKeys[i]!);
      if (got === undefined) continue;
      expect(got.equals(bigValues[i]!), bigKeys[i]).toBe(true);
      applied++;
    }
    expect(applied, 'writes of the failed turn that were applied').toBeGreaterThan(0);
    expect(applied, 'writes of the failed turn that failed').toBeLessThan(bigKeys.length);
    // The earlier turn and the other owner are untouched.
    for (const key of [...keysA!.slice(0, 5), ...keysB!.slice(0, 5)])
      expect(db.getString(key)).toBe(`small ${key}`);
    for (const key of keysB!.slice(5, 10)) expect(db.getString(key)).toBe(`turn 2 ${key}`);

    // Turn 3: deleting the big values makes room; turn 4 writes again.
    const turn3 = bigKeys.map((key) => db.del(key));
    expect(distinct(turn3).size).toBe(1);
    expect(await outcome(turn3[0]!)).toBe('resolved');
    const turn4 = keysA!.slice(0, 5).map((key) => db.put(key, `again ${key}`));
    expect(await outcome(turn4[0]!)).toBe('resolved');
    for (const key of keysA!.slice(0, 5)) expect(db.getString(key)).toBe(`again ${key}`);
    for (const key of bigKeys) expect(db.get(key)).toBeUndefined();
  });
});
