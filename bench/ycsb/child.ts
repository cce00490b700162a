/**
 * One child process: generates the run's operation streams from the seed, opens one store in the
 * directory the parent made, runs the load and then each workload in order, and prints JSON lines on
 * stdout (one per finished stream, then the result). Progress goes to stderr.
 */
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { randomRecords } from '../lib/rng.js';
import { runStream, type StreamOutcome, type ValuePool } from './driver.js';
import { KeyTable, keyBytes } from './keys.js';
import { ioCounters, ioDifference, poolFigures } from './pool-figures.js';
import {
  estimatedDataBytes,
  openStore,
  type PoolCounters,
  reopensAfterLoad,
  type StoreName,
  storeLabels,
  type YcsbStore,
} from './stores.js';
import {
  type Distribution,
  loadStream,
  type OpStream,
  type RunState,
  type WorkloadName,
  workloadSpecs,
  workloadStream,
} from './workloads.js';

export interface RunSettings {
  records: number;
  operations: number;
  valueSize: number;
  concurrency: number;
  workloads: WorkloadName[];
  seed: number;
  /** Overrides the zipfian request distribution of A, B, C, E and F ('latest' stays on D). */
  distribution: Distribution | undefined;
  /** lightning-paged: memoryMaxBytes as a fraction of the loaded data's estimated size. */
  memoryFraction: number;
}

export interface StreamLine {
  kind: 'stream';
  store: StoreName;
  outcome: StreamOutcome;
}

export interface ResultLine {
  kind: 'result';
  store: StoreName;
  /** Set by the parent: which round of the comparison (1-based). */
  round?: number;
  setup: string;
  facts: Record<string, string | number | boolean>;
  openSeconds: number;
  closeSeconds: number;
  /** Stores that reopen after the load (reopensAfterLoad): the close and the timed open between. */
  reopen?: { closeSeconds: number; openSeconds: number; replayedRecords?: number };
  /** Seconds to generate the streams and the key table (untimed setup). */
  setupSeconds: number;
  count: number;
  expectedCount: number;
  streams: StreamOutcome[];
}

export type ChildLine = StreamLine | ResultLine;

/** Typed, so every line the parent reads has the shape it expects. */
const emit: (line: ChildLine) => void = emitLine;

/** Value bytes come from a 64 KiB pool of random bytes, at an offset that depends on key and window. */
const poolBytesLog2 = 16;

/** The load and the workload streams of a run, and the keys they will have created. */
export function buildStreams(settings: RunSettings): { streams: OpStream[]; keyCount: number } {
  const state: RunState = { keyCount: 0, windowSeq: 0 };
  const streams = [loadStream(settings.records, settings.concurrency, state)];
  for (const name of settings.workloads) {
    const spec = workloadSpecs[name];
    const distribution =
      spec.distribution === 'latest' ? 'latest' : (settings.distribution ?? spec.distribution);
    streams.push(
      workloadStream(spec, settings.operations, settings.concurrency, state, settings.seed, distribution),
    );
  }
  return { streams, keyCount: state.keyCount };
}

export function valuePool(valueSize: number, seed: number): ValuePool {
  const mask = (1 << poolBytesLog2) - 1;
  const bytes = randomRecords(1, (mask + 1 + valueSize + 3) & ~3, seed ^ 0x76616c75);
  return { bytes, mask, valueSize };
}

export async function runChild(
  storeName: StoreName,
  dir: string,
  settings: RunSettings,
  workers: number | undefined,
): Promise<void> {
  const label = storeLabels[storeName];
  const setupStart = performance.now();
  const { streams, keyCount } = buildStreams(settings);
  const keys = new KeyTable(keyCount).fill();
  const pool = valuePool(settings.valueSize, settings.seed);
  const setupSeconds = (performance.now() - setupStart) / 1000;

  const storeOptions = {
    dir,
    keys,
    workers,
    dataBytes: estimatedDataBytes(settings.records, keyBytes, settings.valueSize),
    memoryFraction: settings.memoryFraction,
  };
  const openStart = performance.now();
  let store: YcsbStore = await openStore(storeName, storeOptions);
  const openSeconds = (performance.now() - openStart) / 1000;
  let reopen: ResultLine['reopen'];

  const outcomes: StreamOutcome[] = [];
  for (const stream of streams) {
    collectGarbage();
    const poolBefore: PoolCounters | undefined = store.poolCounters?.();
    const ioBefore = ioCounters();
    const outcome = await runStream(store, stream, keys, pool, (done, seconds) => {
      const percent = ((done / stream.count) * 100).toFixed(0);
      process.stderr.write(
        `    ${label} ${stream.name}: ${done.toLocaleString('en-US')} / ${stream.count.toLocaleString('en-US')} ` +
          `operations (${percent}%) after ${seconds.toFixed(1)} s\n`,
      );
    });
    const ioAfter = ioCounters();
    if (ioBefore !== undefined && ioAfter !== undefined) outcome.io = ioDifference(ioBefore, ioAfter);
    const poolAfter = store.poolCounters?.();
    if (poolBefore !== undefined && poolAfter !== undefined) {
      outcome.pool = poolFigures(poolBefore, poolAfter, outcome.operations);
    }
    outcomes.push(outcome);
    emit({ kind: 'stream', store: storeName, outcome });
    if (stream.name === 'load' && reopensAfterLoad(storeName)) {
      const loadedCloseStart = performance.now();
      await store.close();
      const reopenStart = performance.now();
      store = await openStore(storeName, storeOptions);
      reopen = {
        closeSeconds: (reopenStart - loadedCloseStart) / 1000,
        openSeconds: (performance.now() - reopenStart) / 1000,
      };
      const replayed = store.facts.replayedRecords;
      if (typeof replayed === 'number') reopen.replayedRecords = replayed;
      process.stderr.write(
        `    ${label}: closed after the load in ${(reopen.closeSeconds * 1000).toFixed(0)} ms, ` +
          `reopened in ${(reopen.openSeconds * 1000).toFixed(1)} ms` +
          (reopen.replayedRecords === undefined
            ? '\n'
            : `, ${reopen.replayedRecords} log records replayed\n`),
      );
    }
  }

  const count = await store.count();
  const closeStart = performance.now();
  await store.close();
  const closeSeconds = (performance.now() - closeStart) / 1000;
  emit({
    kind: 'result',
    store: storeName,
    setup: store.setup,
    facts: store.facts,
    openSeconds,
    closeSeconds,
    ...(reopen === undefined ? {} : { reopen }),
    setupSeconds,
    count,
    expectedCount: keyCount,
    streams: outcomes,
  });
}
