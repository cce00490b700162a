import { LightningError, valueToBytes } from '../../shared-memory/index.js';
import { type BatchEntry, operationDel, operationPut } from '../../shared-memory/ring/operation-codec.js';
import { type Encodings, encodeKeyCopy, encodeValue } from '../api/encodings.js';
import type { SnapshotSource } from '../snapshot.js';
import { Store } from './store.js';
import { assertOutsideStoreRegion, storeKeyToBytes, storeRegionFirstByte } from './store-keys.js';

/** One operation of `store.batch()`: its key is the store's unless `store` names another one. */
export type StoreBatchOperation =
  | { type: 'put'; key: Uint8Array | string; value: Uint8Array | string; store?: Store }
  | { type: 'del'; key: Uint8Array | string; store?: Store };

/**
 * Checks and encodes operation `index` of a batch of the database that reads through `source`. The
 * key belongs to the operation's `store`, else to `defaultStore` (a store's own batch), else to the
 * default store, whose keys may not lie in the store region and whose keys and values are encoded
 * with `encodings` (the database's).
 */
export function toBatchEntry(
  operation: unknown,
  index: number,
  source: SnapshotSource,
  encodings: Encodings,
  defaultStore: Store | null = null,
): BatchEntry {
  if (typeof operation !== 'object' || operation === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index} must be an object`);
  }
  const o = operation as { type?: unknown; key?: unknown; value?: unknown; store?: unknown };
  const store = o.store === undefined ? defaultStore : o.store;
  const key = entryKey(o.key, store, index, source, encodings);
  if (o.type === 'put') {
    if (o.value === undefined)
      throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: put needs a value`);
    const value = store === null ? encodeValue(encodings.values, o.value) : valueToBytes(o.value);
    return { kind: operationPut, key, value };
  }
  if (o.type === 'del') return { kind: operationDel, key, value: null };
  throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: type must be 'put' or 'del'`);
}

function entryKey(
  key: unknown,
  store: unknown,
  index: number,
  source: SnapshotSource,
  encodings: Encodings,
): Uint8Array {
  if (store === null) {
    const bytes = encodeKeyCopy(encodings.keys, key);
    if (bytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(bytes, `batch operation ${index}: key`);
    return bytes;
  }
  if (!(store instanceof Store)) {
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
  return store.keyOf(storeKeyToBytes(key));
}
