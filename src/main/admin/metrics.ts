import { Counter, Gauge, Registry } from 'prom-client';
import { isLightningError } from '../../shared-memory/index.js';
import {
  batchOperationsBounds,
  checkpointDurationBoundsMicros,
  type OwnerMetricsReading,
  readOwnerMetrics,
  syncDurationBoundsMicros,
} from '../../shared-memory/owner-metrics-layout.js';
import { countedOperations } from '../../shared-memory/thread-counters-layout.js';
import type { Database, DatabaseStats } from '../database.js';
import { sumThreadCounters } from '../thread-counters.js';
import { latencyBoundsSeconds, type OperationRecorder, partitionSeveral } from './operation-observer.js';
import { PoolMetrics } from './pool-metrics.js';
import { ReplicationMetrics } from './replication-metrics.js';
import { type HistogramSample, SampledHistogram } from './sampled-histogram.js';
import { readTransactionStats, TransactionMetrics } from './transaction-metrics.js';

/** The database a scrape reads, and the recorder its calls feed. */
export interface MetricsSource {
  db: Database;
  recorder: OperationRecorder;
  /** Each owner worker's control block, where the owners count batches, log writes and syncs. */
  workerControls: Int32Array[];
  /** Every thread slot's operation counts (thread-counters-layout.ts). */
  counters: { rows: Float64Array; threadsMax: number; partitions: number };
}

const workerStates = ['starting', 'running', 'stopped', 'crashed'] as const;
const microsPerSecond = 1_000_000;

/**
 * Every `lightning_*` metric, in a prom-client Registry of its own (never the global one, so an
 * application's metrics and ours do not collide). Nothing is counted here: a scrape reads what the
 * owners counted in shared memory, what `stats()` reports, and what the caller-side recorder holds,
 * and copies it into the metrics just before the registry renders them.
 */
export class AdminMetrics {
  readonly registry = new Registry();
  #owners: OwnerMetricsReading[] = [];
  #operations: ReturnType<OperationRecorder['series']> = [];
  #transactions: TransactionMetrics | null = null;
  #pools: PoolMetrics | null = null;
  #replication: ReplicationMetrics | null = null;
  /** Collections so far, this one included: how many scrapes did the work rather than reuse a text. */
  #collections = 0;

  readonly #ready = this.#gauge('lightning_ready', '1 once the database is open and recovered, else 0');
  readonly #collectionsTotal = this.#counter(
    'lightning_metrics_collections_total',
    'Times this admin server collected the metrics; scrapes within metricsCacheMs of one reuse its text',
  );
  readonly #operationsTotal = this.#counter(
    'lightning_operations_total',
    'Operations issued by every thread of the process (attached workers, and threads that exited, included), by operation and partition: writes when queued, gets when returned',
    ['operation', 'partition'],
  );
  readonly #operationErrors = this.#counter(
    'lightning_operation_errors_total',
    'Writes on the serving thread (only) whose promise rejected while this admin server served, by operation',
    ['operation'],
  );
  readonly #walBytes = this.#counter(
    'lightning_wal_bytes_written_total',
    'Bytes written to write-ahead log segments, by owner worker',
    ['worker'],
  );
  readonly #entries = this.#gauge('lightning_entries', 'Entries (keys) in each partition', ['partition']);
  readonly #pagesUsed = this.#gauge(
    'lightning_arena_pages_used',
    'Pages of the partition arena in use (tree, overflow, header)',
    ['partition'],
  );
  readonly #pagesFree = this.#gauge(
    'lightning_arena_pages_free',
    'Pages of the partition arena on its free list, ready for reuse',
    ['partition'],
  );
  readonly #pagesMax = this.#gauge(
    'lightning_arena_pages_max',
    'Most pages the partition may grow to (partitionBytesMax / page size)',
    ['partition'],
  );
  readonly #workerUp = this.#gauge('lightning_worker_up', '1 while the owner worker runs, else 0', [
    'worker',
  ]);
  readonly #workerState = this.#gauge(
    'lightning_worker_state',
    'Owner worker state: 1 for the state it is in, 0 for the others',
    ['worker', 'state'],
  );
  readonly #pendingWrites = this.#gauge(
    'lightning_pending_writes',
    'Writes of the serving thread sent and not yet acknowledged',
  );
  readonly #recoveredEntries = this.#gauge(
    'lightning_recovery_checkpoint_entries',
    'Entries loaded from checkpoints when the database opened',
  );
  readonly #recoveredRecords = this.#gauge(
    'lightning_recovery_replayed_records',
    'Log records replayed when the database opened',
  );
  readonly #tornTails = this.#gauge(
    'lightning_recovery_torn_tails',
    'Torn log tails cut when the database opened (unacknowledged writes of a crash)',
  );

  constructor() {
    const registry = this.registry;
    new SampledHistogram({
      name: 'lightning_operation_duration_seconds',
      help: 'Latency of operations on the serving thread only (other threads are counted in lightning_operations_total, not timed), from the call until the promise resolved (get: until it returned)',
      labelNames: ['operation', 'partition'],
      bounds: latencyBoundsSeconds,
      registry,
      read: () =>
        this.#operations.map((series) => ({
          labels: { operation: series.operation, partition: partitionLabel(series.partition) },
          counts: series.counts,
          sum: series.sumSeconds,
        })),
    });
    new SampledHistogram({
      name: 'lightning_owner_batch_operations',
      help: 'Operations per owner batch: one drain of the rings, one log write and (sync mode) one fdatasync per partition',
      labelNames: ['worker'],
      bounds: batchOperationsBounds,
      registry,
      read: () => this.#perWorker((owner) => owner.batchOperations, 1),
    });
    new SampledHistogram({
      name: 'lightning_wal_fsync_duration_seconds',
      help: 'Duration of each fdatasync of a write-ahead log segment, by owner worker',
      labelNames: ['worker'],
      bounds: syncDurationBoundsMicros.map((micros) => micros / microsPerSecond),
      registry,
      read: () => this.#perWorker((owner) => owner.syncMicros, microsPerSecond),
    });
    new SampledHistogram({
      name: 'lightning_checkpoint_duration_seconds',
      help: 'Duration of each partition checkpoint, by owner worker (its _count is the number of checkpoints)',
      labelNames: ['worker'],
      bounds: checkpointDurationBoundsMicros.map((micros) => micros / microsPerSecond),
      registry,
      read: () => this.#perWorker((owner) => owner.checkpointMicros, microsPerSecond),
    });
  }

  /**
   * The registry in the Prometheus text format, as `registry.metrics()` renders it, with the sampled
   * histograms written directly (see SampledHistogram.render). Call after `collect`.
   */
  async text(): Promise<string> {
    const parts: string[] = [];
    for (const metric of this.registry.getMetricsAsArray()) {
      parts.push(
        metric instanceof SampledHistogram
          ? metric.render()
          : await this.registry.getSingleMetricAsString(metric.name),
      );
    }
    return `${parts.join('\n\n')}\n`;
  }

  /** Reads `source` (null while the database opens) into the metrics; then render them with `text`. */
  collect(source: MetricsSource | null): void {
    for (const metric of this.registry.getMetricsAsArray()) {
      if (metric instanceof Gauge || metric instanceof Counter) metric.reset();
    }
    this.#owners = [];
    this.#operations = [];
    this.#collectionsTotal.inc(++this.#collections);
    const stats = source === null ? null : statsOf(source.db);
    this.#ready.set(stats === null ? 0 : 1);
    if (source === null || stats === null) return;
    this.#owners = source.workerControls.map(readOwnerMetrics);
    this.#operations = source.recorder.series();
    const { rows, threadsMax, partitions } = source.counters;
    const counts = sumThreadCounters(rows, threadsMax, partitions);
    for (const operation of countedOperations) {
      counts.operations[operation].forEach((count, cell) => {
        if (count === 0) return;
        const partition = partitionLabel(cell === partitions ? partitionSeveral : cell);
        this.#operationsTotal.inc({ operation, partition }, count);
      });
    }
    for (const { operation, count } of source.recorder.errors())
      this.#operationErrors.inc({ operation }, count);
    for (const [worker, owner] of this.#owners.entries())
      this.#walBytes.inc({ worker: String(worker) }, owner.walBytesWritten);
    stats.partitionStats.forEach((partition, index) => {
      const labels = { partition: String(index) };
      this.#entries.set(labels, partition.entries);
      this.#pagesUsed.set(labels, partition.pagesInUse);
      this.#pagesFree.set(labels, partition.pagesFree);
      this.#pagesMax.set(labels, partition.pagesMax);
    });
    for (const worker of stats.workerStats) {
      const id = String(worker.worker);
      this.#workerUp.set({ worker: id }, worker.state === 'running' ? 1 : 0);
      for (const state of workerStates)
        this.#workerState.set({ worker: id, state }, worker.state === state ? 1 : 0);
    }
    this.#pendingWrites.set(stats.pendingWrites);
    if (stats.recovery !== null) {
      this.#recoveredEntries.set(stats.recovery.checkpointEntries);
      this.#recoveredRecords.set(stats.recovery.replayedRecords);
      this.#tornTails.set(stats.recovery.tornTailsCut);
    }
    if (stats.bufferPools !== null) {
      this.#pools ??= new PoolMetrics(this.registry);
      this.#pools.set(stats.bufferPools);
    }
    const transactions = readTransactionStats(stats);
    if (transactions !== null) {
      this.#transactions ??= new TransactionMetrics(this.registry);
      this.#transactions.set(transactions);
    }
    if (stats.replication !== null) {
      this.#replication ??= new ReplicationMetrics(this.registry);
      this.#replication.set(stats.replication);
    }
  }

  #perWorker(
    pick: (owner: OwnerMetricsReading) => { counts: number[]; sum: number },
    sumDivisor: number,
  ): HistogramSample<'worker'>[] {
    return this.#owners.map((owner, worker) => {
      const { counts, sum } = pick(owner);
      return { labels: { worker: String(worker) }, counts, sum: sum / sumDivisor };
    });
  }

  #gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}

/** The database's stats, or null once it closed (a scrape may race close()). */
function statsOf(db: Database): DatabaseStats | null {
  try {
    return db.stats();
  } catch (error) {
    if (isLightningError(error, 'ERR_CLOSED')) return null;
    throw error;
  }
}

function partitionLabel(partition: number): string {
  return partition === partitionSeveral ? 'multi' : String(partition);
}
