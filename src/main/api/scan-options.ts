import { LightningError, type RangeOptions } from '../../shared-memory/index.js';
import { type ScanMode, type ScanShape, scanEntries } from '../merged-range.js';

/** Range options of a scan: the bounds, direction and limit, and an optional signal to stop it. */
export interface ScanOptions extends RangeOptions {
  /**
   * Stops the scan when aborted: its snapshot is released at once, and the next step (of for-of or
   * for-await) throws an AbortError (name 'AbortError'). Already aborted: the first step throws.
   */
  signal?: AbortSignal;
}

/** The shape of a scan from its options: what it returns, and its signal if any. */
export function scanShape(options: ScanOptions | undefined, mode: ScanMode = scanEntries): ScanShape {
  const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
  if (signal === undefined) return { mode, signal: null };
  if (!(signal instanceof AbortSignal))
    throw new LightningError('ERR_BAD_ARGUMENT', 'range option signal must be an AbortSignal');
  return { mode, signal };
}

/** What a scan returns: iterable with for-of and with for-await. */
export type ScanIterator<T> = IterableIterator<T> & AsyncIterable<T>;
