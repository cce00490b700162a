import { assert } from '../../shared-memory/assert.js';
import type { Codec, Encodings } from '../api/encodings.js';
import { storeKeyToBytes, storePrefixBytes } from './store-keys.js';

/**
 * A named store's encodings (`db.store(name, { keyEncoding, valueEncoding })`) are the database's own
 * codecs (api/encodings.ts), applied to the caller's key before the store's prefix is added and to
 * the stored key after it is taken off.
 */

/** A caller's key of a store: encoded by `codec` (none: bytes or a string), checked against the store's limit. */
export function encodeStoreKey(codec: Codec | null, key: unknown, what = 'key'): Uint8Array {
  return storeKeyToBytes(codec === null ? key : codec.encode(key), what);
}

/**
 * The encodings a scan of the store region decodes with: the key codec takes the store's prefix off
 * first, so the merged scan (merged-range.ts) returns the caller's keys, decoded, with no wrapper
 * around it.
 */
export function storeScanEncodings(encodings: Encodings): Encodings {
  const keys = encodings.keys;
  const unprefixed: Codec = {
    name: keys?.name ?? 'binary',
    encode() {
      assert(false, 'a scan only decodes keys');
    },
    decode(bytes) {
      const key = bytes.subarray(storePrefixBytes);
      return keys === null ? key : keys.decode(key);
    },
  };
  return { keys: unprefixed, values: encodings.values };
}

/** Entries of a store scan (prefixed keys, stored values) as the caller sees them. */
export function* decodeStoreEntries(
  entries: Iterable<[Buffer, Buffer]>,
  scan: Encodings,
): Generator<[unknown, unknown]> {
  const keys = scan.keys!;
  const values = scan.values;
  for (const [key, value] of entries)
    yield [keys.decode(key), values === null ? value : values.decode(value)];
}
