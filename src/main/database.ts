import type { ReplicationRole } from '../replication/replication-role.js';
import type { Replication } from '../replication/replication-types.js';
import {
  databaseStateOpen,
  kDatabaseState,
  kDatabaseStoreDrops,
  LightningError,
} from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { readLatest, type VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import type { BufferPool } from '../shared-memory/pool/buffer-pool.js';
import type { BatchEntry } from '../shared-memory/ring/operation-codec.js';
import type { RangeBounds } from '../shared-memory/tree/range-options.js';
import { threadValueScratch, ValueScratch } from '../shared-memory/tree/value-scratch.js';
import type { DecisionLog } from '../storage/decision-log.js';
import type { Failpoints } from '../workers/failpoints.js';
import type { CheckpointResult } from '../workers/partition-checkpoint.js';
import type { AdminAttachment, AdminServer, AdminServerOptions } from './admin/admin-server.js';
import type { OperationObserver } from './admin/operation-observer.js';
import type { BatchOperation, StoreOperation } from './api/batch-entry.js';
import { clearKeys } from './api/clear-range.js';
import { conditionalWrite, type WriteOptions } from './api/conditional-write.js';
import type { Bytes, EncodingOptions, Out } from './api/encoding-types.js';
import {
  decode,
  type Encodings,
  encodeBounds,
  encodeKey,
  encodeValue,
  noEncodings,
} from './api/encodings.js';
import { type KeyRange, type ScanIterator, type ScanOptions, scanShape } from './api/scan-options.js';
import { shareWithEncodings } from './api/shared-encodings.js';
import { type BackupOptions, type BackupResult, backupDatabase } from './backup.js';
import type { DatabaseHandle } from './database-handle.js';
import { collectStats, type DatabaseStats, type RecoveryStats } from './database-stats.js';
import { type ScanMode, scanEntries, scanKeys, scanValues } from './merged-range.js';
import type { PartitionRouter } from './partition-router.js';
import { Snapshot, SnapshotRange, type SnapshotSource } from './snapshot.js';
import { SnapshotRegistry } from './snapshot-registry.js';
import { StoreBatch, toBatchEntry } from './stores/batch-entry.js';
import type { Store, StoreOptions } from './stores/store.js';
import { dropStore, listStores, openStore } from './stores/store-catalog.js';
import { assertOutsideStoreRegion, defaultRangeBounds, storeRegionFirstByte } from './stores/store-keys.js';
import { ThreadCounterRow } from './thread-counters.js';
import type { Transaction } from './transaction.js';
import { TransactionCoordinator, type TransactionOptions } from './transaction-coordinator.js';
import type { WriteChannel } from './write-channel.js';

export type { BatchOperation, StoreOperation } from './api/batch-entry.js';
export type {
  DatabaseStats,
  MvccStats,
  OperationStats,
  RecoveryStats,
  WorkerStats,
} from './database-stats.js';

/** Where getString reads a value before decoding it (one per thread, as module state is). */
const stringScratch = new ValueScratch();

/** Everything a Database is made of; built by `open()` or `attach()`. */
export interface DatabaseParts {
  handle: DatabaseHandle;
  router: PartitionRouter;
  /** Each partition's reader: its tree and its version store (MVCC). */
  versionedReaders: VersionedReader[];
  /** Each partition's buffer pool as this thread attached it; null for a partition in an arena. */
  partitionPools: (BufferPool | null)[];
  mvcc: MvccState;
  /** This thread's slot: its snapshot slots, commit window and decision log. */
  slot: number;
  decisionLog: DecisionLog;
  /** Coordinator-side fail-points (tests only). */
  failpoints: Failpoints;
  /** This thread's channel of transaction parts to each worker. */
  transactionChannels: WriteChannel[];
  /** This thread's write channel to each worker. */
  channels: WriteChannel[];
  workerControls: Int32Array[];
  databaseControl: Int32Array;
  /** Every thread slot's row of counts (thread-counters-layout.ts); this thread writes row `slot` only. */
  counters: Float64Array;
  /** Stops what this thread started: the workers (opener) or its thread slot (attached). */
  release: () => Promise<void>;
  /** What open() recovered (the opener), or null (attached). */
  recovery: RecoveryStats | null;
  /** Checkpoints every partition (the opener), or null where this thread cannot (attached). */
  checkpoint: (() => Promise<CheckpointResult[]>) | null;
}

/**
 * A lightning-db database as seen from one thread. Reads run synchronously on the calling thread,
 * straight from the partitions' shared memory; writes go through this thread's command rings to the
 * partitions' owner workers and resolve once applied, so a read on any thread after that sees them.
 */
export class Database<K = Bytes, V = Bytes> {
  readonly #parts: DatabaseParts;
  readonly #partitionWorkers: Int32Array;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** The admin server serving this database, or null; its observer times this thread's calls. */
  #admin: AdminAttachment | null = null;
  #observer: OperationObserver | null = null;
  readonly #snapshots: SnapshotSource;
  readonly #coordinator: TransactionCoordinator;
  /** This thread's row of the shared counts: one increment per operation. */
  readonly #counts: ThreadCounterRow;
  /** How keys and values are stored (see api/encodings.ts); none by default. */
  #encodings: Encodings = noEncodings;
  /** The replication of a database opened with the `replication` option (opener thread only). */
  #replication: ReplicationRole | null = null;

  /** @internal Built by open() and attach(). */
  constructor(parts: DatabaseParts) {
    this.#parts = parts;
    this.#partitionWorkers = Int32Array.from(parts.handle.partitionWorkers);
    this.#counts = new ThreadCounterRow(parts.counters, parts.slot, parts.handle.partitions);
    this.#snapshots = {
      readers: parts.versionedReaders,
      router: parts.router,
      registry: new SnapshotRegistry(parts.mvcc, parts.slot),
    };
    this.#coordinator = new TransactionCoordinator({
      source: this.#snapshots,
      router: parts.router,
      mvcc: parts.mvcc,
      committer: parts.workerControls.length + parts.slot,
      thread: parts.slot,
      channelOf: (partition) => parts.transactionChannels[this.#partitionWorkers[partition]!]!,
      workerOf: (partition) => this.#partitionWorkers[partition]!,
      workerControls: parts.workerControls,
      decisionLog: parts.decisionLog,
      failpoints: parts.failpoints,
      partitions: parts.handle.partitions,
      stats: this.#counts.transactions,
    });
  }

  /** @internal Set once, by open() or attach(), before the database is handed out. */
  useEncodings<K2, V2>(encodings: Encodings): Database<K2, V2> {
    this.#encodings = encodings;
    return this as unknown as Database<K2, V2>;
  }

  /** @internal Set once, by open(), for a replicated database. */
  useReplication(role: ReplicationRole): void {
    this.#replication = role;
    this.#coordinator.setReplicatedCommit((shipped) => role.waitUntilShipped(shipped));
  }

  /**
   * The replication of a database opened with the `replication` option, or null: its role, its
   * position in the log, session waits and promotion (docs/replication.md).
   */
  get replication(): Replication | null {
    return this.#replication;
  }

  /**
   * @internal The shared-memory handle, for this thread's own readers of it (the admin server's
   * metrics); `share()` is for other threads, and a replicated database refuses it.
   */
  get ownHandle(): DatabaseHandle {
    this.#assertOpen();
    return this.#parts.handle;
  }

  /** The database's directory, as open() resolved it. */
  get path(): string {
    return this.#parts.handle.path;
  }

  /**
   * Stores `value` under `key`. Resolves once applied; O(log n) in the owner. Puts and deletes issued
   * in one turn to one owner worker share one promise (see WriteChannel): it rejects if any of them
   * failed in the owner. Bad input rejects this call's own promise, and nothing is queued.
   */
  put(key: K, value: V, options?: WriteOptions<V>): Promise<void> {
    if (options !== undefined) return this.#conditional(key, value, false, options);
    const startedMs = this.#observer === null ? 0 : performance.now();
    let keyBytes: Uint8Array;
    let valueBytes: Uint8Array;
    try {
      this.#assertOpen();
      keyBytes = encodeKey(this.#encodings.keys, key);
      if (keyBytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(keyBytes);
      valueBytes = encodeValue(this.#encodings.values, value);
    } catch (error) {
      return Promise.reject(error);
    }
    const partition = this.#parts.router.partitionOf(keyBytes);
    const written = this.#channelOf(partition).put(partition, keyBytes, valueBytes);
    this.#counts.put[partition]++;
    return this.#observer === null ? written : this.#observer.write('put', partition, startedMs, written);
  }

  /**
   * Removes `key` (a missing key is not an error). Resolves once applied; shares its turn's promise
   * with the other puts and deletes to the same owner, as `put` does.
   */
  del(key: K, options?: WriteOptions<V>): Promise<void> {
    if (options !== undefined) return this.#conditional(key, null, true, options);
    const startedMs = this.#observer === null ? 0 : performance.now();
    let keyBytes: Uint8Array;
    try {
      this.#assertOpen();
      keyBytes = encodeKey(this.#encodings.keys, key);
      if (keyBytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(keyBytes);
    } catch (error) {
      return Promise.reject(error);
    }
    const partition = this.#parts.router.partitionOf(keyBytes);
    const written = this.#channelOf(partition).del(partition, keyBytes);
    this.#counts.del[partition]++;
    return this.#observer === null ? written : this.#observer.write('del', partition, startedMs, written);
  }

  /**
   * A put or del with a condition (`ifValue`, see WriteOptions), run as a single-key
   * transaction: ERR_CONDITION_FAILED if the key's value is not the expected one, ERR_TX_CONFLICT
   * only if it kept changing through every retry. Without a condition, a plain put or del.
   */
  #conditional(key: K, value: V | null, isDelete: boolean, options: WriteOptions<V>): Promise<void> {
    let write: ((tx: Transaction) => void) | null;
    try {
      this.#assertOpen();
      write = conditionalWrite(this.#encodings, key, value, isDelete, options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (write === null) return isDelete ? this.del(key) : this.put(key, value as V);
    return this.#coordinator.run(write, undefined);
  }

  /**
   * Applies puts and deletes atomically: all or none, and readers see the state before or after the
   * whole batch. Keys in one partition go to its owner as one atomic change; keys in several
   * partitions commit through a two-phase commit. Later entries win over earlier ones for a key.
   */
  batch(operations: readonly (BatchOperation<K, V> | StoreOperation)[]): Promise<void> {
    let entries: BatchEntry[];
    const stores = new StoreBatch();
    try {
      this.#assertOpen();
      if (!Array.isArray(operations))
        throw new LightningError('ERR_BAD_ARGUMENT', 'batch takes an array of operations');
      entries = operations.map((operation, index) =>
        toBatchEntry(operation, index, this.#snapshots, this.#encodings, null, stores),
      );
    } catch (error) {
      return Promise.reject(error);
    }
    // A batch that writes named stores checks them once applied (stores/store-liveness.ts).
    return stores.afterWrite(this.writeEntries(entries));
  }

  /**
   * @internal The atomic write of `db.batch()`, for entries checked already; their keys may lie in
   * the store region (named stores).
   */
  writeEntries(entries: BatchEntry[]): Promise<void> {
    const startedMs = this.#observer === null ? 0 : performance.now();
    let partition = -1;
    try {
      this.#assertOpen();
      for (const entry of entries) {
        const owner = this.#parts.router.partitionOf(entry.key);
        if (partition === -1) partition = owner;
        else if (owner !== partition) partition = -2;
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (entries.length === 0) return Promise.resolve();
    this.#counts.batch[partition < 0 ? this.#parts.handle.partitions : partition]++;
    const written =
      partition === -2
        ? this.#coordinator.batch(entries)
        : this.#channelOf(partition).batch(partition, entries);
    return this.#observer === null ? written : this.#observer.write('batch', partition, startedMs, written);
  }

  /** @internal The partition `key` routes to, by the database's partition hash (for bulk loaders). */
  partitionOf(key: Uint8Array): number {
    return this.#parts.router.partitionOf(key);
  }

  /** The value under `key` (a copy), or undefined. Synchronous; O(log n). */
  get(key: K): Out<V> | undefined {
    return decode(this.#encodings.values, this.#read(key, null));
  }

  /**
   * The values of `keys` (copies), in the keys' order, undefined where a key is missing; all read at
   * one snapshot, so they are consistent with each other. Synchronous; every key is checked before
   * any is read. O(k log n).
   */
  getMany(keys: readonly K[]): (Out<V> | undefined)[] {
    return this.#atSnapshot((snapshot) => snapshot.getMany(keys));
  }

  /**
   * The number of entries within the bounds (same options as `range`, `limit` caps the count), at a
   * snapshot taken now. Reads no values. Synchronous; O(entries counted).
   */
  count(options?: KeyRange<K>): number {
    return this.#atSnapshot((snapshot) => snapshot.count(options));
  }

  #atSnapshot<T>(read: (snapshot: Snapshot<K, V>) => T): T {
    this.#assertOpen();
    const snapshot = new Snapshot<K, V>(this.#snapshots, false, this.#encodings);
    try {
      return read(snapshot);
    } finally {
      snapshot.release();
    }
  }

  /**
   * Deletes every entry within the bounds (same options as `range`) as of a snapshot taken now, and
   * resolves with how many it deleted. Each partition's share is deleted atomically by its owner (cut
   * into atomic chunks only where it exceeds one log record); the partitions are not one atomic
   * step: a reader may see some partitions cleared and others not yet, and a failure may leave some
   * cleared. Entries written while it runs may be deleted or kept.
   */
  clear(options?: KeyRange<K>): Promise<number> {
    let keys: SnapshotRange<Buffer>;
    try {
      this.#assertOpen();
      const bounds = defaultRangeBounds(encodeBounds(this.#encodings.keys, options));
      keys = new SnapshotRange<Buffer>(this.#snapshots, bounds, scanShape(undefined, scanKeys));
    } catch (error) {
      return Promise.reject(error);
    }
    return clearKeys(
      keys,
      (key) => this.#parts.router.partitionOf(key),
      (part) => this.#channelOf(part.partition).batch(part.partition, part.entries),
    );
  }

  /**
   * Like `get`, without the copy: the value is a view of a buffer this thread reuses, valid only
   * until the next `getUnsafe` on this thread (of any database), and overwritten then.
   * Read it, or copy what you keep, before the next such call; never keep it across an `await`.
   * lmdb-js offers the same trade with `getBinaryFast`.
   */
  getUnsafe(key: K): Buffer | undefined {
    return this.#read(key, threadValueScratch);
  }

  /** The stored bytes of the value under `key` decoded as UTF-8 (whatever the value encoding), or undefined. */
  getString(key: K): string | undefined {
    // Decoded from a scratch of its own: a view getUnsafe returned stays valid.
    return this.#read(key, stringScratch)?.toString('utf8');
  }

  #read(key: K, scratch: ValueScratch | null): Buffer | undefined {
    this.#assertOpen();
    // The key is done with when the read returns: a string is encoded into the thread's scratch.
    const keyBytes = encodeKey(this.#encodings.keys, key);
    if (keyBytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(keyBytes);
    return this.#readBytes(keyBytes, scratch);
  }

  /** @internal A read of any key, the store region's included (for named stores). */
  readKey(keyBytes: Uint8Array, scratch: ValueScratch | null): Buffer | undefined {
    this.#assertOpen();
    return this.#readBytes(keyBytes, scratch);
  }

  #readBytes(keyBytes: Uint8Array, scratch: ValueScratch | null): Buffer | undefined {
    const startedMs = this.#observer === null ? 0 : performance.now();
    const partition = this.#parts.router.partitionOf(keyBytes);
    const value = this.#parts.versionedReaders[partition]!.get(keyBytes, readLatest, scratch);
    this.#counts.get[partition]++;
    this.#observer?.read(partition, startedMs);
    return value;
  }

  /**
   * Entries within the bounds, sorted by key bytes, merged from all partitions, read at a snapshot
   * taken now: a scan never mixes states, however long it runs. The snapshot is released when the
   * scan ends (or is left with break/return, or its `signal` aborts). Iterate it with for-of or, to
   * let timers and I/O run during a long scan, with for-await.
   */
  range(options?: ScanOptions<K>): ScanIterator<[Out<K>, Out<V>]> {
    return this.#scan(options, scanEntries);
  }

  /** The keys within the bounds, sorted, at a snapshot taken now; values are not read. */
  keys(options?: ScanOptions<K>): ScanIterator<Out<K>> {
    return this.#scan(options, scanKeys);
  }

  /** The values within the bounds, in key order, at a snapshot taken now. */
  values(options?: ScanOptions<K>): ScanIterator<Out<V>> {
    return this.#scan(options, scanValues);
  }

  #scan<T>(options: ScanOptions<K> | undefined, mode: ScanMode): ScanIterator<T> {
    this.#assertOpen();
    const shape = scanShape(options, mode, this.#encodings);
    const bounds = defaultRangeBounds(encodeBounds(this.#encodings.keys, options));
    return new SnapshotRange<T>(this.#snapshots, bounds, shape);
  }

  /** @internal A scan at a snapshot of its own within bounds parsed already (for named stores). */
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]> {
    this.#assertOpen();
    return new SnapshotRange(this.#snapshots, bounds);
  }

  /** @internal A put (a value) or a delete (null) of any key, the store region's included. */
  writeKey(keyBytes: Uint8Array, value: Uint8Array | null): Promise<void> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const startedMs = this.#observer === null ? 0 : performance.now();
    const partition = this.#parts.router.partitionOf(keyBytes);
    const channel = this.#channelOf(partition);
    const written =
      value === null ? channel.del(partition, keyBytes) : channel.put(partition, keyBytes, value);
    if (this.#observer === null) return written;
    return this.#observer.write(value === null ? 'del' : 'put', partition, startedMs, written);
  }

  /** @internal What this thread's snapshots read through: names the database on this thread. */
  get snapshotSource(): SnapshotSource {
    return this.#snapshots;
  }

  /**
   * The named store `name` (created durably if absent, unless `{ create: false }`: then a missing
   * one rejects with ERR_NOT_FOUND), its keys and values encoded with `keyEncoding` and
   * `valueEncoding` as the database's are (`db.store<string, User>('users', { keyEncoding: 'utf8',
   * valueEncoding: 'json' })`). A store is a key space of its own inside this database's partitions;
   * see docs/stores.md. Keep the Store: each call reads the catalog.
   */
  store<SK = Bytes, SV = Bytes>(
    name: string,
    options?: StoreOptions<SK, SV> & EncodingOptions<SK, SV>,
  ): Promise<Store<SK, SV>> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return openStore(this, name, options as StoreOptions<unknown, unknown>) as Promise<Store<SK, SV>>;
  }

  /** @internal The named stores dropped since the database opened, by any thread (store-liveness.ts). */
  storeDrops(): number {
    return Atomics.load(this.#parts.databaseControl, kDatabaseStoreDrops);
  }

  /** @internal Counts a committed drop of a named store, for every thread. */
  countStoreDrop(): void {
    Atomics.add(this.#parts.databaseControl, kDatabaseStoreDrops, 1);
  }

  /** The names of the named stores, sorted by their UTF-8 bytes; synchronous, reads the catalog. */
  stores(): string[] {
    this.#assertOpen();
    return listStores(this).map((record) => record.name);
  }

  /**
   * Drops the named store `name` and every entry in it (ERR_NOT_FOUND if there is none). The store
   * disappears atomically, then its entries are deleted partition by partition; see docs/stores.md.
   */
  dropStore(name: string): Promise<void> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return dropStore(this, name);
  }

  /**
   * A consistent view of the whole database at one read timestamp: it sees exactly the writes
   * committed at or before it, across all partitions. Synchronous. Call `release()` when done.
   */
  snapshot(): Snapshot<K, V> {
    this.#assertOpen();
    return new Snapshot<K, V>(this.#snapshots, true, this.#encodings);
  }

  /**
   * Runs `fn` as a transaction: it reads from a snapshot (and its own writes), its writes are buffered
   * and committed atomically, in one partition or across several (two-phase commit). On a conflict
   * the transaction is retried from the start (`fn` runs again) up to `retries` times (default 16),
   * then fails with ERR_TX_CONFLICT. An error thrown by `fn` aborts it: nothing is written.
   */
  transaction<T>(fn: (tx: Transaction<K, V>) => T | Promise<T>, options?: TransactionOptions): Promise<T> {
    try {
      this.#assertOpen();
      if (typeof fn !== 'function')
        throw new LightningError('ERR_BAD_ARGUMENT', 'transaction takes a function');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#coordinator.run((tx) => fn(tx.withEncodings<K, V>(this.#encodings)), options);
  }

  /** @internal A transaction that reads and writes stored bytes, whatever the encodings (named stores). */
  transactionBytes<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#coordinator.run(fn, options);
  }

  stats(): DatabaseStats {
    this.#assertOpen();
    return collectStats(this.#parts, this.#snapshots.registry.leaked, this.#replication?.stats() ?? null);
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

  /**
   * Writes a consistent backup of one snapshot into `dir` (which must not exist or be empty) while
   * reads and writes continue: a database directory of its own, plus BACKUP.json with the snapshot
   * timestamp and every file's checksum, written last. `restore()` verifies and copies it back. See
   * backup.ts; O(snapshot bytes).
   */
  async backup(dir: string, options?: BackupOptions): Promise<BackupResult> {
    this.#assertOpen();
    // A backup copies every key, the named stores' included: the tasks read the trees themselves,
    // and its snapshot (held while they run) decodes nothing.
    const { path, partitions, trees, versionTrees, mvcc } = this.#parts.handle;
    const snapshot = (): Snapshot => {
      this.#assertOpen();
      return new Snapshot(this.#snapshots);
    };
    const readers = this.#parts.versionedReaders;
    const headCount = (): number => readers.reduce((sum, reader) => sum + reader.main.count, 0);
    const source = { path, partitions, trees, versionTrees, mvcc, snapshot, headCount };
    return backupDatabase(source, dir, options);
  }

  /**
   * A structured-cloneable handle: `await attach(handle)` in another worker thread. It names the
   * database's built-in encodings, which the attached Database then uses too.
   */
  share(): DatabaseHandle {
    this.#assertOpen();
    if (this.#replication !== null) {
      // Another thread's writes would reach the owners without the role's refusals and switches.
      throw new LightningError(
        'ERR_NOT_SUPPORTED',
        'a replicated database is used from the thread that opened it; share() is not supported yet',
      );
    }
    return shareWithEncodings(this.#parts.handle, this.#encodings);
  }

  /**
   * Serves Prometheus metrics (/metrics), liveness (/health) and readiness (/ready) over HTTP on
   * `host:port` (127.0.0.1 by default; a non-loopback host needs `allowRemote: true`). While it runs,
   * this thread's put, del, batch and get are timed. Closing the database closes the server.
   */
  async serveAdmin(options: AdminServerOptions): Promise<AdminServer> {
    this.#assertOpen();
    const { serveDatabase } = await import('./admin/admin-server.js');
    // The server reads stats and serves no keys or values: the encodings do not matter to it.
    return serveDatabase(this as unknown as Database, options);
  }

  /** @internal The admin server's hook: attaches it (one at a time) or, with null, detaches it. */
  attachAdmin(admin: AdminAttachment | null): void {
    if (admin !== null && this.#admin !== null && this.#admin !== admin)
      throw new LightningError('ERR_BAD_ARGUMENT', 'this database is already served by an admin server');
    this.#admin = admin;
    this.#observer = admin?.observer ?? null;
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
    await this.#admin?.detach();
    await Promise.all(
      [...this.#parts.channels, ...this.#parts.transactionChannels].map((channel) => channel.drained()),
    );
    this.#snapshots.registry.releaseAll();
    await this.#parts.decisionLog.close();
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
