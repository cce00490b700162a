import { LightningError } from '../../shared-memory/index.js';
import type { BatchEntry } from '../../shared-memory/ring/operation-codec.js';
import { ValueScratch } from '../../shared-memory/tree/value-scratch.js';
import { clearKeys } from '../api/clear-range.js';
import { checkAndWrite, parseWriteOptions, type WriteOptions } from '../api/conditional-write.js';
import { countWithin } from '../api/count-range.js';
import type { Bytes, EncodingOptions, Out } from '../api/encoding-types.js';
import { decode } from '../api/encodings.js';
import { keysToBytes } from '../api/get-many.js';
import { type KeyRange, type ScanIterator, type ScanOptions, scanShape } from '../api/scan-options.js';
import { type ScanMode, scanEntries, scanKeys, scanValues } from '../merged-range.js';
import { cursorsAt, Snapshot, SnapshotRange } from '../snapshot.js';
import { StoreBatch, type StoreBatchOperation, type StoreOperation, toBatchEntry } from './batch-entry.js';
import { StoreBase } from './store-base.js';
import { storeKeyToBytes } from './store-keys.js';
import { assertStoreInTransaction } from './transaction-record.js';

/** Options of `db.store(name, options)`: whether to create it, and how its keys and values are encoded. */
export interface StoreOptions<K = Bytes, V = Bytes> extends EncodingOptions<K, V> {
  /** Create the store if it does not exist (default true); false: a missing store is ERR_NOT_FOUND. */
  create?: boolean;
}

/** Where getString reads a value before decoding it (one per thread, as module state is). */
const stringScratch = new ValueScratch();

/**
 * A named store of a database (`await db.store<K, V>(name, options)`): a key space of its own, read and
 * written like the database itself — synchronous reads from shared memory, writes through the owner
 * workers — and kept in the same partitions, logs and checkpoints (its keys carry a prefix the caller
 * never sees; see store-keys.ts). Keys and values are encoded with the store's own encodings, given
 * when it is opened (a view: they are not stored); its keys are at most 1,018 bytes once encoded.
 *
 * Every call first checks that the store still exists (one Atomics.load; see store-liveness.ts): a
 * store dropped on any thread fails every later call with ERR_STORE_DROPPED.
 */
export class Store<K = Bytes, V = Bytes> extends StoreBase {
  /** The value under `key` (a copy, decoded), or undefined. Synchronous; O(log n). */
  get(key: K): Out<V> | undefined {
    return decode(this.encodings.values, this.#read(key, null));
  }

  /** The stored bytes of the value under `key` as UTF-8 (whatever the value encoding), or undefined. */
  getString(key: K): string | undefined {
    return this.#read(key, stringScratch)?.toString('utf8');
  }

  #read(key: K, scratch: ValueScratch | null): Buffer | undefined {
    const value = this.host.readKey(this.keyOf(key), scratch);
    // After the read too: a drop that began meanwhile may have deleted some of the store's entries.
    this.live.assertLive();
    return value;
  }

  /**
   * The values of `keys`, in order, undefined where missing, all read at one snapshot. Every key is
   * checked before any is read. Synchronous; O(k log n).
   */
  getMany(keys: readonly K[]): (Out<V> | undefined)[] {
    this.live.assertLive();
    const stored = keysToBytes(keys, this.encodings.keys).map((bytes, index) =>
      this.prefixed(storeKeyToBytes(bytes, `key ${index}`)),
    );
    const snapshot = new Snapshot(this.host.snapshotSource, false);
    try {
      const values = stored.map((key) => decode<Out<V>>(this.encodings.values, snapshot.readKey(key)));
      this.live.assertLive();
      return values;
    } finally {
      snapshot.release();
    }
  }

  /**
   * Stores `value` under `key`; resolves once applied, as `db.put` does. With `{ ifValue }` the write
   * is conditional, as `db.put`'s (ERR_CONDITION_FAILED), and atomic with a check of the catalog.
   */
  put(key: K, value: V, options?: WriteOptions<V>): Promise<void> {
    return this.#write(key, value, false, options);
  }

  /** Removes `key` (a missing key is not an error); resolves once applied. `ifValue` as for put. */
  del(key: K, options?: WriteOptions<V>): Promise<void> {
    return this.#write(key, null, true, options);
  }

  #write(key: K, value: V | null, isDelete: boolean, options: WriteOptions<V> | undefined): Promise<void> {
    let keyBytes: Uint8Array;
    let valueBytes: Uint8Array | null;
    let condition: ReturnType<typeof parseWriteOptions>;
    try {
      keyBytes = this.keyOf(key);
      valueBytes = isDelete ? null : this.valueOf(value);
      condition = parseWriteOptions(options, this.encodings.values);
    } catch (error) {
      return Promise.reject(error);
    }
    if (condition !== null) {
      const write = checkAndWrite(keyBytes, valueBytes?.slice() ?? null, condition);
      return this.host.transactionBytes((tx) => {
        assertStoreInTransaction(tx, this);
        write(tx);
      });
    }
    const written = this.host.writeKey(keyBytes, valueBytes);
    return this.live.afterWrite(written, valueBytes === null ? [] : [keyBytes]);
  }

  /**
   * Applies puts and deletes atomically, as `db.batch` does. An operation's key is this store's,
   * unless it names another store of the same database in its `store` field.
   */
  batch(operations: readonly (StoreBatchOperation<K, V> | StoreOperation)[]): Promise<void> {
    let entries: BatchEntry[];
    const touched = new StoreBatch();
    try {
      this.live.assertLive();
      if (!Array.isArray(operations))
        throw new LightningError('ERR_BAD_ARGUMENT', 'batch takes an array of operations');
      const source = this.host.snapshotSource;
      entries = operations.map((operation, index) =>
        toBatchEntry(operation, index, source, this.encodings, this, touched),
      );
    } catch (error) {
      return Promise.reject(error);
    }
    return touched.afterWrite(this.host.writeEntries(entries));
  }

  /**
   * The store's entries within the bounds (keys without the store's prefix, decoded), sorted by their
   * encoded bytes, read at a snapshot taken now, as `db.range` does: for-of or for-await, with
   * `signal` to stop it.
   */
  range(options?: ScanOptions<K>): ScanIterator<[Out<K>, Out<V>]> {
    return this.#scan(options, scanEntries);
  }

  /** The store's keys within the bounds, sorted, at a snapshot taken now; values are not read. */
  keys(options?: ScanOptions<K>): ScanIterator<Out<K>> {
    return this.#scan(options, scanKeys);
  }

  /** The store's values within the bounds, in key order, at a snapshot taken now. */
  values(options?: ScanOptions<K>): ScanIterator<Out<V>> {
    return this.#scan(options, scanValues);
  }

  #scan<T>(options: ScanOptions<K> | undefined, mode: ScanMode): ScanIterator<T> {
    const shape = scanShape(options, mode, this.scanEncodings);
    const scan = new SnapshotRange<T>(this.host.snapshotSource, this.boundsOf(options), shape);
    // Checked again once the scan holds its snapshot: entries a drop deletes later stay in it.
    try {
      this.live.assertLive();
    } catch (error) {
      scan.return();
      throw error;
    }
    return scan;
  }

  /** The number of the store's entries within the bounds (at most `limit`), reading no values. */
  count(options?: KeyRange<K>): number {
    const bounds = this.boundsOf(options);
    const snapshot = new Snapshot(this.host.snapshotSource, false);
    try {
      this.live.assertLive();
      const cursors = cursorsAt(
        this.host.snapshotSource,
        { ...bounds, reverse: false },
        snapshot.readTimestamp,
      );
      return countWithin(cursors, bounds.limit);
    } finally {
      snapshot.release();
    }
  }

  /**
   * Deletes the store's entries within the bounds as of a snapshot taken now, as `db.clear` does
   * (atomic in each partition, not across them); resolves with how many it deleted.
   */
  clear(options?: KeyRange<K>): Promise<number> {
    let keys: SnapshotRange<Buffer>;
    try {
      keys = new SnapshotRange<Buffer>(
        this.host.snapshotSource,
        this.boundsOf(options),
        scanShape(undefined, scanKeys),
      );
      this.live.assertLive();
    } catch (error) {
      return Promise.reject(error);
    }
    const host = this.host;
    const cleared = clearKeys(
      keys,
      (key) => host.partitionOf(key),
      (part) => host.writeEntries(part.entries),
    );
    return this.live.afterWrite(cleared, []).then(() => cleared);
  }
}
