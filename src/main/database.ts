import {
  databaseStateOpen,
  kDatabaseState,
  keyToBytes,
  kWorkerBatches,
  kWorkerBatchSizeMax,
  kWorkerOperations,
  kWorkerState,
  LightningError,
  type RangeOptions,
  type TreeReader,
  type TreeStats,
  valueToBytes,
} from '../shared-memory/index.js';
import { type BatchEntry, operationDel, operationPut } from '../shared-memory/ring/operation-codec.js';
import type { CheckpointResult } from '../workers/partition-checkpoint.js';
import type { DatabaseHandle } from './database-handle.js';
import { MergedRange } from './merged-range.js';
import type { Durability } from './open-options.js';
import type { PartitionRouter } from './partition-router.js';
import type { WriteChannel } from './write-channel.js';

/** One operation of `db.batch()`. */
export type BatchOperation =
  | { type: 'put'; key: Uint8Array | string; value: Uint8Array | string }
  | { type: 'del'; key: Uint8Array | string };

export interface WorkerStats {
  worker: number;
  partitions: number[];
  state: 'starting' | 'running' | 'stopped' | 'crashed';
  /** Batches the owner has applied: each is one pass over its rings. */
  batches: number;
  operations: number;
  batchSizeMax: number;
}

export interface DatabaseStats {
  path: string;
  partitions: number;
  workers: number;
  threadsMax: number;
  durability: Durability;
  entries: number;
  /** Writes of this thread not yet acknowledged. */
  pendingWrites: number;
  partitionStats: TreeStats[];
  workerStats: WorkerStats[];
  /** What open() recovered, on the thread that opened the database; null on attached threads. */
  recovery: RecoveryStats | null;
}

export interface RecoveryStats {
  /** Entries loaded from checkpoints. */
  checkpointEntries: number;
  /** Log records replayed after the checkpoints. */
  replayedRecords: number;
  /** Torn log tails cut: writes a crash interrupted, none of them acknowledged. */
  tornTailsCut: number;
  tornTailBytes: number;
}

/** Everything a Database is made of; built by `open()` or `attach()`. */
export interface DatabaseParts {
  handle: DatabaseHandle;
  router: PartitionRouter;
  readers: TreeReader[];
  /** This thread's write channel to each worker. */
  channels: WriteChannel[];
  workerControls: Int32Array[];
  databaseControl: Int32Array;
  /** Stops what this thread started: the workers (opener) or its thread slot (attached). */
  release: () => Promise<void>;
  /** What open() recovered (the opener), or null (attached). */
  recovery: RecoveryStats | null;
  /** Checkpoints every partition (the opener), or null where this thread cannot (attached). */
  checkpoint: (() => Promise<CheckpointResult[]>) | null;
}

const workerStateNames = ['starting', 'running', 'stopped', 'crashed'] as const;

/**
 * A lightning-db database as seen from one thread. Reads run synchronously on the calling thread,
 * straight from the partitions' shared memory; writes go through this thread's command rings to the
 * partitions' owner workers and resolve once applied, so a read on any thread after that sees them.
 */
export class Database {
  readonly #parts: DatabaseParts;
  readonly #partitionWorkers: Int32Array;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** @internal Built by open() and attach(). */
  constructor(parts: DatabaseParts) {
    this.#parts = parts;
    this.#partitionWorkers = Int32Array.from(parts.handle.partitionWorkers);
  }

  /** Stores `value` under `key`. Resolves once applied; O(log n) in the owner. */
  put(key: Uint8Array | string, value: Uint8Array | string): Promise<void> {
    let keyBytes: Uint8Array;
    let valueBytes: Uint8Array;
    try {
      this.#assertOpen();
      keyBytes = keyToBytes(key);
      valueBytes = valueToBytes(value);
    } catch (error) {
      return Promise.reject(error);
    }
    const partition = this.#parts.router.partitionOf(keyBytes);
    return this.#channelOf(partition).put(partition, keyBytes, valueBytes);
  }

  /** Removes `key` (a missing key is not an error). Resolves once applied. */
  del(key: Uint8Array | string): Promise<void> {
    let keyBytes: Uint8Array;
    try {
      this.#assertOpen();
      keyBytes = keyToBytes(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const partition = this.#parts.router.partitionOf(keyBytes);
    return this.#channelOf(partition).del(partition, keyBytes);
  }

  /**
   * Applies puts and deletes atomically: all or none, and each page they change is seen by readers
   * before or after the whole batch. In this release all keys must share one partition; a batch that
   * spans partitions is rejected with ERR_NOT_SUPPORTED and nothing is applied.
   */
  batch(operations: readonly BatchOperation[]): Promise<void> {
    let entries: BatchEntry[];
    let partition = -1;
    try {
      this.#assertOpen();
      if (!Array.isArray(operations))
        throw new LightningError('ERR_BAD_ARGUMENT', 'batch takes an array of operations');
      entries = operations.map((operation, index) => toBatchEntry(operation, index));
      for (const entry of entries) {
        const owner = this.#parts.router.partitionOf(entry.key);
        if (partition === -1) partition = owner;
        else if (owner !== partition) {
          throw new LightningError(
            'ERR_NOT_SUPPORTED',
            'a batch whose keys fall in more than one partition is not supported yet; split it per partition',
          );
        }
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (entries.length === 0) return Promise.resolve();
    return this.#channelOf(partition).batch(partition, entries);
  }

  /** The value under `key` (a copy), or undefined. Synchronous; O(log n). */
  get(key: Uint8Array | string): Buffer | undefined {
    this.#assertOpen();
    const keyBytes = keyToBytes(key);
    return this.#parts.readers[this.#parts.router.partitionOf(keyBytes)]!.get(keyBytes);
  }

  /** The value under `key` decoded as UTF-8, or undefined. */
  getString(key: Uint8Array | string): string | undefined {
    return this.get(key)?.toString('utf8');
  }

  /**
   * Entries within the bounds, sorted by key bytes, merged from all partitions. Synchronous. Each
   * partition is read leaf by leaf; a scan concurrent with writes is not a snapshot (snapshots come
   * with MVCC).
   */
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]> {
    this.#assertOpen();
    const readers = this.#parts.readers;
    const sources = readers.map((reader) => reader.range(options));
    return new MergedRange(sources, options?.reverse === true, options?.limit ?? Infinity);
  }

  stats(): DatabaseStats {
    this.#assertOpen();
    const { handle, readers, workerControls, channels } = this.#parts;
    const partitionStats = readers.map((reader) => reader.stats());
    const workerStats = workerControls.map((control, worker) => ({
      worker,
      partitions: handle.partitionWorkers.flatMap((owner, partition) =>
        owner === worker ? [partition] : [],
      ),
      state: workerStateNames[Atomics.load(control, kWorkerState)] ?? 'crashed',
      batches: Atomics.load(control, kWorkerBatches),
      operations: Atomics.load(control, kWorkerOperations),
      batchSizeMax: Atomics.load(control, kWorkerBatchSizeMax),
    }));
    return {
      path: handle.path,
      partitions: handle.partitions,
      workers: workerControls.length,
      threadsMax: handle.threadsMax,
      durability: handle.durability,
      entries: partitionStats.reduce((sum, stats) => sum + stats.entries, 0),
      pendingWrites: channels.reduce((sum, channel) => sum + channel.pending, 0),
      partitionStats,
      workerStats,
      recovery: this.#parts.recovery,
    };
  }

  /**
   * Writes a checkpoint of every partition (its sorted contents, lz4-compressed and checksummed) and
   * drops the write-ahead log segments it covers, so the next open replays little. Writes continue
   * meanwhile, pausing for one short step of the walk at a time. Only the thread that opened the
   * database can ask for one (ERR_NOT_SUPPORTED elsewhere); partitions also checkpoint on their own
   * when their log grows by `checkpointWalBytes`.
   */
  async checkpoint(): Promise<CheckpointResult[]> {
    this.#assertOpen();
    const checkpoint = this.#parts.checkpoint;
    if (checkpoint === null) {
      throw new LightningError(
        'ERR_NOT_SUPPORTED',
        'checkpoint() is available on the thread that opened the database',
      );
    }
    return checkpoint();
  }

  /** A structured-cloneable handle: `await attach(handle)` in another worker thread. */
  share(): DatabaseHandle {
    this.#assertOpen();
    return this.#parts.handle;
  }

  /**
   * Waits for this thread's writes in flight, then releases what this thread holds: the opener stops
   * the owner workers (after they apply everything already sent); an attached thread frees its slot.
   * Afterwards every method fails with ERR_CLOSED. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closed = true;
      this.#closing = this.#close();
    }
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all(this.#parts.channels.map((channel) => channel.drained()));
    await this.#parts.release();
  }

  #assertOpen(): void {
    if (this.#closed || Atomics.load(this.#parts.databaseControl, kDatabaseState) !== databaseStateOpen) {
      throw new LightningError('ERR_CLOSED', 'the database is closed');
    }
  }

  #channelOf(partition: number): WriteChannel {
    return this.#parts.channels[this.#partitionWorkers[partition]!]!;
  }
}

function toBatchEntry(operation: unknown, index: number): BatchEntry {
  if (typeof operation !== 'object' || operation === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index} must be an object`);
  }
  const o = operation as { type?: unknown; key?: unknown; value?: unknown };
  if (o.type === 'put') {
    if (o.value === undefined)
      throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: put needs a value`);
    return { kind: operationPut, key: keyToBytes(o.key), value: valueToBytes(o.value) };
  }
  if (o.type === 'del') return { kind: operationDel, key: keyToBytes(o.key), value: null };
  throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: type must be 'put' or 'del'`);
}
