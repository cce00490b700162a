import { LightningError } from '../../shared-memory/index.js';
import { type BatchEntry, operationDel, operationPut } from '../../shared-memory/ring/operation-codec.js';
import type { Bytes } from '../api/encoding-types.js';
import { type Encodings, encodeKeyCopy, encodeValue } from '../api/encodings.js';
import type { SnapshotSource } from '../snapshot.js';
import { StoreBase } from './store-base.js';
import { assertOutsideStoreRegion, storeRegionFirstByte } from './store-keys.js';

/**
 * An operation of a batch on a named store (`store`, from `db.store()`): its key and value are that
 * store's, encoded with its encodings, whatever their types.
 */
export type StoreOperation =
  | { type: 'put'; key: unknown; value: unknown; store: StoreBase }
  | { type: 'del'; key: unknown; store: StoreBase };

/**
 * One operation of `store.batch()`: its key is the store's unless `store` names another store (then
 * it is that store's; an operation typed for another store is a StoreOperation).
 */
export type StoreBatchOperation<K = Bytes, V = Bytes> =
  | { type: 'put'; key: K; value: V; store?: StoreBase }
  | { type: 'del'; key: K; store?: StoreBase };

/**
 * The named stores a batch writes, with the keys it puts in each: once the batch is applied, each is
 * checked still to exist, as a single write is (store-liveness.ts).
 */
export class StoreBatch {
  readonly #puts = new Map<StoreBase, Uint8Array[]>();

  add(store: StoreBase, key: Uint8Array, isPut: boolean): void {
    let keys = this.#puts.get(store);
    if (keys === undefined) {
      keys = [];
      this.#puts.set(store, keys);
    }
    if (isPut) keys.push(key);
  }

  /**
   * `written`, checked once applied: a store dropped meanwhile has its puts deleted again, and the
   * batch rejects with ERR_STORE_DROPPED (the other stores' writes stay, as they would had the drop
   * come after).
   */
  async afterWrite(written: Promise<void>): Promise<void> {
    if (this.#puts.size === 0) return written;
    await written;
    const checks = [...this.#puts].map(([store, puts]) => store.afterWrite(Promise.resolve(), puts));
    const failed = (await Promise.allSettled(checks)).find((check) => check.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

/**
 * Checks and encodes operation `index` of a batch of the database that reads through `source`. The
 * key belongs to the operation's `store`, else to `defaultStore` (a store's own batch), else to the
 * default store, whose keys may not lie in the store region. Keys and values are encoded with their
 * store's encodings (the database's, `encodings`, for the default store); `touched` collects the
 * named stores written.
 */
export function toBatchEntry(
  operation: unknown,
  index: number,
  source: SnapshotSource,
  encodings: Encodings,
  defaultStore: StoreBase | null,
  touched: StoreBatch,
): BatchEntry {
  if (typeof operation !== 'object' || operation === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index} must be an object`);
  }
  const o = operation as { type?: unknown; key?: unknown; value?: unknown; store?: unknown };
  const store = o.store === undefined ? defaultStore : o.store;
  if (o.type !== 'put' && o.type !== 'del')
    throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: type must be 'put' or 'del'`);
  if (o.type === 'put' && o.value === undefined)
    throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: put needs a value`);
  if (store === null) {
    const key = encodeKeyCopy(encodings.keys, o.key);
    if (key[0] === storeRegionFirstByte) assertOutsideStoreRegion(key, `batch operation ${index}: key`);
    if (o.type === 'del') return { kind: operationDel, key, value: null };
    return { kind: operationPut, key, value: encodeValue(encodings.values, o.value) };
  }
  assertStoreOfBatch(store, index, source);
  const key = store.keyOf(o.key);
  touched.add(store, key, o.type === 'put');
  if (o.type === 'del') return { kind: operationDel, key, value: null };
  return { kind: operationPut, key, value: store.valueOf(o.value) };
}

function assertStoreOfBatch(
  store: unknown,
  index: number,
  source: SnapshotSource,
): asserts store is StoreBase {
  if (!(store instanceof StoreBase)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `batch operation ${index}: store must be a Store from db.store()`,
    );
  }
  if (!store.belongsTo(source)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `batch operation ${index}: the store ${JSON.stringify(store.name)} belongs to another database (or thread)`,
    );
  }
}
