import { LightningError } from '../errors.js';

/**
 * ERR_PARTITION_FULL from a tree over a buffer pool, thrown before a write changes anything: the
 * frames not holding unwritten changes cannot take the pages the write may change. `fitsWhenClean`
 * says whether writing the dirty pages back (a page set) makes room, or whether the write needs more
 * frames than the pool has; the page allocator's own ERR_PARTITION_FULL (no page ids left) is not
 * this class, and no page set helps it.
 */
export class FramesShortError extends LightningError {
  readonly fitsWhenClean: boolean;

  constructor(message: string, fitsWhenClean: boolean) {
    super('ERR_PARTITION_FULL', message);
    this.fitsWhenClean = fitsWhenClean;
  }
}

/** The FramesShortError `error` is, or was caused by (a caller may wrap it with its context), or null. */
export function framesShortCause(error: unknown): FramesShortError | null {
  for (let at: unknown = error, depth = 0; at instanceof Error && depth < 8; at = at.cause, depth++) {
    if (at instanceof FramesShortError) return at;
  }
  return null;
}
