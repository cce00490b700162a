import {
  compareBytes,
  keyBytesMax,
  keyToBytes,
  LightningError,
  type RangeOptions,
} from '../../shared-memory/index.js';
import { parseRangeOptions, type RangeBounds } from '../../shared-memory/tree/range-options.js';

/**
 * Where named stores live among the keys of the partitions' trees. Every key that begins with the
 * four bytes FF FF FF FF belongs to the store region; a store's entry is kept under that prefix, the
 * store's id (u16, big-endian, 1 to 65535) and the caller's key, so it is hashed to a partition,
 * logged, checkpointed, backed up and recovered exactly like any other key. Id 0 is the catalog.
 * The default store (the Database's own methods) never reads or writes the region.
 */

/** The first bytes of every key of the store region. */
export const storeRegionPrefix: Uint8Array = Uint8Array.of(0xff, 0xff, 0xff, 0xff);
/** The region's first byte: one comparison tells most keys they are outside it. */
export const storeRegionFirstByte = 0xff;
/** Bytes of a store id after the region prefix. */
export const storeIdBytes = 2;
/** Bytes a store adds in front of its keys: the region prefix and the store id. */
export const storePrefixBytes = storeRegionPrefix.length + storeIdBytes;
/** Largest key of a named store: the engine's key limit less the store's prefix. */
export const storeKeyBytesMax = keyBytesMax - storePrefixBytes;
/** The catalog's store id: its keys are the region prefix, 00 00, then a store's name. */
export const catalogStoreId = 0;
/** Store ids go from 1 to this; they are never reused. */
/** Id 0xFFFF is not given to any store: its region holds replication positions (replication/replica-position.ts). */
export const storeIdMax = 0xfffe;

/**
 * Throws ERR_BAD_ARGUMENT if `key` lies in the store region. Callers test the first byte before
 * calling, so a key outside the region (nearly all keys) pays one comparison.
 */
export function assertOutsideStoreRegion(key: Uint8Array, what = 'key'): void {
  if (key.length >= storeRegionPrefix.length && key[1] === 0xff && key[2] === 0xff && key[3] === 0xff) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `${what} begins with FF FF FF FF, the prefix reserved for named stores (see db.store())`,
    );
  }
}

/** The bytes every key of store `id` begins with. */
export function storePrefix(id: number): Uint8Array {
  const prefix = new Uint8Array(storePrefixBytes);
  prefix.set(storeRegionPrefix);
  prefix[4] = id >>> 8;
  prefix[5] = id & 0xff;
  return prefix;
}

/** `prefix` followed by `key`: the key an entry of a store is kept under. */
export function prefixedKey(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

/** A caller's key of a named store, checked against the store's (smaller) key limit. */
export function storeKeyToBytes(key: unknown, what = 'key'): Uint8Array {
  const bytes = keyToBytes(key, what);
  if (bytes.length > storeKeyBytesMax) {
    throw new LightningError(
      'ERR_KEY_TOO_LARGE',
      `${what} of a named store is ${bytes.length} bytes; the limit is ${storeKeyBytesMax} ` +
        `(${keyBytesMax} less the ${storePrefixBytes} bytes of the store's prefix)`,
    );
  }
  return bytes;
}

/**
 * Range options of the default store, parsed and clipped below the store region: the caller's
 * bounds intersected with "lt FF FF FF FF", so no scan of the default store, forward or reverse,
 * ever reaches a named store's entry. Every default range (Database, Snapshot, Transaction) is
 * parsed here.
 */
export function defaultRangeBounds(options: RangeOptions | undefined): RangeBounds {
  const bounds = parseRangeOptions(options);
  const upper = bounds.upper;
  if (upper === null || compareBytes(upper, 0, upper.length, storeRegionPrefix, 0, 4) >= 0) {
    bounds.upper = storeRegionPrefix;
    bounds.upperInclusive = false;
  }
  return bounds;
}

/**
 * Range options of the store whose keys begin with `prefix`, parsed and mapped into the region: each
 * bound is prefixed, and a missing bound becomes the store's first or last possible key. Bounds are
 * checked against the store's key limit.
 */
export function storeRangeBounds(prefix: Uint8Array, options: RangeOptions | undefined): RangeBounds {
  const bounds = parseRangeOptions(options);
  if (bounds.lower === null) {
    bounds.lower = prefix;
    bounds.lowerInclusive = true;
  } else {
    bounds.lower = prefixedKey(prefix, storeKeyToBytes(bounds.lower, bounds.lowerInclusive ? 'gte' : 'gt'));
  }
  if (bounds.upper === null) {
    const after = prefixSuccessor(prefix);
    bounds.upper = after;
    bounds.upperInclusive = false;
  } else {
    bounds.upper = prefixedKey(prefix, storeKeyToBytes(bounds.upper, bounds.upperInclusive ? 'lte' : 'lt'));
  }
  return bounds;
}

/**
 * The smallest key greater than every key that begins with `prefix`, or null when there is none
 * (a prefix of FF bytes only: then nothing sorts after its keys, and the scan needs no upper bound).
 */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const after = prefix.slice(0, i + 1);
      after[i]! += 1;
      return after;
    }
  }
  return null;
}
