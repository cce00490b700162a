import { LightningError } from '../../shared-memory/index.js';
import { type BatchEntry, operationDel, operationPut } from '../../shared-memory/ring/operation-codec.js';
import type { Bytes } from './encoding-types.js';
import { type Encodings, encodeKeyCopy, encodeValue } from './encodings.js';

/** One operation of `db.batch()`. */
export type BatchOperation<K = Bytes, V = Bytes> =
  | { type: 'put'; key: K; value: V }
  | { type: 'del'; key: K };

/** A batch operation checked and encoded; throws ERR_BAD_ARGUMENT (or a size error) naming its index. */
export function toBatchEntry(operation: unknown, index: number, encodings: Encodings): BatchEntry {
  if (typeof operation !== 'object' || operation === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index} must be an object`);
  }
  const o = operation as { type?: unknown; key?: unknown; value?: unknown };
  if (o.type === 'put') {
    if (o.value === undefined)
      throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: put needs a value`);
    return {
      kind: operationPut,
      key: encodeKeyCopy(encodings.keys, o.key),
      value: encodeValue(encodings.values, o.value),
    };
  }
  if (o.type === 'del') return { kind: operationDel, key: encodeKeyCopy(encodings.keys, o.key), value: null };
  throw new LightningError('ERR_BAD_ARGUMENT', `batch operation ${index}: type must be 'put' or 'del'`);
}
