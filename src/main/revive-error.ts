import { LightningError, type LightningErrorCode } from '../shared-memory/index.js';

/**
 * An error thrown in a worker reaches this thread through comlink as a plain Error: its class and
 * `code` are lost, but a LightningError's message starts with its code. This gives it back its
 * type, so e.g. recovery's ERR_CORRUPTION reaches the caller of open() as ERR_CORRUPTION.
 */
export function reviveLightningError(error: unknown): LightningError | null {
  if (error instanceof LightningError) return error;
  if (!(error instanceof Error)) return null;
  const match = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(error.message);
  if (match === null) return null;
  // A full or read-only disk names its errno in the message: the cause gets it back as its code.
  const errno = /\((ENOSPC|EDQUOT|EROFS)\)/.exec(match[2]!)?.[1];
  if (errno !== undefined && (error as NodeJS.ErrnoException).code === undefined)
    Object.assign(error, { code: errno });
  return new LightningError(match[1] as LightningErrorCode, match[2]!, { cause: error });
}
