import { assert } from './assert.js';
import { kWorkerMetrics, workerMetricsWords } from './control-layout.js';

/**
 * The owner's metrics inside its worker control block: fixed-bucket histograms and 64-bit totals that
 * the owner updates as it works and any thread reads when Prometheus scrapes. Only the owner writes
 * them, with Atomics, so a reader sees each word whole; histograms are read bucket by bucket, and a
 * scrape that races a batch may see that batch in some words and not yet in others, which the next
 * scrape evens out.
 *
 * The 64-bit totals are BigInt64Array indices (word index / 2) over the same buffer: a byte count
 * outgrows 32 bits within hours of writing. Bucket counts are 32-bit words read as unsigned.
 */

/** Upper bounds (inclusive) of the buckets of operations per owner batch; one more bucket above. */
export const batchOperationsBounds: readonly number[] = [
  1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536,
];
/** Upper bounds of the fdatasync duration buckets, in microseconds. */
export const syncDurationBoundsMicros: readonly number[] = [
  50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
];
/** Upper bounds of the checkpoint duration buckets, in microseconds (10 ms to 5 min). */
export const checkpointDurationBoundsMicros: readonly number[] = [
  10_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
  60_000_000, 300_000_000,
];

/** 64-bit totals: operations in all batches, log bytes written, microseconds in fdatasync and checkpoints. */
export const kMetricsBatchOperations64 = kWorkerMetrics / 2;
export const kMetricsWalBytes64 = kMetricsBatchOperations64 + 1;
export const kMetricsSyncMicros64 = kMetricsBatchOperations64 + 2;
export const kMetricsCheckpointMicros64 = kMetricsBatchOperations64 + 3;
const totals64Count = 4;

/** First word of each histogram's bucket counts: bounds.length + 1 words each (the last one unbounded). */
export const kMetricsBatchBuckets = kWorkerMetrics + totals64Count * 2;
export const kMetricsSyncBuckets = kMetricsBatchBuckets + batchOperationsBounds.length + 1;
export const kMetricsCheckpointBuckets = kMetricsSyncBuckets + syncDurationBoundsMicros.length + 1;
const kMetricsEnd = kMetricsCheckpointBuckets + checkpointDurationBoundsMicros.length + 1;

assert(kWorkerMetrics % 2 === 0, 'the owner metrics start on an 8-byte boundary');
assert(
  kMetricsEnd === kWorkerMetrics + workerMetricsWords,
  `the owner metrics take ${kMetricsEnd - kWorkerMetrics} words; control-layout reserves ${workerMetricsWords}`,
);

/** The index of the bucket `value` falls in: the first bound it does not exceed, else the last bucket. */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let index = 0;
  while (index < bounds.length && value > bounds[index]!) index++;
  return index;
}

/** A view of the control block's 64-bit totals. */
export function totals64Of(control: Int32Array): BigInt64Array {
  const buffer = control.buffer as SharedArrayBuffer;
  return new BigInt64Array(buffer, 0, Math.floor(buffer.byteLength / 8));
}

/** One histogram as read: a count per bucket (not cumulative; the last is above every bound) and the sum. */
export interface BucketCounts {
  counts: number[];
  sum: number;
}

export interface OwnerMetricsReading {
  /** Operations per owner batch; `sum` is every operation the owner applied. */
  batchOperations: BucketCounts;
  walBytesWritten: number;
  /** fdatasync durations in microseconds; the bucket counts add up to the number of syncs. */
  syncMicros: BucketCounts;
  checkpointMicros: BucketCounts;
}

/** Reads one worker's metrics; safe from any thread at any time. O(buckets). */
export function readOwnerMetrics(control: Int32Array): OwnerMetricsReading {
  const totals = totals64Of(control);
  const total = (index: number): number => Number(Atomics.load(totals, index));
  const counts = (first: number, bounds: readonly number[]): number[] =>
    Array.from({ length: bounds.length + 1 }, (_, i) => Atomics.load(control, first + i) >>> 0);
  return {
    batchOperations: {
      counts: counts(kMetricsBatchBuckets, batchOperationsBounds),
      sum: total(kMetricsBatchOperations64),
    },
    walBytesWritten: total(kMetricsWalBytes64),
    syncMicros: {
      counts: counts(kMetricsSyncBuckets, syncDurationBoundsMicros),
      sum: total(kMetricsSyncMicros64),
    },
    checkpointMicros: {
      counts: counts(kMetricsCheckpointBuckets, checkpointDurationBoundsMicros),
      sum: total(kMetricsCheckpointMicros64),
    },
  };
}
