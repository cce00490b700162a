/**
 * Model-based test of named stores: seeded random puts, deletes, batches spanning stores (db.batch
 * with `store`, store.batch), transactions spanning stores (some aborted by a throw) against the
 * default store and three named stores, each checked against a Map per store. At checkpoints every
 * store's whole content, random ranges (bounds, reverse, limit) through the store, a snapshot's view
 * and a transaction's view, and random gets must match its model exactly; the default store's range
 * must never show a named store's key. Keys are drawn from a small alphabet that includes FF, so
 * keys of the default store run right up to the store region's prefix (FF FF FF FF).
 *
 * Runs at 1 and 4 partitions; the 4-partition run closes and reopens the database once and checks
 * again. Reproduce a failure with the LIGHTNING_SEED printed in the test name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open, type Store } from '../src/index.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
type RangeOptions = NonNullable<Parameters<Database['range']>[0]>;
type Model = Map<string, Buffer>;

const baseSeed = seedFromEnv(0x5eed_5707);
const seedText = `0x${baseSeed.toString(16)}`;
const operationCount = 500;
const checkEvery = 50;
const storeNames = ['users', 'orders', 'ünïcode'];
const alphabet = [0x00, 0x01, 0x61, 0x62, 0xfe, 0xff];

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  int(n: number): number {
    return this.#next() % n;
  }
  chance(p: number): boolean {
    return this.#next() / 2 ** 32 < p;
  }
  key(defaultStore: boolean): Buffer {
    for (;;) {
      const length = 1 + this.int(6);
      const key = Buffer.from(Array.from({ length }, () => alphabet[this.int(alphabet.length)]!));
      // The default store refuses keys in the store region; the isolation test checks that.
      if (defaultStore && key.length >= 4 && key.subarray(0, 4).equals(Buffer.from([0xff, 0xff, 0xff, 0xff])))
        continue;
      return key;
    }
  }
  value(): Buffer {
    return Buffer.from(`v${this.int(1_000_000)}`);
  }
}

function inRange(key: Buffer, options: RangeOptions): boolean {
  const order = (bound: Uint8Array | string | undefined) =>
    bound === undefined ? 0 : Buffer.compare(key, Buffer.from(bound as Uint8Array));
  if (options.gte !== undefined && order(options.gte) < 0) return false;
  if (options.gt !== undefined && order(options.gt) <= 0) return false;
  if (options.lte !== undefined && order(options.lte) > 0) return false;
  if (options.lt !== undefined && order(options.lt) >= 0) return false;
  return true;
}

function expected(model: Model, options: RangeOptions): Array<[string, string]> {
  const keys = [...model.keys()].map((k) => Buffer.from(k, 'hex')).filter((k) => inRange(k, options));
  keys.sort(Buffer.compare);
  if (options.reverse === true) keys.reverse();
  return keys.slice(0, options.limit ?? Infinity).map((k) => [hex(k), model.get(hex(k))!.toString()]);
}

function actual(entries: Iterable<[Buffer, Buffer]>): Array<[string, string]> {
  return [...entries].map(([k, v]) => [hex(k), v.toString()]);
}

function randomRange(rng: Rng): RangeOptions {
  const options: RangeOptions = {};
  const lower = rng.int(3);
  if (lower === 1) options.gte = rng.key(false);
  if (lower === 2) options.gt = rng.key(false);
  const upper = rng.int(3);
  if (upper === 1) options.lte = rng.key(false);
  if (upper === 2) options.lt = rng.key(false);
  if (rng.chance(0.5)) options.reverse = true;
  if (rng.chance(0.5)) options.limit = rng.int(8);
  return options;
}

async function check(db: Database, stores: Store[], models: Model[], rng: Rng, at: string): Promise<void> {
  const views: Array<{
    range: (options?: RangeOptions) => Iterable<[Buffer, Buffer]>;
    get: Database['get'];
  }> = [db, ...stores];
  for (let s = 0; s < views.length; s++) {
    const view = views[s]!;
    const model = models[s]!;
    expect(actual(view.range()), `${at}: store ${s} whole content`).toEqual(expected(model, {}));
    for (let i = 0; i < 4; i++) {
      const options = randomRange(rng);
      expect(actual(view.range(options)), `${at}: store ${s} range ${JSON.stringify(options)}`).toEqual(
        expected(model, options),
      );
    }
    for (let i = 0; i < 6; i++) {
      const key = rng.key(s === 0);
      expect(view.get(key)?.toString(), `${at}: store ${s} get ${hex(key)}`).toBe(
        model.get(hex(key))?.toString(),
      );
    }
  }
  const snapshot = db.snapshot();
  try {
    for (let s = 1; s < views.length; s++) {
      const options = randomRange(rng);
      expect(
        actual(snapshot.store(stores[s - 1]!).range(options)),
        `${at}: snapshot view of store ${s}`,
      ).toEqual(expected(models[s]!, options));
    }
    expect(actual(snapshot.range()), `${at}: snapshot default range`).toEqual(expected(models[0]!, {}));
  } finally {
    snapshot.release();
  }
  await db.transaction((tx) => {
    const s = 1 + rng.int(stores.length);
    const options = randomRange(rng);
    expect(actual(tx.store(stores[s - 1]!).range(options)), `${at}: transaction view of store ${s}`).toEqual(
      expected(models[s]!, options),
    );
    expect(actual(tx.range()), `${at}: transaction default range`).toEqual(expected(models[0]!, {}));
  });
  // Every store's entries, the catalog's records (one per store) and its id counter are counted.
  const total = models.reduce((sum, model) => sum + model.size, 0) + stores.length + 1;
  expect(db.stats().entries, `${at}: stats().entries`).toBe(total);
}

async function runModel(partitions: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'ldb-stores-model-'));
  dirs.push(dir);
  let db = await open(dir, { partitions, workers: 1, durability: 'none' });
  try {
    let stores = await Promise.all(storeNames.map((name) => db.store(name)));
    const models: Model[] = [new Map(), ...stores.map(() => new Map<string, Buffer>())];
    for (let op = 0; op < operationCount; op++) {
      const kind = rng.int(10);
      const s = rng.int(stores.length + 1);
      const target = s === 0 ? db : stores[s - 1]!;
      if (kind < 4) {
        const key = rng.key(s === 0);
        const value = rng.value();
        await target.put(key, value);
        models[s]!.set(hex(key), value);
      } else if (kind < 6) {
        const key = rng.key(s === 0);
        await target.del(key);
        models[s]!.delete(hex(key));
      } else if (kind < 8) {
        // A batch over random stores, through the database or through a store (its own by default).
        const viaStore = kind === 7 && s > 0;
        const operations = Array.from({ length: 1 + rng.int(6) }, () => {
          // A store's batch writes its own store's keys unless `store` names another named store.
          const t = viaStore ? 1 + rng.int(stores.length) : rng.int(stores.length + 1);
          const key = rng.key(t === 0);
          const named = t === 0 || (viaStore && t === s) ? {} : { store: stores[t - 1]! };
          return rng.chance(0.7)
            ? { t, op: { type: 'put' as const, key, value: rng.value(), ...named } }
            : { t, op: { type: 'del' as const, key, ...named } };
        });
        if (viaStore) await stores[s - 1]!.batch(operations.map((entry) => entry.op));
        else await db.batch(operations.map((entry) => entry.op));
        for (const { t, op } of operations) {
          if (op.type === 'put') models[t]!.set(hex(op.key), op.value);
          else models[t]!.delete(hex(op.key));
        }
      } else {
        // A transaction over random stores; one in four throws after writing and must change nothing.
        const aborts = rng.chance(0.25);
        const writes = Array.from({ length: 1 + rng.int(5) }, () => {
          const t = rng.int(stores.length + 1);
          return { t, key: rng.key(t === 0), value: rng.chance(0.7) ? rng.value() : null };
        });
        const run = db.transaction((tx) => {
          for (const { t, key, value } of writes) {
            const view = t === 0 ? tx : tx.store(stores[t - 1]!);
            if (value === null) view.del(key);
            else view.put(key, value);
          }
          if (aborts) throw new Error('abort on purpose');
        });
        if (aborts) {
          await expect(run).rejects.toThrow('abort on purpose');
        } else {
          await run;
          for (const { t, key, value } of writes) {
            if (value === null) models[t]!.delete(hex(key));
            else models[t]!.set(hex(key), value);
          }
        }
      }
      if ((op + 1) % checkEvery === 0) await check(db, stores, models, rng, `op ${op + 1}`);
    }
    if (partitions > 1) {
      await db.close();
      db = await open(dir, { partitions, workers: 1, durability: 'none' });
      expect(db.stores()).toEqual(
        [...storeNames].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
      stores = await Promise.all(storeNames.map((name) => db.store(name, { create: false })));
      await check(db, stores, models, rng, 'after reopen');
    }
  } finally {
    await db.close();
  }
}

describe(`named stores against a model (LIGHTNING_SEED=${seedText})`, () => {
  for (const partitions of [1, 4]) {
    it(`${partitions} partition(s), ${operationCount} operations`, async () => {
      await runModel(partitions, baseSeed + partitions);
    });
  }
});
