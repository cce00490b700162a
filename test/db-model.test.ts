/**
 * Model-based test of the Database API: seeded random operations (put, overwrite, delete, batches
 * within one partition, and bursts of writes issued without awaiting) run against the database and
 * against a trivially correct in-memory model (a Map keyed by the key's hex). After every awaited
 * operation the touched keys and a few random ones are read back with get/getString; at checkpoints
 * the whole content and random ranges (bounds, reverse, limit) must match the model exactly, in
 * unsigned-byte key order across all partitions, and stats() must count the same entries.
 *
 * Runs at 1, 4 and 16 partitions with 1 and 2 owner workers, so the k-way merge of range() and the
 * router are exercised with one and with many partitions per worker.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test name and in the failure message.
 * LIGHTNING_MODEL_OPS changes the number of operations per configuration (default 1500).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { createPartitionRouter } from '../src/main/partition-router.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
type BatchOperation = Parameters<Database['batch']>[0][number];
type RangeOptions = NonNullable<Parameters<Database['range']>[0]>;
type Key = string | Uint8Array;

const baseSeed = seedFromEnv(0x5eed_db01);
const seedText = `0x${baseSeed.toString(16)}`;
const operationCount = countFromEnv('LIGHTNING_MODEL_OPS', 1500);
/** Full comparisons are O(entries); every 60 operations keeps them a small share of the run. */
const checkpointEvery = 60;

function countFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const parsed = Number(raw);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive integer`);
  return parsed;
}

/**
 * A write normally resolves in well under a millisecond; one that takes seconds is a lost wake-up or
 * a dead owner. Failing fast, naming the operation, beats a bare timeout of the whole test.
 */
const writeDeadlineMs = 5000;

function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Random choices over mulberry32: the same sequence on every platform for a given seed. */
class Rng {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  u32(): number {
    return this.#next();
  }

  below(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n);
  }

  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.below(items.length)]!;
  }

  bytes(length: number): Buffer {
    return randomBytes(this.#next, length);
  }
}

// ---------------------------------------------------------------------------------------------------
// Keys, values and the model
// ---------------------------------------------------------------------------------------------------

interface KeyInfo {
  readonly bytes: Buffer;
  readonly hex: string;
  /** Set when the key is valid UTF-8 text; the test then passes it as a string or as bytes at random. */
  readonly text: string | undefined;
}

interface ValueInfo {
  readonly bytes: Buffer;
  /** Set when the value was written as a string: getString must return exactly this. */
  readonly text: string | undefined;
  readonly input: Key;
}

/** Characters of 1 to 4 UTF-8 bytes, and NUL, so string keys and values are not just ASCII. */
const alphabet = ['a', 'b', 'm', 'z', '0', '9', '~', ' ', ':', '\u0000', 'é', 'ж', '€', '中', '😀'];

function randomText(rng: Rng, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += rng.pick(alphabet);
  return text;
}

function keyFromText(text: string): KeyInfo {
  const bytes = Buffer.from(text, 'utf8');
  return { bytes, hex: bytes.toString('hex'), text };
}

function keyFromBytes(bytes: Buffer): KeyInfo {
  // Only bytes that survive a UTF-8 round trip may be passed as a string.
  const decoded = bytes.toString('utf8');
  const text = Buffer.from(decoded, 'utf8').equals(bytes) ? decoded : undefined;
  return { bytes, hex: bytes.toString('hex'), text };
}

/**
 * Keys chosen to stress ordering across partitions: the empty key, bytes 0x00/0x7f/0x80/0xff (signed
 * comparison or UTF-16 comparison would misorder them), keys that are prefixes of each other, long
 * keys up to the 1024-byte limit, and plain and non-ASCII text.
 */
function buildKeySpace(rng: Rng, size: number): KeyInfo[] {
  const byHex = new Map<string, KeyInfo>();
  const add = (key: KeyInfo): void => {
    // Keys beginning FF FF FF FF belong to named stores: the default store refuses them.
    if (key.hex.startsWith('ffffffff')) return;
    if (!byHex.has(key.hex)) byHex.set(key.hex, key);
  };
  add(keyFromBytes(Buffer.alloc(0)));
  // The highest 1024-byte key the default store holds: just below the named stores' prefix.
  add(keyFromBytes(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xfe]), Buffer.alloc(1020, 0xff)])));
  add(keyFromBytes(Buffer.alloc(1024, 0x00)));
  const edgeBytes = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
  while (byHex.size < size) {
    const kind = rng.below(10);
    if (kind < 3) {
      add(keyFromText(`user:${rng.below(400)}`));
    } else if (kind < 5) {
      add(keyFromText(randomText(rng, rng.between(1, 8))));
    } else if (kind < 7) {
      const length = rng.between(1, 12);
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = rng.chance(0.5) ? rng.pick(edgeBytes) : rng.u32() & 0xff;
      add(keyFromBytes(bytes));
    } else if (kind < 9) {
      // A prefix family: base, base+00, base+ff, base+00 00; they must sort base < +00 < +00 00 < +ff.
      const base = rng.bytes(rng.between(1, 6));
      add(keyFromBytes(base));
      add(keyFromBytes(Buffer.concat([base, Buffer.from([0x00])])));
      add(keyFromBytes(Buffer.concat([base, Buffer.from([0x00, 0x00])])));
      add(keyFromBytes(Buffer.concat([base, Buffer.from([0xff])])));
    } else {
      add(keyFromBytes(Buffer.concat([Buffer.alloc(rng.between(200, 1020), 0x61), rng.bytes(4)])));
    }
  }
  return [...byHex.values()];
}

/** Mostly small values, some that need overflow pages, rarely one bigger than a ring record (256 KiB). */
function randomValue(rng: Rng): ValueInfo {
  const roll = rng.below(1000);
  const length =
    roll < 600
      ? rng.between(0, 32)
      : roll < 850
        ? rng.between(33, 500)
        : roll < 960
          ? rng.between(501, 6000)
          : roll < 996
            ? rng.between(6001, 70_000)
            : rng.between(250_000, 300_000);
  if (length <= 2000 && rng.chance(0.4)) {
    const text = randomText(rng, Math.ceil(length / 2));
    return { bytes: Buffer.from(text, 'utf8'), text, input: text };
  }
  const bytes = rng.bytes(length);
  // A plain Uint8Array (not a Buffer) half of the time: both are documented inputs.
  return { bytes, text: undefined, input: rng.chance(0.5) ? new Uint8Array(bytes) : Buffer.from(bytes) };
}

/** The key as the API receives it: text or bytes, chosen at random, so both spellings must agree. */
function keyInput(rng: Rng, key: KeyInfo): Key {
  if (key.text !== undefined && rng.chance(0.6)) return key.text;
  return new Uint8Array(key.bytes);
}

function describeBytes(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return hex.length > 40 ? `${hex.slice(0, 24)}…${hex.slice(-8)} (${bytes.length} bytes)` : `'${hex}'`;
}

interface ModelEntry {
  readonly key: KeyInfo;
  readonly value: ValueInfo;
}

interface RangeSpec {
  readonly lower?: { readonly key: Buffer; readonly inclusive: boolean };
  readonly upper?: { readonly key: Buffer; readonly inclusive: boolean };
  readonly reverse: boolean;
  readonly limit?: number;
}

class Model {
  readonly #entries = new Map<string, ModelEntry>();

  get size(): number {
    return this.#entries.size;
  }

  put(key: KeyInfo, value: ValueInfo): void {
    this.#entries.set(key.hex, { key, value });
  }

  del(key: KeyInfo): void {
    this.#entries.delete(key.hex);
  }

  get(key: KeyInfo): ValueInfo | undefined {
    return this.#entries.get(key.hex)?.value;
  }

  range(spec: RangeSpec): ModelEntry[] {
    const { lower, upper } = spec;
    const selected = [...this.#entries.values()]
      .filter(({ key }) => {
        if (lower !== undefined) {
          const c = Buffer.compare(key.bytes, lower.key);
          if (c < 0 || (c === 0 && !lower.inclusive)) return false;
        }
        if (upper !== undefined) {
          const c = Buffer.compare(key.bytes, upper.key);
          if (c > 0 || (c === 0 && !upper.inclusive)) return false;
        }
        return true;
      })
      .sort((a, b) => Buffer.compare(a.key.bytes, b.key.bytes));
    if (spec.reverse) selected.reverse();
    return spec.limit === undefined ? selected : selected.slice(0, spec.limit);
  }
}

// ---------------------------------------------------------------------------------------------------
// Partition discovery
// ---------------------------------------------------------------------------------------------------

/**
 * Groups keys by partition with the router's hash, then checks that the database routes the same way:
 * one put per group must land in exactly that group's partition (its entry count), and the deletes
 * after it must leave the database empty.
 */
async function discoverPartitionGroups(db: Database, keys: readonly KeyInfo[]): Promise<KeyInfo[][]> {
  const partitions = db.stats().partitions;
  const router = await createPartitionRouter(partitions);
  const byPartition = new Map<number, KeyInfo[]>();
  for (const key of keys) {
    const partition = router.partitionOf(key.bytes);
    byPartition.set(partition, [...(byPartition.get(partition) ?? []), key]);
  }
  for (const [partition, group] of byPartition) {
    await within(db.put(group[0]!.bytes, 'probe'), writeDeadlineMs, () => 'probe put');
    const entries = db.stats().partitionStats.map((stats) => stats.entries);
    expect(entries[partition], `probe key ${describeBytes(group[0]!.bytes)} in partition ${partition}`).toBe(
      1,
    );
    expect(
      entries.reduce((sum, n) => sum + n, 0),
      'one probe key in the whole database',
    ).toBe(1);
    await within(db.del(group[0]!.bytes), writeDeadlineMs, () => 'probe delete');
  }
  return [...byPartition.values()];
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------

interface Config {
  readonly partitions: number;
  readonly workers: number;
}

const configs: readonly Config[] = [
  { partitions: 1, workers: 1 },
  // More workers than partitions: the engine runs one worker per partition at most.
  { partitions: 1, workers: 2 },
  { partitions: 4, workers: 1 },
  { partitions: 4, workers: 2 },
  { partitions: 16, workers: 1 },
  { partitions: 16, workers: 2 },
];

const openDatabases: Database[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  // Close even when a test failed half-way, so no owner worker outlives its test.
  for (const db of openDatabases.splice(0)) {
    await within(db.close(), 10_000, () => 'close() in afterEach').catch(() => {});
  }
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

class Run {
  readonly #db: Database;
  readonly #rng: Rng;
  readonly #model = new Model();
  readonly #keys: readonly KeyInfo[];
  readonly #groups: readonly KeyInfo[][];
  readonly #config: Config;
  readonly #seed: number;
  readonly #log: string[] = [];
  #step = 0;

  constructor(db: Database, rng: Rng, keys: KeyInfo[], groups: KeyInfo[][], config: Config, seed: number) {
    this.#db = db;
    this.#rng = rng;
    this.#keys = keys;
    this.#groups = groups;
    this.#config = config;
    this.#seed = seed;
  }

  /** Everything needed to replay and understand a failure. */
  context(): string {
    return (
      `\n  replay: LIGHTNING_SEED=${seedText} npx vitest run test/db-model.test.ts` +
      `\n  config: partitions=${this.#config.partitions} workers=${this.#config.workers} ` +
      `(run seed 0x${this.#seed.toString(16)}), step ${this.#step}, model has ${this.#model.size} entries` +
      `\n  last operations:\n    ${this.#log.slice(-25).join('\n    ')}`
    );
  }

  #note(text: string): void {
    this.#log.push(`#${this.#step} ${text}`);
    if (this.#log.length > 200) this.#log.splice(0, 100);
  }

  #bounded<T>(promise: Promise<T>): Promise<T> {
    return within(promise, writeDeadlineMs, () => `the last operation below never settled${this.context()}`);
  }

  async run(steps: number): Promise<void> {
    for (this.#step = 1; this.#step <= steps; this.#step++) {
      const touched = await this.#randomOperation();
      for (const key of touched) this.checkKey(key);
      for (let i = 0; i < 2; i++) this.checkKey(this.#rng.pick(this.#keys));
      if (this.#step % checkpointEvery === 0) this.checkpoint();
    }
    this.checkpoint();
  }

  async #randomOperation(): Promise<KeyInfo[]> {
    const rng = this.#rng;
    const roll = rng.below(100);
    if (roll < 40) {
      const key = rng.pick(this.#keys);
      await this.#put(key);
      return [key];
    }
    if (roll < 55) {
      // Overwrite: pick among keys the model holds, so overwrites are frequent, not accidental.
      const key = this.#existingKey() ?? rng.pick(this.#keys);
      await this.#put(key);
      return [key];
    }
    if (roll < 67) {
      const key = this.#existingKey() ?? rng.pick(this.#keys);
      await this.#del(key);
      return [key];
    }
    if (roll < 70) {
      const key = rng.pick(this.#keys);
      await this.#del(key);
      return [key];
    }
    if (roll < 85) return this.#groupBatch();
    if (roll < 90) {
      const key = rng.pick(this.#keys);
      const operation = this.#batchEntry(key);
      this.#note(`batch [${this.#describeEntry(key, operation)}]`);
      this.#applyEntry(key, operation);
      await this.#bounded(this.#db.batch([operation.op]));
      return [key];
    }
    return this.#burst();
  }

  #existingKey(): KeyInfo | undefined {
    if (this.#model.size === 0) return undefined;
    for (let tries = 0; tries < 20; tries++) {
      const key = this.#rng.pick(this.#keys);
      if (this.#model.get(key) !== undefined) return key;
    }
    return undefined;
  }

  async #put(key: KeyInfo): Promise<void> {
    const value = randomValue(this.#rng);
    this.#note(`put ${describeBytes(key.bytes)} = ${value.bytes.length} bytes${value.text ? ' (text)' : ''}`);
    this.#model.put(key, value);
    await this.#bounded(this.#db.put(keyInput(this.#rng, key), value.input));
  }

  async #del(key: KeyInfo): Promise<void> {
    this.#note(`del ${describeBytes(key.bytes)} (present: ${this.#model.get(key) !== undefined})`);
    this.#model.del(key);
    const result: unknown = await this.#bounded(this.#db.del(keyInput(this.#rng, key)));
    // The brief promises no return value; anything else would be an accidental API.
    expect(result, `del resolved with a value${this.context()}`).toBeUndefined();
  }

  #batchEntry(key: KeyInfo): { op: BatchOperation; value: ValueInfo | undefined } {
    if (this.#rng.chance(0.3))
      return { op: { type: 'del', key: keyInput(this.#rng, key) }, value: undefined };
    const value = randomValue(this.#rng);
    return { op: { type: 'put', key: keyInput(this.#rng, key), value: value.input }, value };
  }

  #describeEntry(key: KeyInfo, entry: { value: ValueInfo | undefined }): string {
    return entry.value === undefined
      ? `del ${describeBytes(key.bytes)}`
      : `put ${describeBytes(key.bytes)} = ${entry.value.bytes.length} bytes`;
  }

  #applyEntry(key: KeyInfo, entry: { value: ValueInfo | undefined }): void {
    if (entry.value === undefined) this.#model.del(key);
    else this.#model.put(key, entry.value);
  }

  /**
   * 2–7 entries, sometimes repeating a key: entries apply in array order. Half of the batches take
   * their keys from one partition (the owner applies them at once), half from any partition (a
   * two-phase commit).
   */
  async #groupBatch(): Promise<KeyInfo[]> {
    const candidates = this.#groups.filter((group) => group.length >= 2);
    const group =
      this.#rng.between(0, 1) === 0
        ? this.#groups.flat()
        : candidates.length > 0
          ? this.#rng.pick(candidates)
          : this.#rng.pick(this.#groups);
    const count = this.#rng.between(2, 7);
    const keys: KeyInfo[] = [];
    const ops: BatchOperation[] = [];
    const described: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = this.#rng.pick(group);
      const entry = this.#batchEntry(key);
      keys.push(key);
      ops.push(entry.op);
      described.push(this.#describeEntry(key, entry));
      this.#applyEntry(key, entry);
    }
    this.#note(`batch [${described.join(', ')}]`);
    await this.#bounded(this.#db.batch(ops));
    return keys;
  }

  /**
   * 3–10 writes issued without awaiting, often to the same few keys: writes from one thread to one
   * key must apply in the order they were issued, or the final state differs from the model.
   */
  async #burst(): Promise<KeyInfo[]> {
    const pool = Array.from({ length: 3 }, () => this.#rng.pick(this.#keys));
    const count = this.#rng.between(3, 10);
    const pending: Promise<void>[] = [];
    const keys: KeyInfo[] = [];
    const described: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = this.#rng.pick(pool);
      keys.push(key);
      const roll = this.#rng.below(10);
      if (roll < 5) {
        const value = randomValue(this.#rng);
        this.#model.put(key, value);
        described.push(`put ${describeBytes(key.bytes)} = ${value.bytes.length} bytes`);
        pending.push(this.#db.put(keyInput(this.#rng, key), value.input));
      } else if (roll < 8) {
        this.#model.del(key);
        described.push(`del ${describeBytes(key.bytes)}`);
        pending.push(this.#db.del(keyInput(this.#rng, key)));
      } else {
        const entry = this.#batchEntry(key);
        this.#applyEntry(key, entry);
        described.push(`batch [${this.#describeEntry(key, entry)}]`);
        pending.push(this.#db.batch([entry.op]));
      }
    }
    this.#note(`burst without awaiting: ${described.join('; ')}`);
    await this.#bounded(Promise.all(pending));
    return keys;
  }

  checkKey(key: KeyInfo): void {
    const want = this.#model.get(key);
    const input = keyInput(this.#rng, key);
    const got = this.#db.get(input);
    const what = `get ${describeBytes(key.bytes)} (as ${typeof input === 'string' ? 'string' : 'bytes'})`;
    if (want === undefined) {
      if (got !== undefined)
        expect.fail(`${what}: expected undefined, got ${got.length} bytes${this.context()}`);
      expect(this.#db.getString(input), `getString: ${what}${this.context()}`).toBeUndefined();
      return;
    }
    if (got === undefined)
      expect.fail(`${what}: expected ${want.bytes.length} bytes, got undefined${this.context()}`);
    expect(Buffer.isBuffer(got), `${what}: get must return a Buffer${this.context()}`).toBe(true);
    if (!want.bytes.equals(got)) {
      expect.fail(
        `${what}: got ${got.length} bytes ${describeBytes(got)}, expected ${want.bytes.length} bytes ` +
          `${describeBytes(want.bytes)}${this.context()}`,
      );
    }
    if (want.text !== undefined) {
      expect(this.#db.getString(input), `getString: ${what}${this.context()}`).toBe(want.text);
    }
  }

  checkpoint(): void {
    const stats = this.#db.stats();
    expect(stats.partitions, `stats().partitions${this.context()}`).toBe(this.#config.partitions);
    expect(stats.workers, `stats().workers${this.context()}`).toBe(
      Math.min(this.#config.workers, this.#config.partitions),
    );
    expect(stats.entries, `stats().entries${this.context()}`).toBe(this.#model.size);
    expect(stats.partitionStats.length, `stats().partitionStats.length${this.context()}`).toBe(
      this.#config.partitions,
    );
    const perPartition = stats.partitionStats.reduce((sum, partition) => sum + partition.entries, 0);
    expect(perPartition, `sum of partitionStats[].entries${this.context()}`).toBe(this.#model.size);

    this.#compareRange({ reverse: false });
    this.#compareRange({ reverse: true });
    for (let i = 0; i < 8; i++) this.#compareRange(this.#randomRangeSpec());
  }

  #randomBound(): Buffer {
    const rng = this.#rng;
    const roll = rng.below(4);
    const key = rng.pick(this.#keys).bytes;
    if (roll < 2) return key;
    // Just past or just before an existing key, or an arbitrary short key: bounds need not exist.
    // (Bounds obey the key size limit too, so a 1024-byte key gets its last byte changed instead.)
    if (roll === 2) {
      const edge = Buffer.from([rng.chance(0.5) ? 0x00 : 0xff]);
      return key.length < 1024 ? Buffer.concat([key, edge]) : Buffer.concat([key.subarray(0, 1023), edge]);
    }
    return rng.bytes(rng.between(0, 3));
  }

  #randomRangeSpec(): RangeSpec {
    const rng = this.#rng;
    const lower = rng.chance(0.7) ? { key: this.#randomBound(), inclusive: rng.chance(0.5) } : undefined;
    const upper = rng.chance(0.7) ? { key: this.#randomBound(), inclusive: rng.chance(0.5) } : undefined;
    const limitRoll = rng.below(10);
    const limit = limitRoll < 5 ? undefined : limitRoll === 5 ? 0 : limitRoll === 6 ? 1 : rng.between(2, 40);
    return {
      reverse: rng.chance(0.5),
      ...(lower === undefined ? {} : { lower }),
      ...(upper === undefined ? {} : { upper }),
      ...(limit === undefined ? {} : { limit }),
    };
  }

  #compareRange(spec: RangeSpec): void {
    const options: RangeOptions = { reverse: spec.reverse };
    if (spec.lower !== undefined) {
      if (spec.lower.inclusive) options.gte = new Uint8Array(spec.lower.key);
      else options.gt = new Uint8Array(spec.lower.key);
    }
    if (spec.upper !== undefined) {
      if (spec.upper.inclusive) options.lte = new Uint8Array(spec.upper.key);
      else options.lt = new Uint8Array(spec.upper.key);
    }
    if (spec.limit !== undefined) options.limit = spec.limit;
    const what =
      `range(${spec.lower ? `${spec.lower.inclusive ? 'gte' : 'gt'} ${describeBytes(spec.lower.key)} ` : ''}` +
      `${spec.upper ? `${spec.upper.inclusive ? 'lte' : 'lt'} ${describeBytes(spec.upper.key)} ` : ''}` +
      `reverse ${spec.reverse}${spec.limit === undefined ? '' : ` limit ${spec.limit}`})`;
    const expected = this.#model.range(spec);
    let index = 0;
    for (const [key, value] of this.#db.range(options)) {
      const want = expected[index];
      if (want === undefined) {
        expect.fail(
          `${what}: extra entry #${index} ${describeBytes(key)}; expected ${expected.length}${this.context()}`,
        );
      }
      if (!want.key.bytes.equals(key)) {
        expect.fail(
          `${what}: entry #${index} has key ${describeBytes(key)}, expected ${describeBytes(want.key.bytes)}` +
            this.context(),
        );
      }
      if (!want.value.bytes.equals(value)) {
        expect.fail(
          `${what}: entry #${index} (${describeBytes(key)}) has ${value.length} bytes ${describeBytes(value)}, ` +
            `expected ${want.value.bytes.length} bytes${this.context()}`,
        );
      }
      index++;
    }
    expect(index, `${what}: entry count${this.context()}`).toBe(expected.length);
  }
}

describe('database against an in-memory model', () => {
  configs.forEach((config, index) => {
    const seed = (baseSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    it(`partitions=${config.partitions} workers=${config.workers}: ${operationCount} random ops (LIGHTNING_SEED=${seedText})`, {
      // A guard against a hang, not a speed bound: a run takes 15–30 s on two loaded cores.
      timeout: 120_000,
    }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ldb-'));
      tempDirs.push(dir);
      const db = await open(dir, { partitions: config.partitions, workers: config.workers });
      openDatabases.push(db);
      const rng = new Rng(seed);
      const keys = buildKeySpace(rng, 12 * config.partitions + 150);

      const groups = await discoverPartitionGroups(db, keys);
      // With ≥ 150 keys a partition is left without a key with probability < 1e-5, so fewer groups
      // than partitions means keys are not spread over all partitions (or batches are misrouted).
      expect(groups.length, `partition groups of the key space (seed ${seedText})`).toBe(config.partitions);
      expect(db.stats().entries, 'probe writes must leave the database empty').toBe(0);

      const run = new Run(db, rng, keys, groups, config, seed);
      await run.run(operationCount);
    });
  });
});
