import type { MessagePort } from 'node:worker_threads';
import type { PinningDecision, ThreadPlacement } from '../numa/index.js';
import type { TreeHandle } from '../shared-memory/index.js';
import type { LogPosition } from '../storage/checkpoint/index.js';
import type { PartitionTreeHandle } from '../storage/page-file/paged-tree-handle.js';
import type { SkippedDamage, TornTail } from '../storage/wal/index.js';
import type { FailpointSpec } from './failpoints.js';
import type { CheckpointResult } from './partition-checkpoint.js';
import type { PartitionRecovery } from './partition-recovery.js';

export interface OwnerStarted {
  trees: PartitionTreeHandle[];
  /** Each partition's version store, in the order of `trees`. */
  versionTrees: TreeHandle[];
  recoveries: PartitionRecovery[];
  /** Torn tails at the ends of earlier logs, which the opener cuts once every owner has read them. */
  tornTails: TornTail[];
  /** Damaged log bytes that every checkpoint covers, skipped by recovery. */
  skippedDamage: SkippedDamage[];
  placement: WorkerPlacement;
}

/** Where an owner worker runs: its planned NUMA node and the CPU mask it achieved (see src/numa). */
export interface WorkerPlacement extends ThreadPlacement {
  node: number;
}

/** What the coordinator sends an owner worker at start-up (structured-cloned; SABs are shared). */
export interface OwnerConfig {
  workerIndex: number;
  /** The database directory: each partition's files are under it (storage/layout.ts). */
  path: string;
  durability: 'sync' | 'relaxed' | 'none';
  /** Total partitions of the database (each partition's manifest records it). */
  partitionCount: number;
  /** Checkpoint a partition once its log has grown by this many bytes. */
  checkpointWalBytes: number;
  /** In 'relaxed' mode, how often written log bytes are synced. */
  syncIntervalMs: number;
  /** Partition ids this worker owns. */
  partitions: number[];
  pageSizeBytes: number;
  partitionBytesMax: number;
  /**
   * Frames of each partition's buffer pool: its tree lives over its page file (src/workers/
   * paged-tree.ts). Null: each tree lives whole in an arena, checkpointed to checkpoint files.
   */
  poolFrames: number | null;
  /** This worker's command rings, one per thread slot. */
  rings: SharedArrayBuffer[];
  /** This worker's control block. */
  control: SharedArrayBuffer;
  failpoints: FailpointSpec | undefined;
  /** Testing only: the module that supplies this thread's file layer (see storage/file-layer.ts). */
  fileLayer: string | undefined;
  /** The database's MVCC block (mvcc-state.ts); this worker's commit windows are at `workerIndex`. */
  mvcc: SharedArrayBuffer;
  /** Transactions the coordinators' decision logs record as committed, for in-doubt prepares. */
  committedTransactions: number[];
  /**
   * Opened with `readOnly`: recover into memory and serve reads only; nothing is written to the
   * directory (no log, no checkpoint).
   */
  readOnly: boolean;
  /** This run's epoch: names this worker's new log (storage/wal/wal-startup.ts). */
  walEpoch: number;
  /**
   * Per partition of the database, where its checkpoint covers the logs (manifest coversLog), or
   * null: damaged log bytes that every partition covers are skipped at recovery. Empty: none.
   */
  logCoverage: (LogPosition | null)[];
  /** The planned node and its CPUs, and whether to pin to them before any partition memory is touched. */
  placement: { node: number; cpus: number[]; pinning: PinningDecision };
}

/** The control plane of an owner worker (comlink). The data plane never uses it. */
export interface OwnerApi {
  /**
   * Creates (and first-touches) the worker's partitions, recovers them from their files, opens their
   * logs and starts the loop; returns their tree handles and what recovery found.
   */
  start(config: OwnerConfig): Promise<OwnerStarted>;
  /**
   * After a read-only start (a database opened on a full disk): starts writing as `start` would have,
   * with this run's log in `walEpoch`. Nothing is left started when it fails, so it can be tried again
   * (with a new epoch). Does nothing if the worker writes already.
   */
  becomeWritable(walEpoch: number): Promise<void>;
  /**
   * Every owner has finished reading the earlier runs' logs (each reads all of them at its start):
   * from now on this worker's checkpoints may remove their segments.
   */
  earlierLogsRead(): Promise<void>;
  /** Checkpoints every partition of this worker; resolves with what was written. */
  checkpoint(): Promise<CheckpointResult[]>;
  /**
   * Replication: from the next pass, ship each pass's records to `port` and wait for its answer
   * before writing them (workers/log-shipper.ts); with null, stop shipping. A write whose log record
   * would be larger than `recordBytesMax` is refused alone (statusTooLargeToReplicate).
   */
  replicate(port: MessagePort | null, recordBytesMax?: number): Promise<void>;
  /** Applies everything already appended, stops the loop, and resolves when done. */
  shutdown(): Promise<void>;
}
