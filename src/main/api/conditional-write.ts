import { LightningError } from '../../shared-memory/index.js';
import { assertOutsideStoreRegion, storeRegionFirstByte } from '../stores/store-keys.js';
import type { Transaction } from '../transaction.js';
import type { Bytes } from './encoding-types.js';
import { type Codec, type Encodings, encodeKeyCopy, encodeValue } from './encodings.js';

/** Options of a single put or del. */
export interface WriteOptions<V = Bytes> {
  /**
   * Writes only if the key's current value is exactly this one (compared as stored: its bytes in the
   * database's value encoding; a string as UTF-8 by default), or, with
   * null, only if the key is absent; otherwise the write rejects with ERR_CONDITION_FAILED and
   * changes nothing. The check and the write are one atomic step against every other writer.
   */
  ifValue?: V | null;
}

/** A checked condition: the bytes the key must hold, or null for "absent". */
export interface WriteCondition {
  expected: Uint8Array | null;
}

/** Checks a put's or del's options; null when the write is unconditional. */
export function parseWriteOptions(options: unknown, codec: Codec | null): WriteCondition | null {
  if (options === undefined) return null;
  if (typeof options !== 'object' || options === null)
    throw new LightningError('ERR_BAD_ARGUMENT', 'write options must be an object');
  for (const name of Object.keys(options)) {
    if (name !== 'ifValue')
      throw new LightningError('ERR_BAD_ARGUMENT', `unknown write option ${JSON.stringify(name)}`);
  }
  const { ifValue } = options as { ifValue?: unknown };
  if (ifValue === undefined) return null;
  return { expected: ifValue === null ? null : encodeValue(codec, ifValue).slice() };
}

/**
 * The transaction function of a put (`isDelete` false) or del with these options, or null when they
 * set no condition: then it is a plain write. Checks and encodes everything first.
 */
export function conditionalWrite(
  encodings: Encodings,
  key: unknown,
  value: unknown,
  isDelete: boolean,
  options: unknown,
): ((tx: Transaction) => void) | null {
  const condition = parseWriteOptions(options, encodings.values);
  if (condition === null) return null;
  const keyBytes = encodeKeyCopy(encodings.keys, key).slice();
  if (keyBytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(keyBytes);
  const valueBytes = isDelete ? null : encodeValue(encodings.values, value).slice();
  return checkAndWrite(keyBytes, valueBytes, condition);
}

/**
 * The function a conditional put (`valueBytes`) or del (null) runs as a single-key transaction: it reads
 * the key at the transaction's snapshot, refuses if the condition does not hold there, and writes.
 * The owner validates the read at commit (serializable isolation), so a concurrent write to the key
 * between the read and the commit makes it a conflict: the transaction runs again, reads the new
 * value and decides again. Of several conditional writes racing on one key with the same condition,
 * exactly one wins. `keyBytes` is the stored key (a named store's has its prefix), read and written
 * as bytes.
 */
export function checkAndWrite(
  keyBytes: Uint8Array,
  valueBytes: Uint8Array | null,
  condition: WriteCondition,
): (tx: Transaction) => void {
  return (tx) => {
    const current = tx.readKey(keyBytes);
    const expected = condition.expected;
    const holds = expected === null ? current === undefined : current?.equals(expected) === true;
    if (!holds) {
      throw new LightningError(
        'ERR_CONDITION_FAILED',
        expected === null
          ? 'the key exists: the write was conditional on it being absent'
          : current === undefined
            ? 'the key is absent: the write was conditional on its value'
            : 'the key holds another value than the one the write was conditional on',
      );
    }
    tx.writeKey(keyBytes, valueBytes);
  };
}
