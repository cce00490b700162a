import { LightningError, type RangeOptions, valueToBytes } from '../../shared-memory/index.js';
import type { BatchEntry } from '../../shared-memory/ring/operation-codec.js';
import type { RangeBounds } from '../../shared-memory/tree/range-options.js';
import { ValueScratch } from '../../shared-memory/tree/value-scratch.js';
import { noEncodings } from '../api/encodings.js';
import type { SnapshotSource } from '../snapshot.js';
import type { Transaction } from '../transaction.js';
import type { TransactionOptions } from '../transaction-coordinator.js';
import { type StoreBatchOperation, toBatchEntry } from './batch-entry.js';
import {
  prefixedKey,
  storeKeyToBytes,
  storePrefix,
  storePrefixBytes,
  storeRangeBounds,
  UnprefixedRange,
} from './store-keys.js';

/** Options of `db.store(name, options)`. */
export interface StoreOptions {
  /** Create the store if it does not exist (default true); false: a missing store is ERR_NOT_FOUND. */
  create?: boolean;
}

/** What a store needs of its database on one thread: the Database's internal paths. */
export interface StoreHost {
  readonly snapshotSource: SnapshotSource;
  readKey(keyBytes: Uint8Array, scratch: ValueScratch | null): Buffer | undefined;
  writeKey(keyBytes: Uint8Array, value: Uint8Array | null): Promise<void>;
  writeEntries(entries: BatchEntry[]): Promise<void>;
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]>;
  partitionOf(key: Uint8Array): number;
  /** Its transactions, reading and writing stored bytes whatever the database's encodings. */
  transactionBytes<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T>;
}

/** Where getString reads a value before decoding it (one per thread, as module state is). */
const stringScratch = new ValueScratch();

/**
 * A named store of a database (`await db.store(name)`): a key space of its own, read and written like
 * the database itself — synchronous reads from shared memory, writes through the owner workers — and
 * kept in the same partitions, logs and checkpoints (its keys carry a prefix the caller never sees;
 * see store-keys.ts). Its keys are at most `storeKeyBytesMax` (1,018) bytes.
 *
 * The public methods convert keys and values to bytes and call the byte-level methods (`getBytes`,
 * `putBytes`, `delBytes`, `rangeBytes`), so an encoding layer can wrap those.
 */
export class Store {
  /** The store's name, as given to `db.store()`. */
  readonly name: string;
  /** The store's id in the catalog (1 to 65535): never reused, even after a drop. */
  readonly id: number;
  readonly #host: StoreHost;
  readonly #prefix: Uint8Array;
  #dropped = false;

  /** @internal Made by `db.store()` from the store's catalog record. */
  constructor(host: StoreHost, id: number, name: string) {
    this.#host = host;
    this.id = id;
    this.name = name;
    this.#prefix = storePrefix(id);
  }

  /** The value under `key` (a copy), or undefined. Synchronous; O(log n). */
  get(key: Uint8Array | string): Buffer | undefined {
    return this.getBytes(storeKeyToBytes(key), null);
  }

  /** The value under `key` decoded as UTF-8, or undefined. */
  getString(key: Uint8Array | string): string | undefined {
    return this.getBytes(storeKeyToBytes(key), stringScratch)?.toString('utf8');
  }

  /** Stores `value` under `key`; resolves once applied, as `db.put` does. */
  put(key: Uint8Array | string, value: Uint8Array | string): Promise<void> {
    let keyBytes: Uint8Array;
    let valueBytes: Uint8Array;
    try {
      keyBytes = storeKeyToBytes(key);
      valueBytes = valueToBytes(value);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.putBytes(keyBytes, valueBytes);
  }

  /** Removes `key` (a missing key is not an error); resolves once applied. */
  del(key: Uint8Array | string): Promise<void> {
    let keyBytes: Uint8Array;
    try {
      keyBytes = storeKeyToBytes(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.delBytes(keyBytes);
  }

  /**
   * Applies puts and deletes atomically, as `db.batch` does. An operation's key is this store's,
   * unless it names another store of the same database in its `store` field.
   */
  batch(operations: readonly StoreBatchOperation[]): Promise<void> {
    let entries: BatchEntry[];
    try {
      this.#assertLive();
      if (!Array.isArray(operations))
        throw new LightningError('ERR_BAD_ARGUMENT', 'batch takes an array of operations');
      const source = this.#host.snapshotSource;
      entries = operations.map((operation, index) =>
        toBatchEntry(operation, index, source, noEncodings, this),
      );
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#host.writeEntries(entries);
  }

  /**
   * The store's entries within the bounds (keys without the store's prefix), sorted by key bytes,
   * read at a snapshot taken now, as `db.range` does.
   */
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]> {
    return this.rangeBytes(this.boundsOf(options));
  }

  /** @internal The read under a key given as bytes (no prefix); `scratch` as `db.getUnsafe` uses one. */
  getBytes(keyBytes: Uint8Array, scratch: ValueScratch | null): Buffer | undefined {
    return this.#host.readKey(this.keyOf(keyBytes), scratch);
  }

  /** @internal The put of a key and value given as bytes (the key without the prefix). */
  putBytes(keyBytes: Uint8Array, valueBytes: Uint8Array): Promise<void> {
    try {
      return this.#host.writeKey(this.keyOf(keyBytes), valueBytes);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @internal The delete of a key given as bytes (without the prefix). */
  delBytes(keyBytes: Uint8Array): Promise<void> {
    try {
      return this.#host.writeKey(this.keyOf(keyBytes), null);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @internal A scan within bounds made by `boundsOf`; keys come back without the prefix. */
  rangeBytes(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]> {
    this.#assertLive();
    return new UnprefixedRange(this.#host.rangeWithin(bounds), storePrefixBytes);
  }

  /** @internal The key a caller's key (checked bytes, no prefix) is kept under. */
  keyOf(keyBytes: Uint8Array): Uint8Array {
    this.#assertLive();
    return prefixedKey(this.#prefix, keyBytes);
  }

  /** @internal Range options mapped into the store's part of the region. */
  boundsOf(options: RangeOptions | undefined): RangeBounds {
    this.#assertLive();
    return storeRangeBounds(this.#prefix, options);
  }

  /** @internal True if the store was opened through the database that reads through `source`. */
  belongsTo(source: SnapshotSource): boolean {
    return this.#host.snapshotSource === source;
  }

  /** @internal Called when this thread learns the store was dropped: every use fails from then on. */
  markDropped(): void {
    this.#dropped = true;
  }

  /** True once this thread dropped the store (or found it dropped or replaced in the catalog). */
  get dropped(): boolean {
    return this.#dropped;
  }

  #assertLive(): void {
    if (this.#dropped) {
      throw new LightningError('ERR_NOT_FOUND', `the store ${JSON.stringify(this.name)} was dropped`);
    }
  }
}
