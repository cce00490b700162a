import type { Store } from '../stores/store.js';
import type { Bytes } from './encoding-types.js';

/**
 * One operation of `db.batch()`. With `store`, the key is that named store's (from `db.store()`, its
 * bytes as given); without, the database's own, encoded with its key and value encodings.
 */
export type BatchOperation<K = Bytes, V = Bytes> =
  | { type: 'put'; key: K; value: V; store?: Store }
  | { type: 'del'; key: K; store?: Store };
