/**
 * One child process: generates the run's operation streams from the seed, opens one store in the
 * directory the parent made, runs the load and then each workload in order, and prints JSON lines on
 * stdout (one per finished stream, then the result). Progress goes to stderr.
 */
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { randomRecords } from '../lib/rng.js';
import { runStream, type StreamOutcome, type ValuePool } from './driver.js';
import { KeyTable } from './keys.js';
import { openStore, type StoreName, storeLabels } from './stores.js';
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

  const openStart = performance.now();
  const store = await openStore(storeName, { dir, keys, workers });
  const openSeconds = (performance.now() - openStart) / 1000;

  const outcomes: StreamOutcome[] = [];
  for (const stream of streams) {
    collectGarbage();
    const outcome = await runStream(store, stream, keys, pool, (done, seconds) => {
      const percent = ((done / stream.count) * 100).toFixed(0);
      process.stderr.write(
        `    ${label} ${stream.name}: ${done.toLocaleString('en-US')} / ${stream.count.toLocaleString('en-US')} ` +
          `operations (${percent}%) after ${seconds.toFixed(1)} s\n`,
      );
    });
    outcomes.push(outcome);
    emit({ kind: 'stream', store: storeName, outcome });
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
    setupSeconds,
    count,
    expectedCount: keyCount,
    streams: outcomes,
  });
}
