/**
 * One bench:durability child process: one task on one store in the directory the parent made, then one
 * JSON result line on stdout. Errors go to stderr (and a non-zero exit).
 *
 * Tasks: a put phase (sequential or random keys) on any store; 'recovery-load' (fill lightning-db with
 * durability 'none', close); 'recovery-open' (time open() of that directory, which replays the log).
 */
import { type Elapsed, stopwatch } from '../engine/child.js';
import { foldBytes } from '../engine/workload.js';
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { hex32 } from '../lib/format.js';
import { median } from '../lib/stats.js';
import { type DurabilityStore, openDurabilityStore, type StoreName } from './stores.js';
import {
  buildPutWorkload,
  loadWindow,
  type PutPhase,
  type PutWorkload,
  putWindow,
  spotCheckIndices,
} from './workload.js';

/** How long callers waited for their window of 1,000 puts. */
export interface WindowStats {
  windows: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

/** A sample of keys read back after the writes. */
export interface SpotCheck {
  sampled: number;
  missing: number;
  mismatched: number;
  /** foldBytes over the sampled values in sample order; the same for every store and round of a phase. */
  checksum: string;
}

export interface PutResult extends Elapsed {
  kind: 'put';
  store: StoreName;
  phase: PutPhase;
  /** Set by the parent (1-based); a child reports 0. */
  round: number;
  records: number;
  perSecond: number;
  window: WindowStats;
  /** After the last acknowledgement: how long until the store said everything was durable (lmdb-js). */
  settleSeconds: number | null;
  openSeconds: number;
  closeSeconds: number;
  /** Entries the store reports after the writes (must be N). */
  count: number;
  spot: SpotCheck;
  setup: string;
  durability: string;
  method: string;
  facts: Record<string, string | number | boolean>;
  /** lightning-db: owner batches and operations of the phase, so operations / batches = writes per log write. */
  batches: { batches: number; operations: number } | null;
}

export interface RecoveryLoadResult {
  kind: 'recovery-load';
  round: number;
  records: number;
  /** open() of the empty directory: the fixed cost (workers, memory) without any log to replay. */
  openEmptySeconds: number;
  loadSeconds: number;
  closeSeconds: number;
}

export interface RecoveryOpenResult extends Elapsed {
  kind: 'recovery-open';
  round: number;
  records: number;
  setup: string;
  count: number;
  spot: SpotCheck;
  closeSeconds: number;
}

export type ChildResult = PutResult | RecoveryLoadResult | RecoveryOpenResult;

/** Typed, so every line the parent reads has the shape it expects. */
const emit: (line: ChildResult) => void = emitLine;

export type ChildTask =
  | { kind: 'put'; store: StoreName; phase: PutPhase }
  | { kind: 'recovery-load' | 'recovery-open' };

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

async function spotCheck(store: DurabilityStore, workload: PutWorkload): Promise<SpotCheck> {
  const indices = spotCheckIndices(workload.records);
  const read = await store.readMany(indices.map((index) => workload.keys[index]));
  let missing = 0;
  let mismatched = 0;
  let checksum = 0;
  indices.forEach((index, i) => {
    const value = read[i];
    if (value === undefined) {
      missing++;
      return;
    }
    if (Buffer.compare(value, workload.values[index]) !== 0) mismatched++;
    checksum = foldBytes(checksum, value);
  });
  return { sampled: indices.length, missing, mismatched, checksum: hex32(checksum) };
}

/** Writes the whole workload in windows of `window` puts; returns the elapsed time and each window's wait. */
async function writeAll(
  store: DurabilityStore,
  workload: PutWorkload,
  window: number,
): Promise<{ elapsed: Elapsed; windowMs: Float64Array }> {
  const { keys, values, records } = workload;
  const windowMs = new Float64Array(Math.ceil(records / window));
  collectGarbage();
  const elapsed = stopwatch();
  for (let from = 0, w = 0; from < records; from += window, w++) {
    const start = performance.now();
    await store.writeWindow(keys, values, from, Math.min(records, from + window));
    windowMs[w] = performance.now() - start;
  }
  return { elapsed: elapsed(), windowMs };
}

async function runPut(
  store: StoreName,
  phase: PutPhase,
  dir: string,
  records: number,
  seed: number,
): Promise<void> {
  const workload = buildPutWorkload(phase, records, seed);
  const openElapsed = stopwatch();
  const db = await openDurabilityStore(store, dir);
  const openSeconds = openElapsed().seconds;
  const before = db.batchCounters();

  const { elapsed, windowMs } = await writeAll(db, workload, putWindow);
  const settleSeconds = await db.settle();
  const after = db.batchCounters();
  const count = await db.count();
  const spot = await spotCheck(db, workload);

  const closeElapsed = stopwatch();
  await db.close();
  const closeSeconds = closeElapsed().seconds;

  const sorted = windowMs.slice().sort();
  emit({
    kind: 'put',
    store,
    phase,
    round: 0,
    records,
    ...elapsed,
    perSecond: records / elapsed.seconds,
    window: {
      windows: sorted.length,
      medianMs: median(Array.from(sorted)),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted[sorted.length - 1],
    },
    settleSeconds,
    openSeconds,
    closeSeconds,
    count,
    spot,
    setup: db.setup,
    durability: db.durability,
    method: db.method,
    facts: db.facts,
    batches:
      before === null || after === null
        ? null
        : { batches: after.batches - before.batches, operations: after.operations - before.operations },
  });
}

/** The recovery workload is the random-key one: each partition's log then holds keys in random order. */
async function runRecoveryLoad(dir: string, records: number, seed: number): Promise<void> {
  const workload = buildPutWorkload('random', records, seed);
  const openElapsed = stopwatch();
  const db = await openDurabilityStore('lightning-none', dir);
  const openEmptySeconds = openElapsed().seconds;
  const { elapsed } = await writeAll(db, workload, loadWindow);
  const closeElapsed = stopwatch();
  await db.close();
  emit({
    kind: 'recovery-load',
    round: 0,
    records,
    openEmptySeconds,
    loadSeconds: elapsed.seconds,
    closeSeconds: closeElapsed().seconds,
  });
}

async function runRecoveryOpen(dir: string, records: number, seed: number): Promise<void> {
  // Built before the clock starts: only open() is timed.
  const workload = buildPutWorkload('random', records, seed);
  collectGarbage();
  const openElapsed = stopwatch();
  const db = await openDurabilityStore('lightning-sync', dir);
  const elapsed = openElapsed();
  const count = await db.count();
  const spot = await spotCheck(db, workload);
  const closeElapsed = stopwatch();
  await db.close();
  emit({
    kind: 'recovery-open',
    round: 0,
    records,
    ...elapsed,
    setup: db.setup,
    count,
    spot,
    closeSeconds: closeElapsed().seconds,
  });
}

export async function runChild(task: ChildTask, dir: string, records: number, seed: number): Promise<void> {
  switch (task.kind) {
    case 'put':
      return runPut(task.store, task.phase, dir, records, seed);
    case 'recovery-load':
      return runRecoveryLoad(dir, records, seed);
    case 'recovery-open':
      return runRecoveryOpen(dir, records, seed);
  }
}
