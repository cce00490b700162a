/**
 * The read and write methods beyond get/put/range, against a model (a Map) at 1, 3 and 8 partitions:
 * getMany, count, clear, the prefix option, keys() and values(), for-await scans stopped by an
 * AbortSignal, and conditional writes (`ifValue`), including racing writers of which exactly one
 * wins. Keys are drawn from a small alphabet with 0x00 and 0xff bytes, so prefixes match often and
 * prefixes of 0xff bytes (which have no successor) occur.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test names.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { clearParts } from '../src/main/api/clear-range.js';
import { codeOf } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
type RangeOptions = NonNullable<Parameters<Database['range']>[0]>;

const baseSeed = seedFromEnv(0x5eed_a71);
const seedText = `0x${baseSeed.toString(16)}`;
const roundsPerConfiguration = 12;
const writesPerRound = 40;
const queriesPerRound = 6;
const racers = 6;

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-parity-'));
  tempDirs.push(dir);
  return dir;
}

const alphabet = [0x00, 0x61, 0x62, 0xff];

class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  below(n: number): number {
    return this.#next() % n;
  }
  key(): Buffer {
    const length = 1 + this.below(4);
    return Buffer.from(Array.from({ length }, () => alphabet[this.below(alphabet.length)]!));
  }
  /** Random range options: bounds, a prefix, reverse and limit, each sometimes. */
  options(): RangeOptions {
    const options: RangeOptions = {};
    if (this.below(3) === 0) options.prefix = this.key().subarray(0, 1 + this.below(2));
    else {
      if (this.below(2) === 0) options[this.below(2) === 0 ? 'gte' : 'gt'] = this.key();
      if (this.below(2) === 0) options[this.below(2) === 0 ? 'lte' : 'lt'] = this.key();
    }
    if (this.below(3) === 0) options.reverse = true;
    if (this.below(3) === 0) options.limit = this.below(8);
    return options;
  }
}

/** The model's answer to a range: its entries in scan order. */
function modelRange(model: Map<string, Buffer>, options: RangeOptions): Array<[Buffer, Buffer]> {
  const within = (key: Buffer): boolean => {
    if (options.prefix !== undefined)
      return key.subarray(0, options.prefix.length).equals(Buffer.from(options.prefix));
    const at = (bound: string | Uint8Array): number => Buffer.compare(key, Buffer.from(bound));
    if (options.gte !== undefined && at(options.gte) < 0) return false;
    if (options.gt !== undefined && at(options.gt) <= 0) return false;
    if (options.lte !== undefined && at(options.lte) > 0) return false;
    if (options.lt !== undefined && at(options.lt) >= 0) return false;
    return true;
  };
  const entries = [...model.entries()]
    .map(([name, value]): [Buffer, Buffer] => [Buffer.from(name, 'latin1'), value])
    .filter(([key]) => within(key))
    .sort(([a], [b]) => Buffer.compare(a, b));
  if (options.reverse === true) entries.reverse();
  return entries.slice(0, options.limit ?? Infinity);
}

const hex = (entries: Iterable<Buffer | undefined>): string[] =>
  [...entries].map((b) => b?.toString('hex') ?? '-');
const describeOptions = (options: RangeOptions): string =>
  JSON.stringify(options, (_, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v));

describe.each([1, 3, 8])(`the API against a model at %i partitions (seed ${seedText})`, (partitions) => {
  it('getMany, count, keys, values, prefix and clear agree with the model', async () => {
    const rng = new Rng(baseSeed + partitions);
    const db = await open(tempDir(), { partitions, workers: 1 });
    const model = new Map<string, Buffer>();
    try {
      for (let round = 0; round < roundsPerConfiguration; round++) {
        const writes = [];
        for (let i = 0; i < writesPerRound; i++) {
          const key = rng.key();
          if (rng.below(4) === 0) {
            writes.push(db.del(key));
            model.delete(key.toString('latin1'));
          } else {
            const value = Buffer.from(`r${round}-${i}`);
            writes.push(db.put(key, value));
            model.set(key.toString('latin1'), value);
          }
        }
        await Promise.all(writes);

        const asked = Array.from({ length: 10 }, () => rng.key());
        expect(hex(db.getMany(asked)), `getMany round ${round}`).toEqual(
          hex(asked.map((key) => model.get(key.toString('latin1')))),
        );
        for (let q = 0; q < queriesPerRound; q++) {
          const options = rng.options();
          const what = `round ${round} ${describeOptions(options)}`;
          const expected = modelRange(model, options);
          expect(hex([...db.range(options)].map(([k]) => k)), `range keys ${what}`).toEqual(
            hex(expected.map(([k]) => k)),
          );
          expect(hex(db.keys(options)), `keys ${what}`).toEqual(hex(expected.map(([k]) => k)));
          expect(hex(db.values(options)), `values ${what}`).toEqual(hex(expected.map(([, v]) => v)));
          expect(db.count(options), `count ${what}`).toBe(expected.length);
          const asyncKeys: Buffer[] = [];
          for await (const key of db.keys(options)) asyncKeys.push(key);
          expect(hex(asyncKeys), `for-await keys ${what}`).toEqual(hex(expected.map(([k]) => k)));
        }
        if (round % 3 === 2) {
          const options = rng.options();
          const expected = modelRange(model, options);
          expect(await db.clear(options), `clear ${describeOptions(options)}`).toBe(expected.length);
          for (const [key] of expected) model.delete(key.toString('latin1'));
          expect(db.count(), `count after clear in round ${round}`).toBe(model.size);
        }
      }
      const snapshot = db.snapshot();
      await db.clear();
      expect(db.count(), 'count after clearing everything').toBe(0);
      expect(snapshot.count(), 'a snapshot from before the clear still counts everything').toBe(model.size);
      const some = [...model.keys()].slice(0, 5).map((name) => Buffer.from(name, 'latin1'));
      expect(hex(snapshot.getMany(some))).toEqual(hex(some.map((k) => model.get(k.toString('latin1')))));
      snapshot.release();
    } finally {
      await db.close();
    }
  });
});

describe(`conditional writes (seed ${seedText})`, () => {
  it(`of ${racers} racing compare-and-set calls on one key, exactly one wins, round after round`, async () => {
    const rng = new Rng(baseSeed);
    const db = await open(tempDir(), { partitions: 4, workers: 2 });
    try {
      // Insert-if-absent races first, then value-conditioned races on the winner's value.
      let current: string | null = null;
      for (let round = 0; round < 10; round++) {
        const key = `cas:${rng.below(3)}`;
        current = db.getString(key) ?? null;
        const outcomes = await Promise.allSettled(
          Array.from({ length: racers }, (_, i) => db.put(key, `${round}:${i}`, { ifValue: current })),
        );
        const winners = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [i] : []));
        expect(winners.length, `round ${round}: winners ${winners}`).toBe(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') expect(codeOf(outcome.reason)).toBe('ERR_CONDITION_FAILED');
        }
        expect(db.getString(key), `round ${round}: the value is the winner's`).toBe(`${round}:${winners[0]}`);
      }
      // A conditional delete: refused on a stale value, applied on the current one.
      await db.put('d', 'one');
      expect(codeOf(await db.del('d', { ifValue: 'two' }).catch((e: unknown) => e))).toBe(
        'ERR_CONDITION_FAILED',
      );
      expect(db.getString('d')).toBe('one');
      await db.del('d', { ifValue: 'one' });
      expect(db.get('d')).toBeUndefined();
      expect(codeOf(await db.put('d', 'x', { ifValue: 'one' }).catch((e: unknown) => e))).toBe(
        'ERR_CONDITION_FAILED',
      );
      await db.put('d', 'x', { ifValue: null });
      expect(db.getString('d')).toBe('x');
      // Options without a condition are a plain write.
      await db.put('d', 'y', {});
      expect(db.getString('d')).toBe('y');
    } finally {
      await db.close();
    }
  });
});

describe('for-await scans with an AbortSignal', () => {
  it('stop with an AbortError and release their snapshot', async () => {
    const db = await open(tempDir(), { partitions: 3, workers: 1 });
    try {
      await db.batch(
        Array.from({ length: 600 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: 'v' })),
      );
      const before = db.stats().mvcc.openSnapshots;

      // Aborted from the loop's body.
      const controller = new AbortController();
      let seen = 0;
      let caught: unknown = null;
      try {
        for await (const [key] of db.range({ signal: controller.signal })) {
          expect(key.length).toBeGreaterThan(0);
          if (++seen === 10) controller.abort();
        }
      } catch (error) {
        caught = error;
      }
      expect((caught as Error).name).toBe('AbortError');
      expect(seen).toBe(10);
      expect(db.stats().mvcc.openSnapshots, 'the aborted scan released its snapshot').toBe(before);

      // Aborted by a timer while the scan waits between turns: it yields to the event loop.
      const slow = new AbortController();
      setImmediate(() => slow.abort(new Error('enough')));
      let slowSeen = 0;
      const slowError = await (async () => {
        for await (const _ of db.keys({ signal: slow.signal })) slowSeen++;
      })().catch((error: unknown) => error as Error);
      expect(slowError?.name).toBe('AbortError');
      expect((slowError?.cause as Error | undefined)?.message).toBe('enough');
      expect(slowSeen).toBeLessThan(600);

      // Aborted while nobody iterates: the snapshot goes at once; the next step throws.
      const idle = new AbortController();
      const scan = db.values({ signal: idle.signal });
      scan.next();
      expect(db.stats().mvcc.openSnapshots).toBe(before + 1);
      idle.abort();
      expect(db.stats().mvcc.openSnapshots).toBe(before);
      expect(() => scan.next()).toThrow(expect.objectContaining({ name: 'AbortError' }));

      // Already aborted: the first step throws; nothing is held.
      expect(() => db.range({ signal: AbortSignal.abort() }).next()).toThrow(
        expect.objectContaining({ name: 'AbortError' }),
      );
      expect(db.stats().mvcc.openSnapshots).toBe(before);

      // A signal that never fires changes nothing; a break ends the scan as for-of does.
      let counted = 0;
      for await (const _ of db.range({ signal: new AbortController().signal })) counted++;
      expect(counted).toBe(600);
      for await (const _ of db.range()) break;
      expect(db.stats().mvcc.openSnapshots).toBe(before);
    } finally {
      await db.close();
    }
  });
});

describe('clear splits a partition share only when it exceeds one batch', () => {
  it('keeps each partition whole under the limit, and cuts it into chunks within the limit above it', () => {
    const keys = Array.from({ length: 100 }, (_, i) => Buffer.from(`key${String(i).padStart(3, '0')}`));
    const partitionOf = (key: Uint8Array): number => key[key.length - 1]! % 3;
    const whole = [...clearParts(keys, partitionOf, 1 << 20)];
    expect(whole.map((part) => part.partition).sort()).toEqual([0, 1, 2]);
    expect(whole.reduce((sum, part) => sum + part.entries.length, 0)).toBe(100);

    const bytesMax = 8 + 10 * (7 + 6);
    const chunks = [...clearParts(keys, partitionOf, bytesMax)];
    expect(chunks.reduce((sum, part) => sum + part.entries.length, 0)).toBe(100);
    for (const part of chunks) {
      expect(part.entries.length).toBeLessThanOrEqual(10);
      for (const entry of part.entries) expect(partitionOf(entry.key)).toBe(part.partition);
    }
    expect(chunks.length).toBeGreaterThan(3);
  });
});
