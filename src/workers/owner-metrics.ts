import {
  batchOperationsBounds,
  bucketIndex,
  checkpointDurationBoundsMicros,
  kMetricsBatchBuckets,
  kMetricsBatchOperations64,
  kMetricsCheckpointBuckets,
  kMetricsCheckpointMicros64,
  kMetricsSyncBuckets,
  kMetricsSyncMicros64,
  kMetricsWalBytes64,
  syncDurationBoundsMicros,
  totals64Of,
} from '../shared-memory/owner-metrics-layout.js';
import type { PartitionLog, WalWriter } from '../storage/wal/index.js';

/**
 * The owner's side of the metrics the admin server exports: it records into its worker control block
 * (owner-metrics-layout.ts), in shared memory, so a scrape on any thread reads them without a message
 * to this worker. Each record is a few Atomics on words no other thread writes, done once per batch,
 * per log write, per fdatasync or per checkpoint, never per operation.
 */

/** Counts one batch of `operations` operations in the batch-size histogram. */
export function recordBatch(control: Int32Array, operations: number): void {
  Atomics.add(control, kMetricsBatchBuckets + bucketIndex(batchOperationsBounds, operations), 1);
  Atomics.add(totals64Of(control), kMetricsBatchOperations64, BigInt(operations));
}

/**
 * Makes the owner log behind these partitions report its writes and syncs into the control block
 * (once, however many partitions share it). Bytes the log wrote before (its first segment's header,
 * written when it opened) are counted now.
 */
export function observeLogs(control: Int32Array, partitions: Iterable<{ log: PartitionLog }>): void {
  const totals = totals64Of(control);
  const writers = new Set<WalWriter>();
  for (const { log: partitionLog } of partitions) writers.add(partitionLog.writer);
  for (const log of writers) {
    Atomics.add(totals, kMetricsWalBytes64, BigInt(log.stats.bytesWritten));
    log.observer = {
      written(bytes: number): void {
        Atomics.add(totals, kMetricsWalBytes64, BigInt(bytes));
      },
      synced(durationMs: number): void {
        const micros = Math.round(durationMs * 1000);
        Atomics.add(control, kMetricsSyncBuckets + bucketIndex(syncDurationBoundsMicros, micros), 1);
        Atomics.add(totals, kMetricsSyncMicros64, BigInt(micros));
      },
    };
  }
}

/** A callback that counts a finished checkpoint and its duration. */
export function checkpointRecorder(control: Int32Array): (checkpoint: { durationMs: number }) => void {
  const totals = totals64Of(control);
  return ({ durationMs }) => {
    const micros = Math.round(durationMs * 1000);
    Atomics.add(control, kMetricsCheckpointBuckets + bucketIndex(checkpointDurationBoundsMicros, micros), 1);
    Atomics.add(totals, kMetricsCheckpointMicros64, BigInt(micros));
  };
}
