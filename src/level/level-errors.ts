import { isLightningError } from '../index.js';

/** An error with a stable Level code (`LEVEL_*`), as abstract-level's own errors carry. */
export class LevelError extends Error {
  readonly code: string;

  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'LevelError';
    this.code = code;
  }
}

/**
 * The Level error a lightning-db error surfaces as: a key or value over lightning-db's limits is
 * what Level calls an invalid key or value, so it gets Level's code (the original is its cause);
 * any other error keeps its own stable ERR_* code, which Level callers can test the same way.
 */
export function toLevelError(error: unknown): unknown {
  if (!isLightningError(error)) return error;
  if (error.code === 'ERR_KEY_TOO_LARGE') return new LevelError('LEVEL_INVALID_KEY', error.message, error);
  if (error.code === 'ERR_VALUE_TOO_LARGE')
    return new LevelError('LEVEL_INVALID_VALUE', error.message, error);
  return error;
}
