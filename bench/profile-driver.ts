/**
 * The process `npm run profile` records: opens a lightning-db database in a temp dir, loads N records,
 * then runs one workload for a fixed time, all in this process, so a profiler sees the main thread and
 * every owner worker doing real work. It can also run alone:
 *
 *   node dist/bench/profile-driver.js update --records 100000 --seconds 5 --durability sync
 *
 * Workloads: load (the load phase only), read (sync gets), update (puts of existing keys), scan (range
 * scans of 100 rows), mixed (50% gets, 50% puts). Keys are 16 random bytes, values 100, picked uniformly
 * from a seeded generator, so two runs profile the same operations. Each phase is its own named
 * function (loadRecords, readLoop, updateLoop, scanLoop, mixedLoop), so the flamegraph shows which
 * frames belong to which phase.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Database, type Durability, open } from '../src/index.js';
import { parseArgumentsOrExit } from './lib/args.js';
import { mulberry32, randomRecords } from './lib/rng.js';
import { type DriverOptions, type ProfileWorkload, parseDriverArguments } from './profile/driver-options.js';

const keyBytes = 16;
const valueBytes = 100;
/** Puts in flight before the loop awaits them: enough for the owners to batch, few enough to bound memory. */
const writeWindow = 1000;
const scanRows = 100;
/** The clock is read once per this many operations, so reading it costs nothing in the profile. */
const clockEvery = 256;

export interface DriverSummary {
  workload: ProfileWorkload;
  records: number;
  durability: Durability;
  workers: number;
  loadSeconds: number;
  operations: number;
  seconds: number;
  operationsPerSecond: number;
  /** A fold of every value read, so a run that read nothing is visible. */
  checksum: number;
  placements: { worker: number; node: number; cpus: string; pinned: boolean; reason?: string }[];
}

function views(bytes: Buffer, width: number): Buffer[] {
  return Array.from({ length: bytes.length / width }, (_, i) => bytes.subarray(i * width, (i + 1) * width));
}

function fold(hash: number, bytes: Uint8Array): number {
  return Math.imul(hash ^ bytes.length ^ (bytes[0] ?? 0) ^ ((bytes[bytes.length - 1] ?? 0) << 8), 0x9e3779b1);
}

async function loadRecords(db: Database, keys: Buffer[], values: Buffer[]): Promise<void> {
  for (let from = 0; from < keys.length; from += writeWindow) {
    const to = Math.min(keys.length, from + writeWindow);
    const pending: Promise<void>[] = [];
    for (let i = from; i < to; i++) pending.push(db.put(keys[i]!, values[i]!));
    await Promise.all(pending);
  }
}

/** A loop body run until the deadline; returns operations done and the read checksum. */
type Loop = (
  db: Database,
  keys: Buffer[],
  values: Buffer[],
  next: () => number,
  deadlineMs: number,
) => Promise<[number, number]>;

const readLoop: Loop = async (db, keys, _values, next, deadlineMs) => {
  let done = 0;
  let hash = 0;
  while (performance.now() < deadlineMs) {
    for (let i = 0; i < clockEvery; i++) {
      const value = db.get(keys[next() % keys.length]!);
      if (value !== undefined) hash = fold(hash, value);
    }
    done += clockEvery;
  }
  return [done, hash];
};

const updateLoop: Loop = async (db, keys, values, next, deadlineMs) => {
  let done = 0;
  const pending: Promise<void>[] = new Array(writeWindow);
  while (performance.now() < deadlineMs) {
    for (let i = 0; i < writeWindow; i++)
      pending[i] = db.put(keys[next() % keys.length]!, values[next() % values.length]!);
    await Promise.all(pending);
    done += writeWindow;
  }
  return [done, 0];
};

const scanLoop: Loop = async (db, keys, _values, next, deadlineMs) => {
  let done = 0;
  let hash = 0;
  while (performance.now() < deadlineMs) {
    for (let i = 0; i < clockEvery / 16; i++) {
      for (const [, value] of db.range({ gte: keys[next() % keys.length]!, limit: scanRows }))
        hash = fold(hash, value);
    }
    done += clockEvery / 16;
  }
  return [done, hash];
};

const mixedLoop: Loop = async (db, keys, values, next, deadlineMs) => {
  let done = 0;
  let hash = 0;
  const pending: Promise<void>[] = [];
  while (performance.now() < deadlineMs) {
    pending.length = 0;
    for (let i = 0; i < writeWindow; i++) {
      const key = keys[next() % keys.length]!;
      if ((next() & 1) === 0) {
        const value = db.get(key);
        if (value !== undefined) hash = fold(hash, value);
      } else {
        pending.push(db.put(key, values[next() % values.length]!));
      }
    }
    await Promise.all(pending);
    done += writeWindow;
  }
  return [done, hash];
};

const loops: Record<Exclude<ProfileWorkload, 'load'>, Loop> = {
  read: readLoop,
  update: updateLoop,
  scan: scanLoop,
  mixed: mixedLoop,
};

export async function runDriver(options: DriverOptions): Promise<DriverSummary> {
  const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), `lightning-profile-${options.workload}-`));
  const keys = views(randomRecords(options.records, keyBytes, options.seed), keyBytes);
  const values = views(randomRecords(options.records, valueBytes, options.seed + 1), valueBytes);
  const db = await open(dir, { workers: options.workers, durability: options.durability });
  try {
    const loadStart = performance.now();
    await loadRecords(db, keys, values);
    const loadSeconds = (performance.now() - loadStart) / 1000;
    let operations = options.records;
    let seconds = loadSeconds;
    let checksum = 0;
    if (options.workload !== 'load') {
      const next = mulberry32(options.seed + 2);
      const start = performance.now();
      [operations, checksum] = await loops[options.workload](
        db,
        keys,
        values,
        next,
        start + options.seconds * 1000,
      );
      seconds = (performance.now() - start) / 1000;
    }
    const stats = db.stats();
    return {
      workload: options.workload,
      records: options.records,
      durability: options.durability,
      workers: stats.workers,
      loadSeconds,
      operations,
      seconds,
      operationsPerSecond: operations / seconds,
      checksum: checksum >>> 0,
      placements: stats.workerStats.map((worker) => ({ worker: worker.worker, ...worker.placement })),
    };
  } finally {
    await db.close();
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseArgumentsOrExit(parseDriverArguments);
  const summary = await runDriver(options);
  console.log(
    `${summary.workload}: ${summary.operations.toLocaleString('en-US')} operations in ${summary.seconds.toFixed(2)} s` +
      ` (${Math.round(summary.operationsPerSecond).toLocaleString('en-US')} ops/s) after loading ${summary.records.toLocaleString('en-US')}` +
      ` records in ${summary.loadSeconds.toFixed(2)} s; ${summary.workers} workers, durability ${summary.durability}, checksum ${summary.checksum.toString(16)}`,
  );
  if (options.summary !== undefined) writeFileSync(options.summary, `${JSON.stringify(summary, null, 2)}\n`);
}

await main();
