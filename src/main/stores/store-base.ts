import type { LightningError, RangeOptions } from '../../shared-memory/index.js';
import type { RangeBounds } from '../../shared-memory/tree/range-options.js';
import type { ValueScratch } from '../../shared-memory/tree/value-scratch.js';
import { type Encodings, encodeBounds, encodeValue } from '../api/encodings.js';
import type { SnapshotSource } from '../snapshot.js';
import type { Transaction } from '../transaction.js';
import type { TransactionOptions } from '../transaction-coordinator.js';
import { encodeStoreKey, storeScanEncodings } from './store-codecs.js';
import { prefixedKey, storePrefix, storeRangeBounds } from './store-keys.js';
import { type StoreDropSource, type StoreLiveness, storeDroppedError } from './store-liveness.js';

/** What a store needs of its database on one thread: the Database's internal paths. */
export interface StoreHost extends StoreDropSource {
  readonly snapshotSource: SnapshotSource;
  readKey(keyBytes: Uint8Array, scratch: ValueScratch | null): Buffer | undefined;
  writeKey(keyBytes: Uint8Array, value: Uint8Array | null): Promise<void>;
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]>;
  /** Counts a committed drop, for every thread (see store-liveness.ts). */
  countStoreDrop(): void;
  /** Its transactions, reading and writing stored bytes whatever the database's encodings. */
  transactionBytes<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T>;
}

/**
 * What every `Store` is, whatever its key and value types: the store's identity, its encodings, and
 * the paths from a caller's key to the stored key that batches, transactions and snapshots use. A
 * `Store<string, User>` is a StoreBase, so a batch or transaction can name any store of the database.
 */
export abstract class StoreBase {
  /** The store's name, as given to `db.store()`. */
  readonly name: string;
  /** The store's id in the catalog (1 to 65535): never reused, even after a drop. */
  readonly id: number;
  protected readonly host: StoreHost;
  protected readonly live: StoreLiveness;
  readonly #prefix: Uint8Array;
  /** @internal The encodings this view reads and writes with. */
  readonly encodings: Encodings;
  /** @internal The encodings a scan of the store decodes with: the key codec takes the prefix off. */
  readonly scanEncodings: Encodings;

  /** @internal A view of the store `live` with these encodings. */
  constructor(host: StoreHost, live: StoreLiveness, encodings: Encodings) {
    this.host = host;
    this.live = live;
    this.id = live.id;
    this.name = live.name;
    this.#prefix = storePrefix(live.id);
    this.encodings = encodings;
    this.scanEncodings = storeScanEncodings(encodings);
  }

  /** True once the store is known to be dropped (by this thread, or found gone from the catalog). */
  get dropped(): boolean {
    return this.live.dropped;
  }

  /** @internal The stored key of a caller's key: encoded, checked, prefixed; the store checked live. */
  keyOf(key: unknown): Uint8Array {
    this.live.assertLive();
    return this.prefixed(encodeStoreKey(this.encodings.keys, key));
  }

  /** @internal The stored key of a key already encoded and checked. */
  prefixed(keyBytes: Uint8Array): Uint8Array {
    return prefixedKey(this.#prefix, keyBytes);
  }

  /** @internal The stored bytes of a caller's value. */
  valueOf(value: unknown): Uint8Array {
    return encodeValue(this.encodings.values, value);
  }

  /** @internal Range options (bounds in the key encoding) mapped into the store's part of the region. */
  boundsOf(options: object | undefined): RangeBounds {
    this.live.assertLive();
    return storeRangeBounds(this.#prefix, encodeBounds(this.encodings.keys, options) as RangeOptions);
  }

  /** @internal Checks the store still exists (ERR_STORE_DROPPED otherwise). */
  assertLive(): void {
    this.live.assertLive();
  }

  /** @internal See StoreLiveness.afterWrite. */
  afterWrite(written: Promise<unknown>, puts: readonly Uint8Array[]): Promise<void> {
    return this.live.afterWrite(written, puts);
  }

  /** @internal The error every use of this store gives once it is dropped. */
  droppedError(): LightningError {
    return storeDroppedError(this.name, this.id);
  }

  /** @internal True if the store was opened through the database that reads through `source`. */
  belongsTo(source: SnapshotSource): boolean {
    return this.host.snapshotSource === source;
  }
}
