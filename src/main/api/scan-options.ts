import { LightningError, type RangeOptions } from '../../shared-memory/index.js';
import { type ScanMode, type ScanShape, scanEntries } from '../merged-range.js';
import type { Bytes } from './encoding-types.js';
import { type Encodings, noEncodings } from './encodings.js';

/** Range options with bounds of the database's key type K (the prefix is always bytes). */
export type KeyRange<K = Bytes> = Omit<RangeOptions, 'gt' | 'gte' | 'lt' | 'lte'> & {
  gt?: K;
  gte?: K;
  lt?: K;
  lte?: K;
};

/** Range options of a scan: the bounds, direction and limit, and an optional signal to stop it. */
export type ScanOptions<K = Bytes> = KeyRange<K> & {
  /**
   * Stops the scan when aborted: its snapshot is released at once, and the next step (of for-of or
   * for-await) throws an AbortError (name 'AbortError'). Already aborted: the first step throws.
   */
  signal?: AbortSignal;
};

/** The shape of a scan from its options: what it returns, and its signal if any. */
export function scanShape(
  options: { signal?: unknown } | undefined,
  mode: ScanMode = scanEntries,
  encodings: Encodings = noEncodings,
): ScanShape {
  const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
  if (signal === undefined) return { mode, signal: null, encodings };
  if (!(signal instanceof AbortSignal))
    throw new LightningError('ERR_BAD_ARGUMENT', 'range option signal must be an AbortSignal');
  return { mode, signal, encodings };
}

/** What a scan returns: iterable with for-of and with for-await. */
export type ScanIterator<T> = IterableIterator<T> & AsyncIterable<T>;
