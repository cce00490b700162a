import { LightningError } from './errors.js';
import { keyBytesMax, valueBytesMax } from './limits.js';

/**
 * Three-way comparison of a[aStart, aStart+aLength) with b[bStart, bStart+bLength), as unsigned bytes
 * (memcmp order, shorter prefix first). Plain loop: for short keys it beats subarray + Buffer.compare,
 * which allocates two views per call.
 */
export function compareBytes(
  a: Uint8Array,
  aStart: number,
  aLength: number,
  b: Uint8Array,
  bStart: number,
  bLength: number,
): number {
  const n = Math.min(aLength, bLength);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d !== 0) return d;
  }
  return aLength - bLength;
}

/**
 * A string naming a byte sequence one-to-one (each byte one latin1 character), to use bytes as
 * Map keys.
 */
export function bytesName(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Converts a caller's key to bytes, checking its type and size. Strings are UTF-8. */
export function keyToBytes(key: unknown, what = 'key'): Uint8Array {
  const bytes = toBytes(key, what);
  if (bytes.length > keyBytesMax) {
    throw new LightningError(
      'ERR_KEY_TOO_LARGE',
      `${what} is ${bytes.length} bytes; the limit is ${keyBytesMax}`,
    );
  }
  return bytes;
}

/**
 * Where string keys of reads and writes are encoded: large enough for the UTF-8 of any string of at
 * most keyBytesMax UTF-16 units (3 bytes each at most). One per thread (module state is per thread).
 */
const keyScratch = Buffer.allocUnsafe(keyBytesMax * 3);
/** keyScratchViews[n]: the scratch's first n bytes, made once, so encoding a key allocates nothing. */
const keyScratchViews: Buffer[] = [];

/**
 * Like keyToBytes, but a string key is encoded into this thread's key scratch, and the view returned
 * is valid only until the next call: for a read or a write that is done with the key before it
 * returns (a write copies it into its ring), never for one that keeps it.
 */
export function keyToScratchBytes(key: unknown): Uint8Array {
  if (typeof key !== 'string' || key.length > keyBytesMax) return keyToBytes(key);
  const length = keyScratch.write(key, 0, 'utf8');
  if (length > keyBytesMax) {
    throw new LightningError('ERR_KEY_TOO_LARGE', `key is ${length} bytes; the limit is ${keyBytesMax}`);
  }
  let view = keyScratchViews[length];
  if (view === undefined) {
    view = keyScratch.subarray(0, length);
    keyScratchViews[length] = view;
  }
  return view;
}

/** Converts a caller's value to bytes, checking its type and size. Strings are UTF-8. */
export function valueToBytes(value: unknown): Uint8Array {
  const bytes = toBytes(value, 'value');
  if (bytes.length > valueBytesMax) {
    throw new LightningError(
      'ERR_VALUE_TOO_LARGE',
      `value is ${bytes.length} bytes; the limit is ${valueBytesMax}`,
    );
  }
  return bytes;
}

function toBytes(input: unknown, what: string): Uint8Array {
  if (input instanceof Uint8Array) return input;
  // Buffer.from is about twice as fast as TextEncoder.encode for short strings on Node 20.
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  const got = input === null ? 'null' : typeof input;
  throw new LightningError('ERR_BAD_ARGUMENT', `${what} must be a string or Uint8Array, got ${got}`);
}
