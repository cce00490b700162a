/**
 * One child process: opens one store in the directory the parent made, runs the phases and prints
 * JSON lines on stdout (one per finished phase, then the result). Errors go to stderr. Every write phase
 * drives every store the same way: put() promises, a window of them outstanding and then awaited
 * (load, put), or one at a time, each awaited before the next is issued (put1).
 */
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { hex32 } from '../lib/format.js';
import type { RowSink } from '../stores/peer.js';
import { type BatchCounters, type EngineStore, openStore, type StoreName } from './stores.js';
import {
  buildWorkload,
  foldBytes,
  rangeRowsPerScan,
  type ScanTotals,
  valueBytes,
  valueViews,
  type Workload,
  warmupGetsMax,
  writeWindow,
} from './workload.js';

export const phaseNames = ['load', 'put', 'put1', 'get', 'range'] as const;
export type PhaseName = (typeof phaseNames)[number];

export interface PhaseLine extends PhaseTiming {
  kind: 'phase';
  store: StoreName;
  phase: PhaseName;
}

/** Wall time and the whole process's CPU time (every thread: main, owner workers, lmdb-js's writer). */
export interface Elapsed {
  seconds: number;
  /** User + system CPU seconds of the process; cpuSeconds / seconds ≈ how many cores were busy. */
  cpuSeconds: number;
}

export interface PhaseTiming extends Elapsed {
  /** Operations per second; rows per second for the range phase. */
  perSecond: number;
  /** Operations (rows for range) per CPU-second of the process over the timed window. */
  perCpuSecond: number;
}

/** Per-worker batch counters of one write phase (differences of the cumulative counters). */
export interface PhaseBatches {
  phase: 'load' | 'put' | 'put1';
  workers: BatchCounters[];
}

export interface ResultLine {
  kind: 'result';
  store: StoreName;
  /** Set by the parent (1-based); a child reports 0. */
  round: number;
  records: number;
  setup: string;
  durability: string;
  facts: Record<string, string | number | boolean>;
  openSeconds: number;
  closeSeconds: number;
  phases: Record<PhaseName, PhaseTiming>;
  /** Seconds from the last acknowledged write of a phase until the store reported it flushed. */
  settleSeconds: { load: number | null; put: number | null; put1: number | null };
  /** Writes in the put1 phase (one outstanding at a time). */
  serialPuts: number;
  durabilityClass: string;
  transactionMethod: string;
  /** Entries the store reports after the overwrites (must be N). */
  count: number;
  /** keys[0] read back right after the load equals the value loaded. */
  spotCheckOk: boolean;
  getChecksum: string;
  getsMissing: number;
  rangeRows: number;
  rangeChecksum: string;
  /** Reported only so the untimed warm-up loops have an observable result. */
  warmupChecksums: { get: string; range: string };
  /** lightning-db only: batch counters per write phase; batchSizeMax is cumulative (the counter is a max). */
  batches: PhaseBatches[] | null;
}

export type ChildLine = PhaseLine | ResultLine;

/** Typed, so every line the parent reads has the shape it expects. */
const emit: (line: ChildLine) => void = emitLine;

/** Starts timing; the returned function reads the wall and CPU time since. */
export function stopwatch(): () => Elapsed {
  const startMs = performance.now();
  const startCpu = process.cpuUsage();
  return () => {
    const seconds = (performance.now() - startMs) / 1000;
    const cpu = process.cpuUsage(startCpu);
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  };
}

/** Issues keys[from..to) with values[from..to) as one window of put() promises and awaits them all. */
function putWindow(
  store: EngineStore,
  keys: Buffer[],
  values: Buffer[],
  pending: Promise<unknown>[],
  from: number,
  to: number,
): Promise<unknown> {
  pending.length = to - from;
  for (let i = from; i < to; i++) pending[i - from] = store.put(keys[i]!, values[i]!);
  return Promise.all(pending);
}

/** Inserts every key in key-generation order, in windows of outstanding put() promises. */
async function timeLoad(store: EngineStore, workload: Workload): Promise<Elapsed> {
  const n = workload.records;
  const values = valueViews(workload.loadValues, null, n);
  const pending = new Array<Promise<unknown>>(writeWindow);
  collectGarbage();
  const elapsed = stopwatch();
  for (let from = 0; from < n; from += writeWindow) {
    await putWindow(store, workload.keys, values, pending, from, Math.min(n, from + writeWindow));
  }
  return elapsed();
}

/** Overwrites every key once in a shuffled order, in windows of outstanding put() promises. */
async function timePuts(store: EngineStore, workload: Workload): Promise<Elapsed> {
  const n = workload.records;
  const order = workload.putOrder;
  // Value i is the one for key order[i], so each key's final value does not depend on the order.
  const values = valueViews(workload.putValues, order, n);
  const keys = workload.keys;
  collectGarbage();
  const elapsed = stopwatch();
  const pending = new Array<Promise<unknown>>(writeWindow);
  for (let from = 0; from < n; from += writeWindow) {
    const to = Math.min(n, from + writeWindow);
    pending.length = to - from;
    for (let i = from; i < to; i++) pending[i - from] = store.put(keys[order[i]!]!, values[i]!);
    await Promise.all(pending);
  }
  return elapsed();
}

/**
 * Concurrency 1: rewrites the first `count` keys of the overwrite order with the values the put phase
 * gave them (so the get checksum is unchanged), each put awaited before the next is issued. With
 * durability 'sync' every put waits for its own fsync: the latency of one write, not a batch's.
 */
async function timeSerialPuts(store: EngineStore, workload: Workload, count: number): Promise<Elapsed> {
  const order = workload.putOrder;
  const values = valueViews(workload.putValues, order, count);
  const keys = workload.keys;
  collectGarbage();
  const elapsed = stopwatch();
  for (let i = 0; i < count; i++) await store.put(keys[order[i]!]!, values[i]!);
  return elapsed();
}

function timeGets(
  store: EngineStore,
  workload: Workload,
): { elapsed: Elapsed; checksum: number; missing: number; warmupChecksum: number } {
  const n = workload.records;
  const keys = workload.keys;
  // Untimed warm-up on its own order so the get path is compiled before the clock starts.
  let warmupHash = 0;
  const warmups = Math.min(n, warmupGetsMax);
  for (let i = 0; i < warmups; i++) {
    const value = store.get(keys[workload.warmupOrder[i]]);
    if (value !== undefined) warmupHash = foldBytes(warmupHash, value);
  }
  const order = workload.getOrder;
  collectGarbage();
  let checksum = 0;
  let missing = 0;
  const elapsed = stopwatch();
  for (let i = 0; i < n; i++) {
    const value = store.get(keys[order[i]]);
    if (value === undefined) missing++;
    else checksum = foldBytes(checksum, value);
  }
  return { elapsed: elapsed(), checksum, missing, warmupChecksum: warmupHash };
}

/** Folds every row of a scan into the totals; one object, so the store's call to it stays monomorphic. */
class FoldingSink implements RowSink {
  constructor(readonly totals: ScanTotals) {}
  row(key: Uint8Array, value: Uint8Array): void {
    this.totals.hash = foldBytes(foldBytes(this.totals.hash, key), value);
  }
}

function timeRanges(
  store: EngineStore,
  workload: Workload,
): { elapsed: Elapsed; totals: ScanTotals; warmupChecksum: number } {
  const warmup: ScanTotals = { rows: 0, hash: 0 };
  const warmupSink = new FoldingSink(warmup);
  for (const start of workload.warmupStarts) warmup.rows += store.scan(start, rangeRowsPerScan, warmupSink);
  const starts = workload.rangeStarts;
  const totals: ScanTotals = { rows: 0, hash: 0 };
  const sink = new FoldingSink(totals);
  collectGarbage();
  const elapsed = stopwatch();
  for (let i = 0; i < starts.length; i++) totals.rows += store.scan(starts[i]!, rangeRowsPerScan, sink);
  return { elapsed: elapsed(), totals, warmupChecksum: warmup.hash };
}

function difference(after: BatchCounters[], before: BatchCounters[] | null): BatchCounters[] {
  return after.map((worker, index) => {
    const earlier = before?.[index];
    return {
      ...worker,
      batches: worker.batches - (earlier?.batches ?? 0),
      operations: worker.operations - (earlier?.operations ?? 0),
    };
  });
}

export async function runChild(
  storeName: StoreName,
  dir: string,
  records: number,
  seed: number,
  serialPutsMax: number,
): Promise<void> {
  const workload = buildWorkload(records, seed);
  const openElapsed = stopwatch();
  const store = await openStore(storeName, dir);
  const openSeconds = openElapsed().seconds;
  const countersAtOpen = store.batchCounters();

  /** Reports a finished phase at once, so the parent can show progress while later phases run. */
  const done = (phase: PhaseName, elapsed: Elapsed, amount: number): PhaseTiming => {
    const timing = {
      ...elapsed,
      perSecond: amount / elapsed.seconds,
      perCpuSecond: amount / elapsed.cpuSeconds,
    };
    emit({ kind: 'phase', store: storeName, phase, ...timing });
    return timing;
  };

  const load = done('load', await timeLoad(store, workload), records);
  const settleLoad = await store.settle();
  const countersAfterLoad = store.batchCounters();
  const first = store.get(workload.keys[0]);
  const spotCheckOk =
    first !== undefined && Buffer.compare(first, workload.loadValues.subarray(0, valueBytes)) === 0;

  const put = done('put', await timePuts(store, workload), records);
  const settlePut = await store.settle();
  const countersAfterPut = store.batchCounters();
  const serialPuts = Math.min(records, serialPutsMax);
  const put1 = done('put1', await timeSerialPuts(store, workload, serialPuts), serialPuts);
  const settlePut1 = await store.settle();
  const countersAfterPut1 = store.batchCounters();
  const count = store.count();

  const gets = timeGets(store, workload);
  const get = done('get', gets.elapsed, records);

  const ranges = timeRanges(store, workload);
  const range = done('range', ranges.elapsed, ranges.totals.rows);

  const closeElapsed = stopwatch();
  await store.close();
  const closeSeconds = closeElapsed().seconds;

  emit({
    kind: 'result',
    store: storeName,
    round: 0,
    records,
    setup: store.setup,
    durability: store.acknowledgement,
    durabilityClass: store.durabilityClass,
    transactionMethod: store.transactionMethod,
    serialPuts,
    facts: store.facts,
    openSeconds,
    closeSeconds,
    phases: { load, put, put1, get, range },
    settleSeconds: { load: settleLoad, put: settlePut, put1: settlePut1 },
    count,
    spotCheckOk,
    getChecksum: hex32(gets.checksum),
    getsMissing: gets.missing,
    rangeRows: ranges.totals.rows,
    rangeChecksum: hex32(ranges.totals.hash),
    warmupChecksums: { get: hex32(gets.warmupChecksum), range: hex32(ranges.warmupChecksum) },
    batches:
      countersAfterLoad === null || countersAfterPut === null || countersAfterPut1 === null
        ? null
        : [
            { phase: 'load', workers: difference(countersAfterLoad, countersAtOpen) },
            { phase: 'put', workers: difference(countersAfterPut, countersAfterLoad) },
            { phase: 'put1', workers: difference(countersAfterPut1, countersAfterPut) },
          ],
  });
}
