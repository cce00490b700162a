import type { StoreBase } from '../stores/store-base.js';
import type { Bytes } from './encoding-types.js';

export type { StoreOperation } from '../stores/batch-entry.js';

/**
 * One operation of `db.batch()`. With `store`, the key and value are that named store's (from
 * `db.store()`), encoded with its encodings; without, the database's own, encoded with its key and
 * value encodings. An operation on a store whose key or value types differ from the database's is
 * a StoreOperation, which `db.batch()` takes too.
 */
export type BatchOperation<K = Bytes, V = Bytes> =
  | { type: 'put'; key: K; value: V; store?: StoreBase }
  | { type: 'del'; key: K; store?: StoreBase };
