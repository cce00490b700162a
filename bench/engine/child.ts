/**
 * One child process: opens one store in the directory the parent made, runs the four phases and prints
 * JSON lines on stdout (one per finished phase, then the result). Errors go to stderr.
 */
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { hex32 } from '../lib/format.js';
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

export const phaseNames = ['load', 'put', 'get', 'range'] as const;
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
}

/** Per-worker batch counters of one write phase (differences of the cumulative counters). */
export interface PhaseBatches {
  phase: 'load' | 'put';
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
  loadMethod: string;
  facts: Record<string, string | number | boolean>;
  openSeconds: number;
  closeSeconds: number;
  phases: Record<PhaseName, PhaseTiming>;
  /** Seconds from the last acknowledged write of a phase until the store reported it flushed. */
  settleSeconds: { load: number | null; put: number | null };
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

async function timeLoad(store: EngineStore, workload: Workload): Promise<Elapsed> {
  const n = workload.records;
  const values = valueViews(workload.loadValues, null, n);
  collectGarbage();
  const elapsed = stopwatch();
  for (let from = 0; from < n; from += writeWindow) {
    await store.loadChunk(workload.keys, values, from, Math.min(n, from + writeWindow));
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
    for (let i = from; i < to; i++) pending[i - from] = store.put(keys[order[i]], values[i]);
    await Promise.all(pending);
  }
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

function timeRanges(
  store: EngineStore,
  workload: Workload,
): { elapsed: Elapsed; totals: ScanTotals; warmupChecksum: number } {
  const warmup: ScanTotals = { rows: 0, hash: 0 };
  for (const start of workload.warmupStarts) store.scan(start, rangeRowsPerScan, warmup);
  const starts = workload.rangeStarts;
  const totals: ScanTotals = { rows: 0, hash: 0 };
  collectGarbage();
  const elapsed = stopwatch();
  for (let i = 0; i < starts.length; i++) store.scan(starts[i], rangeRowsPerScan, totals);
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
): Promise<void> {
  const workload = buildWorkload(records, seed);
  const openElapsed = stopwatch();
  const store = await openStore(storeName, dir);
  const openSeconds = openElapsed().seconds;
  const countersAtOpen = store.batchCounters();

  /** Reports a finished phase at once, so the parent can show progress while later phases run. */
  const done = (phase: PhaseName, elapsed: Elapsed, amount: number): PhaseTiming => {
    const timing = { ...elapsed, perSecond: amount / elapsed.seconds };
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
    durability: store.durability,
    loadMethod: store.loadMethod,
    facts: store.facts,
    openSeconds,
    closeSeconds,
    phases: { load, put, get, range },
    settleSeconds: { load: settleLoad, put: settlePut },
    count,
    spotCheckOk,
    getChecksum: hex32(gets.checksum),
    getsMissing: gets.missing,
    rangeRows: ranges.totals.rows,
    rangeChecksum: hex32(ranges.totals.hash),
    warmupChecksums: { get: hex32(gets.warmupChecksum), range: hex32(ranges.warmupChecksum) },
    batches:
      countersAfterLoad === null || countersAfterPut === null
        ? null
        : [
            { phase: 'load', workers: difference(countersAfterLoad, countersAtOpen) },
            { phase: 'put', workers: difference(countersAfterPut, countersAfterLoad) },
          ],
  });
}
