/**
 * The databases the fault matrix damages: each built once through the public API, closed, and kept
 * pristine with a model of what it must hold, plus a copy of its directory taken part-way through
 * (the "older copy" a careless restore or a stale backup puts back).
 */
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointResult, open } from '../../../src/index.js';
import { mulberry32 } from '../seeded-random.js';

/** What a database must hold: its contents, and every value each key ever had (undefined: absent). */
export interface Model {
  readonly contents: Map<string, string>;
  /** Every key ever written, with each value it has had; a key that never existed is not here. */
  readonly history: Map<string, Set<string | undefined>>;
}

export interface Variant {
  /** A short name for the table: 'ckpt' (checkpoints and log tails) or 'logs' (logs only). */
  readonly name: string;
  readonly directory: string;
  /** The directory copied before the last writes: the source of every "older copy". */
  readonly olderDirectory: string;
  readonly model: Model;
  /** Where each partition's replay starts after its checkpoint; empty when it has none. */
  readonly checkpointStarts: ReadonlyMap<number, number>;
}

/** The engine's open(): the fault matrix runs a bundle of the sources (bundled-engine.ts). */
export type Open = typeof open;

export const partitionCount = 4;
const buildWorkers = 2;
/** Puts or deletes sent to the database at once while building: enough to fill group commits. */
const writesInFlight = 100;

function emptyModel(): Model {
  return { contents: new Map(), history: new Map() };
}

/** A seeded stream of writes against a model: new keys, overwrites and deletes of existing keys. */
class WriteSource {
  readonly #random: () => number;
  readonly #model: Model;
  readonly #keys: string[] = [];
  #nextKey = 0;

  constructor(random: () => number, model: Model) {
    this.#random = random;
    this.#model = model;
  }

  /**
   * The next write, recorded in the model: a put of a new key, an overwrite, or (when `deletes`) a
   * delete of a live key; never of a key in `busy` (a new key instead).
   */
  next(deletes: boolean, busy: ReadonlySet<string>): { key: string; value: string | undefined } {
    const roll = this.#random() % 10;
    if (this.#keys.length === 0 || roll < 5 || (!deletes && roll >= 8)) return this.#record(this.#newKey());
    const key = this.#keys[this.#random() % this.#keys.length]!;
    if (busy.has(key)) return this.#record(this.#newKey());
    if (roll < 8 || !this.#model.contents.has(key)) return this.#record(key);
    return this.#record(key, undefined);
  }

  #newKey(): string {
    const key = `key:${(this.#random() % 1_000_000).toString(36)}:${this.#nextKey++}`;
    this.#keys.push(key);
    return key;
  }

  #record(
    key: string,
    value: string | undefined = this.#value(),
  ): { key: string; value: string | undefined } {
    const { contents, history } = this.#model;
    if (value === undefined) contents.delete(key);
    else contents.set(key, value);
    const seen = history.get(key) ?? new Set<string | undefined>();
    seen.add(value);
    history.set(key, seen);
    return { key, value };
  }

  #value(): string {
    const length = 8 + (this.#random() % 120);
    return `v${this.#random().toString(36)}`.padEnd(length, '.');
  }
}

type Db = Awaited<ReturnType<typeof open>>;

/**
 * Sends `count` writes, `writesInFlight` at a time. A key written twice in one group could commit
 * in either order, so each group writes every key at most once.
 */
async function write(db: Db, source: WriteSource, count: number, deletes: boolean): Promise<void> {
  let group: Promise<void>[] = [];
  const keys = new Set<string>();
  const settle = async () => {
    await Promise.all(group);
    group = [];
    keys.clear();
  };
  for (let i = 0; i < count; i++) {
    const write = source.next(deletes, keys);
    keys.add(write.key);
    group.push(write.value === undefined ? db.del(write.key) : db.put(write.key, write.value));
    if (group.length === writesInFlight) await settle();
  }
  await settle();
}

async function openForBuild(open: Open, directory: string): Promise<Db> {
  return open(directory, { partitions: partitionCount, workers: buildWorkers, durability: 'sync' });
}

/**
 * 'ckpt': 2,000 puts and a checkpoint of every partition, the older copy, 500 puts and deletes (a
 * log tail past each checkpoint in the same segments as records below it), close; then a second
 * run with 500 more (logs that hold only records the checkpoints do not cover), close.
 */
export async function buildCheckpointed(open: Open, root: string, seed: number): Promise<Variant> {
  const directory = join(root, 'ckpt');
  const olderDirectory = join(root, 'ckpt-older');
  const model = emptyModel();
  const source = new WriteSource(mulberry32(seed), model);
  let results: CheckpointResult[];
  const first = await openForBuild(open, directory);
  try {
    await write(first, source, 2000, false);
    results = await first.checkpoint();
    await cp(directory, olderDirectory, { recursive: true });
    await write(first, source, 500, true);
  } finally {
    await first.close();
  }
  const second = await openForBuild(open, directory);
  try {
    await write(second, source, 500, true);
  } finally {
    await second.close();
  }
  const checkpointStarts = new Map(results.map((result) => [result.partition, result.startLsn]));
  return { name: 'ckpt', directory, olderDirectory, model, checkpointStarts };
}

/** 'logs': no checkpoint at all; 500 puts, the older copy, 500 puts and deletes, close. */
export async function buildLogsOnly(open: Open, root: string, seed: number): Promise<Variant> {
  const directory = join(root, 'logs');
  const olderDirectory = join(root, 'logs-older');
  const model = emptyModel();
  const source = new WriteSource(mulberry32(seed ^ 0x9e3779b9), model);
  const db = await openForBuild(open, directory);
  try {
    await write(db, source, 500, false);
    await cp(directory, olderDirectory, { recursive: true });
    await write(db, source, 500, true);
  } finally {
    await db.close();
  }
  return { name: 'logs', directory, olderDirectory, model, checkpointStarts: new Map() };
}
