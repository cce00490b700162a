/**
 * One bench:replication put run, in a child process of its own: opens the leader (durability
 * 'replicated', on the stream the parent named, whose follower the parent runs) or a plain database
 * (durability 'sync'), warms up, then keeps `concurrency` puts outstanding until `puts` resolved,
 * timing each from its call to its resolution. Prints JSON lines (lines.ts); errors go to stderr.
 */
import os from 'node:os';
import type { Database } from '../../src/index.js';
import { spotCheckIndices } from '../durability/workload.js';
import { stopwatch } from '../engine/child.js';
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { median } from '../lib/stats.js';
import type { PutChildLine, PutMode } from './lines.js';
import { probeEvery, putWorkload, shape, userRows } from './workload.js';

export interface PutChildOptions {
  mode: PutMode;
  dir: string;
  concurrency: number;
  puts: number;
  warmup: number;
  seed: number;
  /** Replicated only. */
  servers: string[];
  stream: string;
}

const emit: (line: PutChildLine) => void = emitLine;

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

function ownerCounters(db: Database): { batches: number; operations: number } {
  let batches = 0;
  let operations = 0;
  for (const worker of db.stats().workerStats) {
    batches += worker.batches;
    operations += worker.operations;
  }
  return { batches, operations };
}

/**
 * Puts keys[from..to) with `concurrency` lanes, each awaiting its put before taking the next index,
 * so exactly `concurrency` are outstanding until the end. Latencies go to `latencyMs[i - from]` when
 * given; `probe` is called after the resolution of every probeEvery-th put.
 */
async function putAll(
  db: Database,
  keys: Buffer[],
  values: Buffer[],
  from: number,
  to: number,
  concurrency: number,
  latencyMs: Float64Array | null,
  probe: (() => void) | null,
): Promise<void> {
  let next = from;
  const lane = async (): Promise<void> => {
    while (next < to) {
      const i = next++;
      const start = performance.now();
      await db.put(keys[i]!, values[i]!);
      if (latencyMs !== null) latencyMs[i - from] = performance.now() - start;
      if (probe !== null && (i - from) % probeEvery === 0) probe();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

export async function runPutChild(options: PutChildOptions): Promise<void> {
  const total = options.warmup + options.puts;
  const { keys, values } = putWorkload(total, options.seed);
  const { open } = await import('../../src/index.js');
  const db =
    options.mode === 'replicated'
      ? await open(options.dir, {
          ...shape(),
          durability: 'replicated',
          replication: { servers: options.servers, stream: options.stream, name: 'bench-leader' },
        })
      : await open(options.dir, { ...shape(), durability: 'sync' });
  const replication = db.replication;

  await putAll(db, keys, values, 0, options.warmup, options.concurrency, null, null);
  const latencyMs = new Float64Array(options.puts);
  const probe =
    replication === null
      ? null
      : () =>
          emit({
            kind: 'probe',
            position: replication.position(),
            atMs: performance.timeOrigin + performance.now(),
          });
  collectGarbage();
  const ownerBefore = ownerCounters(db);
  const replicationBefore = replication?.stats();
  emit({ kind: 'start' });
  const elapsed = stopwatch();
  await putAll(db, keys, values, options.warmup, total, options.concurrency, latencyMs, probe);
  const { seconds, cpuSeconds } = elapsed();
  const ownerAfter = ownerCounters(db);
  const replicationAfter = replication?.stats();

  let spotMismatches = 0;
  for (const index of spotCheckIndices(total)) {
    const value = db.get(keys[index]!);
    if (value === undefined || Buffer.compare(value, values[index]!) !== 0) spotMismatches++;
  }
  const sorted = latencyMs.sort();
  const delta = (name: 'messagesPublished' | 'batchesPublished' | 'publishRetries'): number | null =>
    replicationAfter === undefined || replicationBefore === undefined
      ? null
      : replicationAfter[name] - replicationBefore[name];
  const result: PutChildLine = {
    kind: 'result',
    mode: options.mode,
    concurrency: options.concurrency,
    puts: options.puts,
    seconds,
    cpuSeconds,
    latencyMs: {
      p50: median(Array.from(sorted)),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1]!,
    },
    ownerBatches: ownerAfter.batches - ownerBefore.batches,
    ownerOperations: ownerAfter.operations - ownerBefore.operations,
    messagesPublished: delta('messagesPublished'),
    batchesPublished: delta('batchesPublished'),
    publishRetries: delta('publishRetries'),
    position: replication === null ? null : replication.position(),
    entries: userRows(db),
    spotMismatches,
    loadAverage1m: os.loadavg()[0]!,
  };
  // Printed before close(): the parent samples the servers' CPU on this line, as on `start`.
  emit(result);
  await db.close();
}
