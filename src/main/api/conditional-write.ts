import { keyToBytes, LightningError, valueToBytes } from '../../shared-memory/index.js';
import type { Transaction } from '../transaction.js';

/** Options of a single put or del. */
export interface WriteOptions {
  /**
   * Writes only if the key's current value is exactly these bytes (a string as UTF-8), or, with
   * null, only if the key is absent; otherwise the write rejects with ERR_CONDITION_FAILED and
   * changes nothing. The check and the write are one atomic step against every other writer.
   */
  ifValue?: Uint8Array | string | null;
}

/** A checked condition: the bytes the key must hold, or null for "absent". */
export interface WriteCondition {
  expected: Uint8Array | null;
}

/** Checks a put's or del's options; null when the write is unconditional. */
export function parseWriteOptions(options: unknown): WriteCondition | null {
  if (options === undefined) return null;
  if (typeof options !== 'object' || options === null)
    throw new LightningError('ERR_BAD_ARGUMENT', 'write options must be an object');
  for (const name of Object.keys(options)) {
    if (name !== 'ifValue')
      throw new LightningError('ERR_BAD_ARGUMENT', `unknown write option ${JSON.stringify(name)}`);
  }
  const { ifValue } = options as { ifValue?: unknown };
  if (ifValue === undefined) return null;
  return { expected: ifValue === null ? null : valueToBytes(ifValue).slice() };
}

/**
 * The function a conditional put (`isDelete` false) or del runs as a single-key transaction: it reads
 * the key at the transaction's snapshot, refuses if the condition does not hold there, and writes.
 * The owner validates the read at commit (serializable isolation), so a concurrent write to the key
 * between the read and the commit makes it a conflict: the transaction runs again, reads the new
 * value and decides again. Of several conditional writes racing on one key with the same condition,
 * exactly one wins.
 */
export function conditionalWrite(
  key: unknown,
  value: unknown,
  isDelete: boolean,
  condition: WriteCondition,
): (tx: Transaction) => void {
  const keyBytes = keyToBytes(key).slice();
  const valueBytes = isDelete ? null : valueToBytes(value).slice();
  return (tx) => {
    const current = tx.get(keyBytes);
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
    if (valueBytes === null) tx.del(keyBytes);
    else tx.put(keyBytes, valueBytes);
  };
}
