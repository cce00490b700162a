import type { ReplicationStats } from '../replication/replication-types.js';
import {
  kWorkerBatches,
  kWorkerBatchSizeMax,
  kWorkerOperations,
  kWorkerState,
  type TreeStats,
} from '../shared-memory/index.js';
import type { BufferPool, BufferPoolStats } from '../shared-memory/pool/buffer-pool.js';
import type { WorkerPlacement } from '../workers/owner-protocol.js';
import type { DatabaseParts } from './database.js';
import type { Durability } from './open-options.js';
import { writesRefusedUntilSpace } from './open-storage.js';
import { sumThreadCounters } from './thread-counters.js';
import type { TransactionStats } from './transaction-coordinator.js';

export interface WorkerStats {
  worker: number;
  partitions: number[];
  state: 'starting' | 'running' | 'stopped' | 'crashed';
  /** Batches the owner has applied: each is one pass over its rings. */
  batches: number;
  operations: number;
  batchSizeMax: number;
  /** The worker's NUMA node and CPU mask, and whether it is pinned there (or why not). */
  placement: WorkerPlacement;
}

export interface DatabaseStats {
  path: string;
  partitions: number;
  workers: number;
  threadsMax: number;
  durability: Durability;
  /**
   * Serving reads only: opened with `{ readOnly: true }` (writes, commits and checkpoints reject with
   * ERR_READ_ONLY), or opened on a full disk and not yet writing again (they reject with ERR_DISK_FULL).
   */
  readOnly: boolean;
  entries: number;
  /** Writes of this thread not yet acknowledged. */
  pendingWrites: number;
  partitionStats: TreeStats[];
  /** Each partition's version store (MVCC): the old versions kept for open snapshots. */
  versionStoreStats: TreeStats[];
  /**
   * Each partition's buffer pool, for a database over page files (memoryMaxBytes); null when every
   * partition lives whole in memory.
   */
  bufferPools: PartitionPoolStats[] | null;
  workerStats: WorkerStats[];
  /** What open() recovered, on the thread that opened the database; null on attached threads. */
  recovery: RecoveryStats | null;
  /**
   * Transactions run by every thread of the process that used this database: the opener and every
   * attached thread, those that have closed or exited included.
   */
  transactions: TransactionStats;
  /** Operations issued by every thread, as `transactions` counts them. */
  operations: OperationStats;
  mvcc: MvccStats;
  /** A replicated database's role, position and lag (docs/replication.md); null otherwise. */
  replication: ReplicationStats | null;
}

/**
 * Operations every thread issued: puts, dels and batches accepted (queued for their owners; a write
 * the owner then failed still counts, see lightning_operation_errors_total), and gets (getUnsafe and
 * getString included) that returned.
 */
/** One partition's buffer pool (docs/buffer-pool.md). */
export interface PartitionPoolStats extends BufferPoolStats {
  partition: number;
  /**
   * Page reads served from memory on the calling thread since it attached (hits are counted per
   * thread, without a shared write); `misses` counts every thread's reads from the page file.
   */
  hitsThisThread: number;
}

export interface OperationStats {
  put: number;
  del: number;
  batch: number;
  get: number;
}

export interface MvccStats {
  /** The commit-timestamp oracle now. */
  timestamp: bigint;
  /**
   * Registered snapshot slots (open snapshots, transactions and scans), all threads. Unfinished scans
   * that had to share one slot when a thread ran out count once.
   */
  openSnapshots: number;
  /** Snapshots and db.range() scans of this thread garbage-collected unreleased (and reclaimed then). */
  leakedSnapshots: number;
  /** Old versions kept in the version stores for snapshots and prepared transactions, all partitions. */
  versionsRetained: number;
}

export interface RecoveryStats {
  /** Entries loaded from checkpoints. */
  checkpointEntries: number;
  /** Log records replayed after the checkpoints. */
  replayedRecords: number;
  /** Torn log tails cut: writes a crash interrupted, none of them acknowledged. */
  tornTailsCut: number;
  /**
   * Damaged ranges of the logs that recovery skipped because every partition's checkpoint holds
   * their records (`lightning-cli verify` lists them).
   */
  damagedLogRangesSkipped: number;
  tornTailBytes: number;
}

const workerStateNames = ['starting', 'running', 'stopped', 'crashed'] as const;

/**
 * What `db.stats()` returns, read synchronously: tree statistics from the partitions' shared memory,
 * batch counters from the workers' control blocks, MVCC state from the MVCC block, and every
 * thread's operation and transaction counts from the thread counters.
 */
export function collectStats(
  parts: DatabaseParts,
  leakedSnapshots: number,
  replication: ReplicationStats | null,
): DatabaseStats {
  const { handle, versionedReaders, workerControls, mvcc } = parts;
  const counts = sumThreadCounters(parts.counters, handle.threadsMax, handle.partitions);
  const total = (cells: number[]) => cells.reduce((sum, count) => sum + count, 0);
  const partitionStats = versionedReaders.map((reader) => reader.main.stats());
  const workerStats = workerControls.map((control, worker) => ({
    worker,
    partitions: handle.partitionWorkers.flatMap((owner, partition) => (owner === worker ? [partition] : [])),
    state: workerStateNames[Atomics.load(control, kWorkerState)] ?? 'crashed',
    batches: Atomics.load(control, kWorkerBatches),
    operations: Atomics.load(control, kWorkerOperations),
    batchSizeMax: Atomics.load(control, kWorkerBatchSizeMax),
    placement: { ...handle.workerPlacements[worker]! },
  }));
  return {
    path: handle.path,
    partitions: handle.partitions,
    workers: workerControls.length,
    threadsMax: handle.threadsMax,
    durability: handle.durability,
    readOnly: handle.readOnly === true || writesRefusedUntilSpace(parts.databaseControl),
    entries: partitionStats.reduce((sum, stats) => sum + stats.entries, 0),
    pendingWrites: [...parts.channels, ...parts.transactionChannels].reduce(
      (sum, channel) => sum + channel.pending,
      0,
    ),
    partitionStats,
    versionStoreStats: versionedReaders.map((reader) => reader.versions.stats()),
    bufferPools: poolStats(parts.partitionPools),
    workerStats,
    recovery: parts.recovery,
    transactions: counts.transactions,
    operations: {
      put: total(counts.operations.put),
      del: total(counts.operations.del),
      batch: total(counts.operations.batch),
      get: total(counts.operations.get),
    },
    mvcc: {
      timestamp: BigInt(mvcc.now()),
      openSnapshots: mvcc.openSnapshots(),
      leakedSnapshots,
      versionsRetained: versionedReaders.reduce((sum, reader) => sum + reader.versions.count, 0),
    },
    replication,
  };
}

function poolStats(pools: readonly (BufferPool | null)[]): PartitionPoolStats[] | null {
  if (pools.every((pool) => pool === null)) return null;
  return pools.flatMap((pool, partition) =>
    pool === null ? [] : [{ partition, ...pool.stats(), hitsThisThread: pool.hits }],
  );
}
