import { LightningError } from '../../shared-memory/index.js';
import type { RangeBounds } from '../../shared-memory/tree/range-options.js';
import type { Bytes, Out } from '../api/encoding-types.js';
import { decode } from '../api/encodings.js';
import type { KeyRange } from '../api/scan-options.js';
import type { SnapshotSource } from '../snapshot.js';
import type { Transaction } from '../transaction.js';
import type { Store } from './store.js';
import { StoreBase } from './store-base.js';
import { decodeStoreEntries } from './store-codecs.js';
import { assertStoreInTransaction } from './transaction-record.js';

/** What a store's view reads through: a snapshot's or a transaction's byte-level reads. */
interface ByteReads {
  readKey(bytes: Uint8Array): Buffer | undefined;
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]>;
}

/** Throws ERR_BAD_ARGUMENT unless `store` is a Store of the database that reads through `source`. */
function assertStoreOf(store: unknown, source: SnapshotSource): asserts store is StoreBase {
  if (!(store instanceof StoreBase)) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'store() takes a Store from db.store()');
  }
  if (!store.belongsTo(source)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `the store ${JSON.stringify(store.name)} belongs to another database (or thread)`,
    );
  }
}

/** Reads of a store through a snapshot or a transaction, with the store's encodings. */
class StoreReads<K, V> {
  protected readonly reads: ByteReads;
  protected readonly store: StoreBase;

  constructor(reads: ByteReads, store: StoreBase) {
    this.reads = reads;
    this.store = store;
  }

  get(key: K): Out<V> | undefined {
    return decode(this.store.encodings.values, this.reads.readKey(this.store.keyOf(key)));
  }

  /** The stored bytes of the value under `key` as UTF-8, whatever the value encoding. */
  getString(key: K): string | undefined {
    return this.reads.readKey(this.store.keyOf(key))?.toString('utf8');
  }

  /** The store's entries within the bounds (keys without the store's prefix), decoded. */
  range(options?: KeyRange<K>): IterableIterator<[Out<K>, Out<V>]> {
    const entries = this.reads.rangeWithin(this.store.boundsOf(options as KeyRange<unknown>));
    return decodeStoreEntries(entries, this.store.scanEncodings) as IterableIterator<[Out<K>, Out<V>]>;
  }
}

/**
 * A named store seen through a snapshot (`snapshot.store(store)`): reads at the snapshot's timestamp,
 * consistent with every other store and the default store read through the same snapshot. A store
 * dropped since fails every read with ERR_STORE_DROPPED, as the Store itself does.
 */
export class SnapshotStore<K = Bytes, V = Bytes> extends StoreReads<K, V> {
  /** @internal Made by `snapshot.store()`. */
  constructor(snapshot: ByteReads & { readonly source: SnapshotSource }, store: Store<K, V>) {
    assertStoreOf(store, snapshot.source);
    store.assertLive();
    super(snapshot, store);
  }
}

/**
 * A named store inside a transaction (`tx.store(store)`): its reads are recorded and its writes
 * buffered with the transaction's own, so one commit covers every store it touched.
 */
export class TransactionStore<K = Bytes, V = Bytes> extends StoreReads<K, V> {
  readonly #tx: Transaction;

  /**
   * @internal Made by `tx.store()`. The store's catalog record is read within the transaction, so a
   * drop of the store that commits meanwhile conflicts with it (under serializable isolation).
   */
  constructor(tx: Transaction, source: SnapshotSource, store: Store<K, V>) {
    assertStoreOf(store, source);
    assertStoreInTransaction(tx, store);
    super(tx, store);
    this.#tx = tx;
  }

  put(key: K, value: V): void {
    this.#tx.writeKey(this.store.keyOf(key), this.store.valueOf(value));
  }

  del(key: K): void {
    this.#tx.writeKey(this.store.keyOf(key), null);
  }
}
