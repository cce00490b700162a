/**
 * A database over page files (open() with memoryMaxBytes), far larger than its buffer pools, against
 * a model, through the public API only. Two partitions of 128 frames of 4 KiB (twice the least) hold a
 * few thousand keys of 1 byte to 3 KiB and a few of 20-40 KiB (overflow chains): the trees are more
 * than five times the frames (asserted; about seven after the load), so reads miss and load pages from
 * the files, and writes wait for page sets.
 *
 * - The model case runs seeded operations: single puts and deletes issued at once, batches of 2-8
 *   entries in one partition and across both (two-phase commit), batches of 50-300 entries,
 *   transactions in one partition and across both (reading, and seeing their own writes), transactions
 *   that throw, and snapshots held across 80 steps of writes, then read whole. After every round
 *   every key is read with get, and full, bounded and reverse scans are compared with the model. Part-way
 *   it checkpoints, writes on, closes and reopens with the same budget, with four times as much, without
 *   memoryMaxBytes, and with the same budget again, writing between the opens; each open must hold the
 *   model. Closed, each partition's page file must pass checkPageFile.
 * - The reader case attaches a worker thread (db.share()) that reads keys and short scans while the
 *   main thread writes, and checks each value on its own (values name their key and their write); the
 *   writes and the reads interleave by counts, never by time.
 * - The last case opens wrongly: too small a memoryMaxBytes (on an empty directory, which stays
 *   empty), a read-only conversion, another page size, a missing page file; and converts a database kept in memory
 *   (checkpointed) to page files: its first page set is recorded as the open ends.
 *
 * Writes are counted against a worst case of the pages they may change (docs/buffer-pool.md, "What a
 * write counts"): any write may be refused whole with ERR_PARTITION_FULL (naming memoryMaxBytes), or
 * a batch or transaction with ERR_TX_CONFLICT, were it ever to exhaust its retries (a part waiting
 * for a page set is retried apart: test/paged-transaction-page-sets.test.ts). A refused write is not applied to the model, and its keys are read
 * back to hold what the model has. Refusals are counted by code, and most writes of each kind must
 * commit (leastCommitted), so that refusing everything cannot pass.
 *
 *   SEED=<n> (or LIGHTNING_SEED=<n>)   replay the seeded choices (printed at the start)
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLightningError, open } from '../src/index.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { checkPageFile } from '../src/storage/page-file/page-file-check.js';
import {
  keyName,
  type PagedReaderInput,
  type PagedReaderMessage,
  readerWords,
  valueBytes,
} from './support/paged-database-model.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const seed = seedText(process.env.SEED) ?? seedFromEnv(0x9a6e_d0b1);
console.log(`paged-database: seed ${seed} (SEED=<n> to replay)`);
// An owner whose writes stop completing says what its loop waits on (src/workers/owner-stall-report.ts).
process.env.LIGHTNING_OWNER_STALL_REPORT_MS ??= '20000';

const pageSize = 4096;
const partitions = 2;
/** Twice the least open() accepts (64): batches of a few entries fit, the trees stay far larger. */
const frames = 128;
const memoryMaxBytes = partitions * frames * pageSize;
const pagedOptions = { partitions, workers: 1, memoryMaxBytes } as const;
/** Keys are keyName(0 .. keySpace - 1). */
const keySpace = 5000;
/** Most values are at most this long: they stay in their leaves (a cell holds about 1,350 bytes). */
const leafValueMax = 1200;

function seedText(raw: string | undefined): number | null {
  if (raw === undefined || raw.trim() === '') return null;
  const parsed = Number(raw);
  if (!Number.isSafeInteger(parsed)) throw new Error(`SEED must be an integer, got ${raw}`);
  return parsed >>> 0;
}

type Database = Awaited<ReturnType<typeof open>>;

/** What the model says a key holds: the write it came from and its length. */
interface Spec {
  readonly version: number;
  readonly length: number;
}

type Model = Map<string, Spec>;

/** What both a database and a snapshot read through. */
interface Readable {
  get(key: string): Buffer | undefined;
  range(options?: {
    gte?: string;
    lt?: string;
    reverse?: boolean;
    limit?: number;
  }): Iterable<[Buffer, Buffer]>;
}

class Rng {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  below(n: number): number {
    return Math.floor((this.#next() / 2 ** 32) * n);
  }

  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  chance(p: number): boolean {
    return this.#next() / 2 ** 32 < p;
  }
}

/** 1 byte to 3 KiB, and one value in thirty-three of 20 to 40 KiB (a chain of 5 to 10 overflow pages). */
function drawLength(rng: Rng): number {
  const r = rng.below(100);
  if (r < 5) return rng.between(1, 16);
  if (r < 80) return rng.between(17, leafValueMax);
  if (r < 97) return rng.between(leafValueMax + 1, 3 * 1024);
  return rng.between(20 * 1024, 40 * 1024);
}

function expected(key: string, spec: Spec | undefined): Buffer | undefined {
  return spec === undefined ? undefined : valueBytes(key, spec.version, spec.length);
}

function show(value: Buffer | undefined): string {
  if (value === undefined) return 'absent';
  return `${value.length} bytes starting ${JSON.stringify(value.subarray(0, 24).toString('latin1'))}`;
}

/** The model's keys, sorted as the database sorts them (ASCII keys: as bytes). */
function sortedKeys(model: Model): string[] {
  return [...model.keys()].sort();
}

/**
 * Every key of the key space read with get, a full scan, and bounded, reverse and limited scans,
 * compared with `model`; returns what differs (at most 20 lines).
 */
function compare(db: Readable, model: Model, rng: Rng): string[] {
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 20) problems.push(text);
  };
  for (let index = 0; index < keySpace; index++) {
    const key = keyName(index);
    const want = expected(key, model.get(key));
    const got = db.get(key);
    if (want === undefined ? got !== undefined : got === undefined || !got.equals(want)) {
      problem(`get ${key}: ${show(got)}, the model has ${show(want)}`);
    }
  }
  const keys = sortedKeys(model);
  const scanned = (options: Parameters<Readable['range']>[0], from: string[], what: string) => {
    let at = 0;
    for (const [rawKey, value] of db.range(options)) {
      const key = rawKey.toString('latin1');
      const wantKey = from[at];
      if (key !== wantKey) {
        problem(`${what}: entry ${at} is ${key}, the model has ${wantKey ?? 'no more entries'}`);
        return;
      }
      const want = expected(key, model.get(key))!;
      if (!value.equals(want)) problem(`${what}: ${key} holds ${show(value)}, the model ${show(want)}`);
      at++;
    }
    if (at !== from.length) problem(`${what}: ${at} entries, the model has ${from.length}`);
  };
  scanned(undefined, keys, 'full scan');
  for (let i = 0; i < 4; i++) {
    const a = keyName(rng.below(keySpace));
    const b = keyName(rng.below(keySpace));
    const [gte, lt] = a <= b ? [a, b] : [b, a];
    const within = keys.filter((key) => key >= gte && key < lt);
    const limit = rng.between(1, 200);
    scanned({ gte, lt }, within, `scan [${gte}, ${lt})`);
    scanned(
      { gte, lt, reverse: true, limit },
      within.reverse().slice(0, limit),
      `reverse scan [${gte}, ${lt})`,
    );
  }
  return problems;
}

interface HeldSnapshot {
  readonly snapshot: ReturnType<Database['snapshot']>;
  readonly model: Model;
  readonly takenAtStep: number;
}

/** Kinds of write the workload issues; each may commit or be refused whole. */
const writeKinds = [
  'puts',
  'overflowPuts',
  'dels',
  'partitionBatches',
  'crossBatches',
  'bigBatches',
  'transactions',
  'crossTransactions',
] as const;
type WriteKind = (typeof writeKinds)[number];

/** The codes a write may be refused with, whole: its pages do not fit the pool, or its retries ran out. */
const refusalCodes = ['ERR_PARTITION_FULL', 'ERR_TX_CONFLICT'] as const;
type RefusalCode = (typeof refusalCodes)[number];

/** How the writes of one kind went. */
interface Tally {
  issued: number;
  committed: number;
  ERR_PARTITION_FULL: number;
  ERR_TX_CONFLICT: number;
}

/** Issued, committed and refused (by code), by kind. */
type Counts = Record<WriteKind, Tally> & {
  steps: number;
  /** Keys of refused writes read back unchanged. */
  refusedKeysChecked: number;
  thrownTransactions: number;
  snapshotsChecked: number;
};

function newCounts(): Counts {
  const tallies = Object.fromEntries(
    writeKinds.map((kind) => [kind, { issued: 0, committed: 0, ERR_PARTITION_FULL: 0, ERR_TX_CONFLICT: 0 }]),
  ) as Record<WriteKind, Tally>;
  return { ...tallies, steps: 0, refusedKeysChecked: 0, thrownTransactions: 0, snapshotsChecked: 0 };
}

/**
 * The code `error` refuses a write with, whole, or throws it: ERR_PARTITION_FULL must name the
 * option that would make room (memoryMaxBytes).
 */
function refusal(error: unknown, what: string): RefusalCode {
  for (const code of refusalCodes) {
    if (!isLightningError(error, code)) continue;
    if (code === 'ERR_PARTITION_FULL' && !error.message.includes('memoryMaxBytes')) {
      throw new Error(`${what}: ERR_PARTITION_FULL without naming memoryMaxBytes: ${error.message}`);
    }
    return code;
  }
  throw error;
}

/** Entries of a batch or a transaction's writes: a put's spec, or null for a delete. */
type Writes = Map<string, Spec | null>;

/** Seeded operations against a database and the model of what it holds. */
class Workload {
  readonly model: Model = new Map();
  readonly held: HeldSnapshot[] = [];
  readonly counts: Counts = newCounts();
  /** The partition of each key (the router is the same in every open). */
  readonly #partitionOf: number[] = [];
  #version = 0;
  db: Database;

  constructor(
    db: Database,
    readonly rng: Rng,
  ) {
    this.db = db;
    for (let index = 0; index < keySpace; index++) {
      this.#partitionOf.push(db.partitionOf(Buffer.from(keyName(index))));
    }
  }

  partitionOf(key: string): number {
    return this.#partitionOf[Number(key.slice(4))]!;
  }

  #spec(length: number): Spec {
    return { version: ++this.#version, length };
  }

  #key(): string {
    return keyName(this.rng.below(keySpace));
  }

  /** `count` distinct keys, from `partition` only if given. */
  #keys(count: number, partition?: number): string[] {
    const keys = new Set<string>();
    while (keys.size < count) {
      const key = this.#key();
      if (partition === undefined || this.partitionOf(key) === partition) keys.add(key);
    }
    return [...keys];
  }

  /** `count` distinct keys with at least one in every partition. */
  #crossKeys(count: number): string[] {
    for (;;) {
      const keys = this.#keys(count);
      if (new Set(keys.map((key) => this.partitionOf(key))).size === partitions) return keys;
    }
  }

  #apply(writes: Writes): void {
    for (const [key, spec] of writes) {
      if (spec === null) this.model.delete(key);
      else this.model.set(key, spec);
    }
  }

  /**
   * Runs one write of `kind`: true if it committed (the caller applies it to the model). Refused whole
   * (ERR_PARTITION_FULL or ERR_TX_CONFLICT), it is counted by code, and each of `keys` must still hold
   * what the model has: nothing of a refused write is visible.
   */
  async #attempt(kind: WriteKind, keys: Iterable<string>, run: () => Promise<unknown>): Promise<boolean> {
    const tally = this.counts[kind];
    tally.issued++;
    try {
      await run();
    } catch (error) {
      tally[refusal(error, kind)]++;
      this.#checkUnchanged(keys, `a refused ${kind} write (${(error as Error).message})`);
      return false;
    }
    tally.committed++;
    return true;
  }

  #checkUnchanged(keys: Iterable<string>, what: string): void {
    for (const key of keys) {
      this.counts.refusedKeysChecked++;
      const want = expected(key, this.model.get(key));
      const got = this.db.get(key);
      if (want === undefined ? got !== undefined : got === undefined || !got.equals(want)) {
        throw new Error(`${what}: ${key} holds ${show(got)}, the model ${show(want)} (seed ${seed})`);
      }
    }
  }

  /** Single puts issued at once: each commits or is refused on its own. */
  async #singlePuts(kind: 'puts' | 'overflowPuts', writes: ReadonlyArray<readonly [string, Spec]>) {
    const outcomes = await Promise.all(
      writes.map(async ([key, spec]) => {
        const committed = await this.#attempt(kind, [], () => this.db.put(key, expected(key, spec)!));
        return { key, spec, committed };
      }),
    );
    for (const { key, spec, committed } of outcomes) if (committed) this.model.set(key, spec);
    // Read back once they all settled: the others may have written their keys meanwhile.
    this.#checkUnchanged(
      outcomes.filter(({ committed }) => !committed).map(({ key }) => key),
      `a refused ${kind}`,
    );
  }

  /** Puts every key of 0 .. count - 1, in a seeded order, 32 at a time. */
  async load(count: number): Promise<void> {
    const order = Array.from({ length: count }, (_, index) => index);
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.rng.below(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < order.length; i += 32) {
      const writes = order
        .slice(i, i + 32)
        .map((index) => [keyName(index), this.#spec(drawLength(this.rng))] as const);
      progress.doing = `loading keys ${i} to ${i + writes.length - 1}`;
      await this.#singlePuts('puts', writes);
      progress.done++;
    }
  }

  async step(): Promise<void> {
    this.counts.steps++;
    progress.done++;
    const r = this.rng.below(100);
    progress.doing = `step ${this.counts.steps} (draw ${r})`;
    if (r < 26) return this.#puts();
    if (r < 30) return this.#overflowPuts();
    if (r < 38) return this.#dels();
    if (r < 48) return this.#partitionBatch();
    if (r < 58) return this.#crossBatch();
    if (r < 61) return this.#bigBatch();
    if (r < 72) return this.#transaction();
    if (r < 84) return this.#crossTransaction();
    if (r < 88) return this.#thrownTransaction();
    return this.#snapshotStep();
  }

  /** Up to 24 puts (new keys and overwrites) issued at once, to distinct keys. */
  async #puts(): Promise<void> {
    await this.#singlePuts(
      'puts',
      this.#keys(this.rng.between(1, 24)).map((key) => [key, this.#spec(drawLength(this.rng))] as const),
    );
  }

  /** A few values of 20 to 40 KiB at once: overflow chains of 5 to 10 pages. */
  async #overflowPuts(): Promise<void> {
    await this.#singlePuts(
      'overflowPuts',
      this.#keys(this.rng.between(1, 3)).map(
        (key) => [key, this.#spec(this.rng.between(20 * 1024, 40 * 1024))] as const,
      ),
    );
  }

  /** Up to 12 deletes at once, mostly of keys present. */
  async #dels(): Promise<void> {
    const present = [...this.model.keys()];
    const keys = new Set<string>();
    const count = this.rng.between(1, 12);
    while (keys.size < count) {
      keys.add(
        this.rng.chance(0.85) && present.length > 0 ? present[this.rng.below(present.length)]! : this.#key(),
      );
    }
    const outcomes = await Promise.all(
      [...keys].map(async (key) => ({
        key,
        committed: await this.#attempt('dels', [], () => this.db.del(key)),
      })),
    );
    for (const { key, committed } of outcomes) if (committed) this.model.delete(key);
    this.#checkUnchanged(
      outcomes.filter(({ committed }) => !committed).map(({ key }) => key),
      'a refused delete',
    );
  }

  /**
   * Entries for `keys`: puts of any size (one in thirty-three overflowing) and, one in four,
   * deletes; the first key now and then written twice (the later entry wins).
   */
  #entries(keys: readonly string[]): Array<{ key: string; spec: Spec | null }> {
    const entries = keys.map((key) => ({
      key,
      spec: this.rng.chance(0.25) ? null : this.#spec(drawLength(this.rng)),
    }));
    if (this.rng.chance(0.3)) {
      entries.push({
        key: keys[0]!,
        spec: this.rng.chance(0.5) ? null : this.#spec(this.rng.between(1, 900)),
      });
    }
    return entries;
  }

  async #batch(kind: WriteKind, keys: readonly string[]): Promise<void> {
    const entries = this.#entries(keys);
    const committed = await this.#attempt(kind, keys, () =>
      this.db.batch(
        entries.map(({ key, spec }) =>
          spec === null
            ? { type: 'del' as const, key }
            : { type: 'put' as const, key, value: expected(key, spec)! },
        ),
      ),
    );
    if (committed) this.#apply(new Map(entries.map(({ key, spec }) => [key, spec])));
  }

  /** A batch of 2 to 8 keys in one partition. */
  async #partitionBatch(): Promise<void> {
    await this.#batch('partitionBatches', this.#keys(this.rng.between(2, 8), this.rng.below(partitions)));
  }

  /** A batch of 2 to 8 keys over both partitions (two-phase commit). */
  async #crossBatch(): Promise<void> {
    await this.#batch('crossBatches', this.#crossKeys(this.rng.between(2, 8)));
  }

  /**
   * A batch of 50 to 300 entries over both partitions: far more than a pool this small takes in one
   * pass (docs/buffer-pool.md, "What a write counts"), so it is mostly refused whole.
   */
  async #bigBatch(): Promise<void> {
    await this.#batch('bigBatches', this.#crossKeys(this.rng.between(50, 300)));
  }

  /** A transaction in one partition: reads, then puts of any size and deletes. */
  async #transaction(): Promise<void> {
    const partition = this.rng.below(partitions);
    const reads = this.#keys(this.rng.between(1, 3), partition);
    const writes: Writes = new Map();
    // Read-modify-write: the first key read is rewritten.
    writes.set(reads[0]!, this.#spec(drawLength(this.rng)));
    for (const key of this.#keys(this.rng.between(0, 4), partition)) {
      writes.set(key, this.rng.chance(0.3) ? null : this.#spec(drawLength(this.rng)));
    }
    const committed = await this.#attempt('transactions', writes.keys(), () =>
      this.db.transaction((tx) => {
        this.#checkReads(reads, (key) => tx.get(key));
        for (const [key, spec] of writes) {
          if (spec === null) tx.del(key);
          else tx.put(key, expected(key, spec)!);
        }
      }),
    );
    if (committed) this.#apply(writes);
  }

  /**
   * A transaction over both partitions: reads and a scan, then puts and deletes, each read back
   * inside the transaction.
   */
  async #crossTransaction(): Promise<void> {
    const reads = this.#keys(this.rng.between(1, 4));
    const writes: Writes = new Map(
      this.#entries(this.#crossKeys(this.rng.between(2, 6))).map(({ key, spec }) => [key, spec]),
    );
    const a = keyName(this.rng.below(keySpace));
    const b = keyName(Math.min(keySpace - 1, Number(a.slice(4)) + this.rng.between(1, 60)));
    const inRange = sortedKeys(this.model).filter((key) => key >= a && key < b);
    const committed = await this.#attempt('crossTransactions', writes.keys(), () =>
      this.db.transaction((tx) => {
        this.#checkReads(reads, (key) => tx.get(key));
        const scanned = [...tx.range({ gte: a, lt: b })].map(([key]) => key.toString('latin1'));
        if (scanned.join() !== inRange.join()) {
          throw new Error(`tx.range [${a}, ${b}): ${scanned.length} keys, the model has ${inRange.length}`);
        }
        for (const [key, spec] of writes) {
          const value = expected(key, spec ?? undefined);
          if (value === undefined) tx.del(key);
          else tx.put(key, value);
          const seen = tx.get(key);
          if (value === undefined ? seen !== undefined : !seen?.equals(value))
            throw new Error(`tx.get(${key}) does not see the transaction's own write`);
        }
      }),
    );
    if (committed) this.#apply(writes);
  }

  /** Reads inside a transaction must find what the model has: nothing else writes meanwhile. */
  #checkReads(keys: readonly string[], read: (key: string) => Buffer | undefined): void {
    for (const key of keys) {
      const want = expected(key, this.model.get(key));
      const got = read(key);
      if (want === undefined ? got !== undefined : got === undefined || !got.equals(want)) {
        throw new Error(`tx.get(${key}): ${show(got)}, the model has ${show(want)}`);
      }
    }
  }

  /** A transaction whose function throws after its writes: it rejects with that error, nothing written. */
  async #thrownTransaction(): Promise<void> {
    const keys = this.#keys(this.rng.between(1, 6));
    const marker = new Error('thrown by the transaction function');
    const outcome = await this.db
      .transaction((tx) => {
        for (const key of keys) {
          if (this.rng.chance(0.3)) tx.del(key);
          else tx.put(key, expected(key, this.#spec(drawLength(this.rng)))!);
        }
        throw marker;
      })
      .then(
        () => 'resolved',
        (error: unknown) => error,
      );
    if (outcome !== marker) throw new Error(`a transaction that threw settled with ${String(outcome)}`);
    this.counts.thrownTransactions++;
  }

  /** Takes a snapshot (at most two held), or reads the oldest whole once 80 steps have passed. */
  async #snapshotStep(): Promise<void> {
    const oldest = this.held[0];
    if (oldest !== undefined && this.counts.steps - oldest.takenAtStep >= 80) {
      this.held.shift();
      this.#checkSnapshot(oldest);
      return;
    }
    if (this.held.length < 2) {
      this.held.push({
        snapshot: this.db.snapshot(),
        model: new Map(this.model),
        takenAtStep: this.counts.steps,
      });
    }
  }

  #checkSnapshot(held: HeldSnapshot): void {
    try {
      const problems = compare(held.snapshot, held.model, this.rng);
      expect(problems, `snapshot taken at step ${held.takenAtStep}, read at ${this.counts.steps}`).toEqual(
        [],
      );
      this.counts.snapshotsChecked++;
    } finally {
      held.snapshot.release();
    }
  }

  /** Reads every snapshot still held, and releases it. */
  checkHeldSnapshots(): void {
    for (const held of this.held.splice(0)) this.#checkSnapshot(held);
  }

  /** `steps` operations, then every snapshot held, then the database whole. */
  async round(steps: number, context: string): Promise<void> {
    for (let i = 0; i < steps; i++) await this.step();
    this.checkHeldSnapshots();
    this.check(context);
  }

  check(context: string): void {
    expect(compare(this.db, this.model, this.rng), `${context} (seed ${seed})`).toEqual([]);
  }
}

/**
 * The least share of each kind of write that must commit (by count): refusals are allowed, but a
 * database that refused most writes would not pass. Single puts and deletes fit a pool of this size
 * whatever else waits; a batch or transaction of at most 8 entries of mostly small values usually does
 * (docs/buffer-pool.md, "What a write counts"). The bounds leave a wide margin below what runs see.
 * Batches of 50 to 300 entries have none: they are mostly refused.
 */
const leastCommitted: Record<WriteKind, number> = {
  puts: 0.8,
  overflowPuts: 0.8,
  dels: 0.8,
  partitionBatches: 0.5,
  crossBatches: 0.5,
  bigBatches: 0,
  transactions: 0.5,
  crossTransactions: 0.5,
};

function expectMostCommitted(counts: Counts): void {
  for (const kind of writeKinds) {
    const tally = counts[kind];
    expect(tally.issued, `${kind} issued`).toBeGreaterThan(0);
    expect(tally.committed + tally.ERR_PARTITION_FULL + tally.ERR_TX_CONFLICT, `${kind} settled`).toBe(
      tally.issued,
    );
    expect(tally.committed, `${kind} committed of ${JSON.stringify(tally)}`).toBeGreaterThanOrEqual(
      Math.max(kind === 'bigBatches' ? 0 : 1, Math.ceil(leastCommitted[kind] * tally.issued)),
    );
  }
}

/** Every partition's pool, as stats() reports it. */
function pools(db: Database) {
  const found = db.stats().bufferPools;
  if (found === null) throw new Error('stats().bufferPools is null: the database is not over page files');
  return found;
}

async function checkPageFiles(dir: string, context: string): Promise<number[]> {
  const pages: number[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const check = await checkPageFile(partitionDirectory(dir, partition), { partition });
    expect(check.problems, `${context}: partition ${partition}'s page file`).toEqual([]);
    expect(check.headerSound, `${context}: partition ${partition}'s page file header`).toBe(true);
    expect(check.repairable, `${context}: partition ${partition}'s torn pages`).toBe(0);
    expect(check.state, `${context}: partition ${partition} holds a page set`).not.toBeNull();
    pages.push(check.pages);
  }
  return pages;
}

/** The code an open() with `options` fails with, or 'opened' (the database is closed again). */
async function openCode(dir: string, options: Parameters<typeof open>[1]): Promise<string> {
  try {
    const db = await open(dir, options);
    await db.close();
    return 'opened';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

let dir: string;
let openDatabases: Database[] = [];

/**
 * What the running case is doing, for the stall report: the step it is in and how many it finished.
 * Diagnostics only: a case that stops making progress prints, every stallReportMs, what the database
 * reports of itself, so a hang on a loaded machine leaves more than a timeout behind. No bound here.
 */
const progress = { doing: 'starting', done: 0 };
const stallReportMs = 30_000;
let stallReporter: ReturnType<typeof setInterval> | undefined;

function reportStall(): void {
  const db = openDatabases[openDatabases.length - 1];
  let state = 'no database open';
  if (db !== undefined) {
    try {
      const stats = db.stats();
      state = JSON.stringify({
        pendingWrites: stats.pendingWrites,
        workers: stats.workerStats.map(({ state, batches, operations }) => ({ state, batches, operations })),
        pools: stats.bufferPools?.map(({ partition, residentPages, dirtyPages, misses, evictions }) => ({
          partition,
          residentPages,
          dirtyPages,
          misses,
          evictions,
        })),
        transactions: stats.transactions,
        mvcc: stats.mvcc,
      });
    } catch (error) {
      state = `stats() threw ${String(error)}`;
    }
  }
  console.log(
    `paged-database: no progress for ${stallReportMs} ms in ${progress.doing} (${progress.done} done): ${state}`,
  );
}

/** Opens `dir`, remembered so that a failed test still closes it. */
async function openTracked(options: Parameters<typeof open>[1]): Promise<Database> {
  const db = await open(dir, options);
  openDatabases.push(db);
  return db;
}

async function closeTracked(db: Database): Promise<void> {
  openDatabases = openDatabases.filter((other) => other !== db);
  await db.close();
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-db-'));
  openDatabases = [];
  progress.doing = 'starting';
  progress.done = 0;
  let seen = -1;
  stallReporter = setInterval(() => {
    if (progress.done === seen) reportStall();
    seen = progress.done;
  }, stallReportMs);
  stallReporter.unref();
});

afterEach(async () => {
  clearInterval(stallReporter);
  // Taken before the first await: a close that outlives the hook's timeout must not remove the next
  // test's directory when it ends.
  const closing = openDatabases;
  const removing = dir;
  openDatabases = [];
  for (const db of closing) await db.close().catch(() => undefined);
  await rm(removing, { recursive: true, force: true });
});

describe('a database over page files, five times its buffer pools or more', () => {
  it('holds the model through writes, snapshots, a checkpoint and reopens with other budgets', async () => {
    const rng = new Rng(seed);
    let db = await openTracked(pagedOptions);
    const work = new Workload(db, rng);
    await work.load(4000);
    const loaded = pools(db);
    const pagesLoaded = loaded.reduce((sum, pool) => sum + pool.pagesAllocated, 0);
    expect(loaded.map((pool) => pool.framesMax)).toEqual([frames, frames]);
    // The trees are at least five times the frames (about seven times after the load, more later), so
    // reads miss and writes wait for page sets.
    expect(pagesLoaded).toBeGreaterThanOrEqual(5 * partitions * frames);
    work.check('after the load');

    for (let round = 0; round < 2; round++) await work.round(90, `round ${round}`);
    const checkpoints = await db.checkpoint();
    expect(checkpoints.map((result) => result.partition).sort()).toEqual([0, 1]);
    for (let round = 2; round < 4; round++) await work.round(90, `round ${round}, after the checkpoint`);
    const missesBeforeClose = pools(db).reduce((sum, pool) => sum + pool.misses, 0);
    const evictions = pools(db).reduce((sum, pool) => sum + pool.evictions, 0);
    await closeTracked(db);

    const budgets: Array<{ name: string; options: Parameters<typeof open>[1]; frames: number | null }> = [
      { name: 'the same memoryMaxBytes', options: pagedOptions, frames },
      {
        name: 'four times the memoryMaxBytes',
        options: { ...pagedOptions, memoryMaxBytes: 4 * memoryMaxBytes },
        frames: 4 * frames,
      },
      { name: 'no memoryMaxBytes', options: { partitions, workers: 1 }, frames: null },
      { name: 'the same memoryMaxBytes again', options: pagedOptions, frames },
    ];
    for (const [index, budget] of budgets.entries()) {
      progress.doing = `reopening with ${budget.name}`;
      db = await openTracked(budget.options);
      work.db = db;
      const reopened = pools(db);
      if (budget.frames !== null)
        expect(reopened.map((pool) => pool.framesMax)).toEqual([budget.frames, budget.frames]);
      work.check(`reopened with ${budget.name}`);
      // Writes in every open. A larger pool takes batches that the small one refuses; replay applies
      // a record entry by entry, so a smaller pool still takes them. The first open checkpoints before
      // it closes, the others close after their writes (a clean close writes a page set).
      if (index < budgets.length - 1) await work.round(60, `writing after reopening with ${budget.name}`);
      if (index === 0) await db.checkpoint();
      await closeTracked(db);
    }

    const pageFilePages = await checkPageFiles(dir, 'closed');
    const { counts } = work;
    console.log(
      `paged-database: ${work.model.size} keys in ${pageFilePages.join(' + ')} pages for ${partitions} × ${frames} frames ` +
        `(${pagesLoaded} after the load; ${missesBeforeClose} misses, ${evictions} evictions before the first close); ` +
        JSON.stringify(counts),
    );
    expect(Math.min(...pageFilePages)).toBeGreaterThan(5 * frames);
    expect(missesBeforeClose).toBeGreaterThan(0);
    expect(evictions).toBeGreaterThan(0);
    expectMostCommitted(counts);
    expect(counts.thrownTransactions, 'thrownTransactions').toBeGreaterThan(0);
    expect(counts.snapshotsChecked, 'snapshotsChecked').toBeGreaterThan(0);
  }, 300_000);

  it('serves a reader thread attached with db.share() while the main thread writes', async () => {
    const rng = new Rng(seed ^ 0x2ead);
    const db = await openTracked(pagedOptions);
    const work = new Workload(db, rng);
    await work.load(2000);
    const words = new Int32Array(new SharedArrayBuffer(4 * 4));
    const input: PagedReaderInput = {
      role: 'paged-database-reader',
      handle: db.share(),
      keyCount: keySpace,
      seed: seed ^ 0x5eed,
      shared: words.buffer as SharedArrayBuffer,
    };
    const reader = new WorkerMailbox<PagedReaderMessage>(
      startTsWorker(new URL('./support/paged-database-model.ts', import.meta.url), input),
      'reader',
    );
    try {
      await reader.next('ready');
      const finished = reader.next('done');
      finished.catch(() => undefined);
      /** Until the reader has done `reads` point reads (it fails the wait if it stops or fails first). */
      const readerAt = async (reads: number): Promise<void> => {
        for (;;) {
          const seen = Atomics.load(words, readerWords.reads);
          if (seen >= reads) return;
          if (Atomics.load(words, readerWords.done) === 1) {
            await finished;
            throw new Error(`the reader stopped after ${seen} reads`);
          }
          const wait = Atomics.waitAsync(words, readerWords.reads, seen);
          if (wait.async) await Promise.race([wait.value, finished]);
        }
      };
      const missesBefore = pools(db).reduce((sum, pool) => sum + pool.misses, 0);
      const chunks = 20;
      const readsPerChunk = 150;
      for (let chunk = 0; chunk < chunks; chunk++) {
        for (let i = 0; i < 12; i++) await work.step();
        await readerAt((chunk + 1) * readsPerChunk);
      }
      Atomics.store(words, readerWords.stop, 1);
      const report = await finished;
      if (report.type !== 'done') throw new Error(`unexpected ${report.type}`);
      console.log(`paged-database: reader ${JSON.stringify(report)}; writer ${JSON.stringify(work.counts)}`);
      expect(report.problems).toEqual([]);
      expect(report.reads).toBeGreaterThanOrEqual(chunks * readsPerChunk);
      expect(report.whole).toBeGreaterThan(report.reads / 2);
      expect(report.absent).toBeGreaterThan(0);
      expect(report.scannedEntries).toBeGreaterThan(0);
      expect(report.snapshotRereads).toBeGreaterThan(0);
      expect(pools(db).reduce((sum, pool) => sum + pool.misses, 0)).toBeGreaterThan(missesBefore);
      expectMostCommitted(work.counts);
      work.checkHeldSnapshots();
      work.check('after the reader');
    } finally {
      await reader.worker.terminate();
    }
    await closeTracked(db);
    await checkPageFiles(dir, 'closed after the reader');
  }, 300_000);

  it('refuses opens it cannot serve, and converts a database kept in memory', async () => {
    // Below 64 frames per partition, on an empty directory: refused, leaving nothing behind, so that
    // the directory opens afterwards with a budget that is enough.
    const least = partitions * 64 * pageSize;
    expect(await openCode(dir, { ...pagedOptions, memoryMaxBytes: least - 1 })).toBe('ERR_BAD_ARGUMENT');
    expect(await openCode(dir, { ...pagedOptions, memoryMaxBytes: 64 * pageSize })).toBe('ERR_BAD_ARGUMENT');
    expect(await openCode(dir, { partitions: 4, workers: 1, memoryMaxBytes: least })).toBe(
      'ERR_BAD_ARGUMENT',
    );
    expect(await readdir(dir), 'what the refused opens left').toEqual([]);

    const rng = new Rng(seed ^ 0xe770);
    let db = await openTracked(pagedOptions);
    expect(pools(db).map((pool) => pool.framesMax)).toEqual([frames, frames]);
    const work = new Workload(db, rng);
    await work.load(600);
    await db.checkpoint();
    await work.round(40, 'a small paged database');
    await closeTracked(db);
    // Read-only, with the budget or without it: every value there, writes refused.
    for (const readOnly of [{ readOnly: true }, { readOnly: true, memoryMaxBytes }]) {
      db = await openTracked({ partitions, workers: 1, ...readOnly });
      work.db = db;
      expect(db.stats().bufferPools, 'read-only over the page files').not.toBeNull();
      work.check(`read-only (${JSON.stringify(readOnly)})`);
      await expect(db.put('read-only', 'write')).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
      await closeTracked(db);
    }
    // Nor with another page size.
    expect(await openCode(dir, { ...pagedOptions, pageSizeBytes: 8192 })).toBe('ERR_BAD_ARGUMENT');
    expect(await openCode(dir, { partitions, workers: 1, pageSizeBytes: 16384 })).toBe('ERR_BAD_ARGUMENT');
    // None of the refusals changed anything: the same page size, given, opens it whole.
    db = await openTracked({ ...pagedOptions, pageSizeBytes: pageSize });
    work.db = db;
    work.check('reopened after the refused opens');
    await closeTracked(db);
    await checkPageFiles(dir, 'the small paged database');
    // Its manifests name the page files: one missing is corruption, whatever the budget.
    await rm(join(partitionDirectory(dir, 0), 'pages.lpg'));
    expect(await openCode(dir, pagedOptions)).toBe('ERR_CORRUPTION');
    expect(await openCode(dir, { partitions, workers: 1 })).toBe('ERR_CORRUPTION');

    // A database kept in memory that checkpointed, opened with memoryMaxBytes: converted to page files
    // (docs/buffer-pool.md, "Which databases"), for good once it checkpointed over them.
    const memoryDir = await mkdtemp(join(tmpdir(), 'lightning-paged-db-memory-'));
    try {
      const inMemory = await open(memoryDir, { partitions, workers: 1 });
      openDatabases.push(inMemory);
      expect(inMemory.stats().bufferPools).toBeNull();
      const converted = new Workload(inMemory, new Rng(seed ^ 0xc0de));
      await converted.load(1000);
      await inMemory.checkpoint();
      await converted.round(40, 'in memory, after its checkpoint');
      await closeTracked(inMemory);
      // A conversion writes the page files: not read-only.
      expect(await openCode(memoryDir, { ...pagedOptions, readOnly: true })).toBe('ERR_NOT_SUPPORTED');
      const paged = await open(memoryDir, pagedOptions);
      openDatabases.push(paged);
      converted.db = paged;
      expect(pools(paged).map((pool) => pool.framesMax)).toEqual([frames, frames]);
      // The conversion records each partition's first page set as the open ends: its page file, and
      // no checkpoint file left, before any write or checkpoint (checked once the database is closed,
      // so that a failure does not leave it open).
      const filesAfterOpen: string[][] = [];
      for (let partition = 0; partition < partitions; partition++) {
        filesAfterOpen.push(await readdir(partitionDirectory(memoryDir, partition)));
      }
      converted.check('converted to page files');
      await converted.round(40, 'written over page files');
      await paged.checkpoint();
      await closeTracked(paged);
      const again = await open(memoryDir, { partitions, workers: 1 });
      openDatabases.push(again);
      converted.db = again;
      expect(again.stats().bufferPools, 'still over page files without memoryMaxBytes').not.toBeNull();
      converted.check('reopened without memoryMaxBytes after the conversion');
      await closeTracked(again);
      for (const [partition, files] of filesAfterOpen.entries()) {
        expect(files, `converted partition ${partition}'s files after the open`).toContain('pages.lpg');
        expect(
          files.filter((file) => /^checkpoint-.*\.ckp$/.test(file)),
          `converted partition ${partition}'s checkpoint files after the open`,
        ).toEqual([]);
      }
      expect(await openCode(memoryDir, { readOnly: true })).toBe('opened');
      for (let partition = 0; partition < partitions; partition++) {
        const check = await checkPageFile(partitionDirectory(memoryDir, partition), { partition });
        expect(check.problems, `converted partition ${partition}`).toEqual([]);
        expect(check.state, `converted partition ${partition}`).not.toBeNull();
      }
    } finally {
      await rm(memoryDir, { recursive: true, force: true });
    }
  }, 300_000);
});
