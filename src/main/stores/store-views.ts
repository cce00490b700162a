import { LightningError, type RangeOptions, valueToBytes } from '../../shared-memory/index.js';
import type { RangeBounds } from '../../shared-memory/tree/range-options.js';
import type { SnapshotSource } from '../snapshot.js';

/** What a store's view reads through: a snapshot's or a transaction's byte-level reads. */
interface ByteReads {
  readKey(bytes: Uint8Array): Buffer | undefined;
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]>;
}

/** A transaction's byte-level reads and writes. */
interface ByteReadsAndWrites extends ByteReads {
  writeKey(keyBytes: Uint8Array, value: Uint8Array | null): void;
}

import { decodeRecord, recordKey } from './catalog-records.js';
import { Store } from './store.js';
import { storeKeyToBytes, storePrefixBytes, UnprefixedRange } from './store-keys.js';

/** Throws ERR_BAD_ARGUMENT unless `store` is a Store of the database that reads through `source`. */
function assertStoreOf(store: unknown, source: SnapshotSource): asserts store is Store {
  if (!(store instanceof Store)) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'store() takes a Store from db.store()');
  }
  if (!store.belongsTo(source)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `the store ${JSON.stringify(store.name)} belongs to another database (or thread)`,
    );
  }
}

/**
 * A named store seen through a snapshot (`snapshot.store(store)`): reads at the snapshot's timestamp,
 * consistent with every other store and the default store read through the same snapshot.
 */
export class SnapshotStore {
  readonly #snapshot: ByteReads;
  readonly #store: Store;

  /** @internal Made by `snapshot.store()`. */
  constructor(snapshot: ByteReads & { readonly source: SnapshotSource }, store: Store) {
    assertStoreOf(store, snapshot.source);
    this.#snapshot = snapshot;
    this.#store = store;
  }

  get(key: Uint8Array | string): Buffer | undefined {
    return this.#snapshot.readKey(this.#store.keyOf(storeKeyToBytes(key)));
  }

  getString(key: Uint8Array | string): string | undefined {
    return this.get(key)?.toString('utf8');
  }

  /** The store's entries within the bounds at the snapshot (keys without the store's prefix). */
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]> {
    return new UnprefixedRange(this.#snapshot.rangeWithin(this.#store.boundsOf(options)), storePrefixBytes);
  }
}

/**
 * A named store inside a transaction (`tx.store(store)`): its reads are recorded and its writes
 * buffered with the transaction's own, so one commit covers every store it touched.
 */
export class TransactionStore {
  readonly #tx: ByteReadsAndWrites;
  readonly #store: Store;

  /**
   * @internal Made by `tx.store()`. The store's catalog record is read within the transaction, so a
   * drop of the store that commits meanwhile conflicts with it (under serializable isolation).
   */
  constructor(tx: ByteReadsAndWrites, source: SnapshotSource, store: Store) {
    assertStoreOf(store, source);
    this.#tx = tx;
    this.#store = store;
    const record = tx.readKey(recordKey(store.name));
    if (record === undefined || decodeRecord(record).id !== store.id) {
      throw new LightningError(
        'ERR_NOT_FOUND',
        `the store ${JSON.stringify(store.name)} (id ${store.id}) does not exist at this transaction's snapshot`,
      );
    }
  }

  get(key: Uint8Array | string): Buffer | undefined {
    return this.#tx.readKey(this.#store.keyOf(storeKeyToBytes(key)));
  }

  getString(key: Uint8Array | string): string | undefined {
    return this.get(key)?.toString('utf8');
  }

  put(key: Uint8Array | string, value: Uint8Array | string): void {
    this.#tx.writeKey(this.#store.keyOf(storeKeyToBytes(key)), valueToBytes(value));
  }

  del(key: Uint8Array | string): void {
    this.#tx.writeKey(this.#store.keyOf(storeKeyToBytes(key)), null);
  }

  /** The store's entries within the bounds, with the transaction's own writes applied. */
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]> {
    return new UnprefixedRange(this.#tx.rangeWithin(this.#store.boundsOf(options)), storePrefixBytes);
  }
}
