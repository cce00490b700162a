import { compareBytes, keyToBytes } from '../bytes.js';
import { LightningError } from '../errors.js';

/** Bounds and direction of a range scan, as callers write them. */
export interface RangeOptions {
  gte?: Uint8Array | string;
  gt?: Uint8Array | string;
  lte?: Uint8Array | string;
  lt?: Uint8Array | string;
  /**
   * Every key that starts with these bytes (a string as UTF-8). Not combined with gt, gte, lt or lte:
   * giving both is ERR_BAD_ARGUMENT.
   */
  prefix?: Uint8Array | string;
  reverse?: boolean;
  /** Most entries to return; any non-negative integer, or Infinity. */
  limit?: number;
}

/** The same, checked and encoded. A missing lower/upper bound is null. */
export interface RangeBounds {
  lower: Uint8Array | null;
  lowerInclusive: boolean;
  upper: Uint8Array | null;
  upperInclusive: boolean;
  reverse: boolean;
  limit: number;
}

/** The bounds of a range without its direction and limit. */
export type KeyInterval = Pick<RangeBounds, 'lower' | 'lowerInclusive' | 'upper' | 'upperInclusive'>;

/** True if `key` lies within the interval. */
export function keyWithin(key: Uint8Array, interval: KeyInterval): boolean {
  const { lower, upper } = interval;
  if (lower !== null) {
    const order = compareBytes(key, 0, key.length, lower, 0, lower.length);
    if (order < 0 || (order === 0 && !interval.lowerInclusive)) return false;
  }
  if (upper !== null) {
    const order = compareBytes(key, 0, key.length, upper, 0, upper.length);
    if (order > 0 || (order === 0 && !interval.upperInclusive)) return false;
  }
  return true;
}

/** Validates and encodes range options; throws ERR_BAD_ARGUMENT on anything malformed. */
export function parseRangeOptions(options: RangeOptions | undefined): RangeBounds {
  if (options === undefined) {
    return {
      lower: null,
      lowerInclusive: true,
      upper: null,
      upperInclusive: true,
      reverse: false,
      limit: Infinity,
    };
  }
  if (typeof options !== 'object' || options === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'range options must be an object');
  }
  if (options.gte !== undefined && options.gt !== undefined) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'range options: give gte or gt, not both');
  }
  if (options.lte !== undefined && options.lt !== undefined) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'range options: give lte or lt, not both');
  }
  const limit = options.limit ?? Infinity;
  if (typeof limit !== 'number' || !(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `range limit must be a non-negative integer, got ${String(limit)}`,
    );
  }
  const reverse = options.reverse ?? false;
  if (typeof reverse !== 'boolean') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'range option reverse must be a boolean');
  }
  if (options.prefix !== undefined) return prefixBounds(options, reverse, limit);
  // Explicit undefined checks: `null` is a bad bound, not a missing one.
  const lowerInclusive = options.gte !== undefined;
  const upperInclusive = options.lte !== undefined;
  const lowerRaw = lowerInclusive ? options.gte : options.gt;
  const upperRaw = upperInclusive ? options.lte : options.lt;
  return {
    lower: lowerRaw === undefined ? null : keyToBytes(lowerRaw, lowerInclusive ? 'gte' : 'gt'),
    lowerInclusive,
    upper: upperRaw === undefined ? null : keyToBytes(upperRaw, upperInclusive ? 'lte' : 'lt'),
    upperInclusive,
    reverse,
    limit,
  };
}

/**
 * The bounds of a prefix: from the prefix itself (inclusive) up to its successor, the shortest key
 * above every key that starts with it (exclusive): the prefix with its last byte below 0xff raised
 * by one and the bytes after it dropped. A prefix of only 0xff bytes (or an empty one) has no
 * successor, so its range runs to the end.
 */
function prefixBounds(options: RangeOptions, reverse: boolean, limit: number): RangeBounds {
  if (
    options.gt !== undefined ||
    options.gte !== undefined ||
    options.lt !== undefined ||
    options.lte !== undefined
  ) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'range options: give prefix or gt/gte/lt/lte, not both');
  }
  const prefix = keyToBytes(options.prefix, 'prefix');
  return {
    lower: prefix.length === 0 ? null : prefix,
    lowerInclusive: true,
    upper: prefixSuccessor(prefix),
    upperInclusive: false,
    reverse,
    limit,
  };
}

/** The shortest byte string above every string that starts with `prefix`, or null if none is. */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      // A copy: on a Buffer, slice() is a view, and the caller's prefix must stay as it is.
      const successor = Uint8Array.from(prefix.subarray(0, i + 1));
      successor[i] = prefix[i]! + 1;
      return successor;
    }
  }
  return null;
}
