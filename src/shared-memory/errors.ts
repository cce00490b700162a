/**
 * Public error type. Every error the engine raises on purpose is a `LightningError` with a stable
 * `code`; the codes are listed in the README and stay stable within a major version.
 */
export type LightningErrorCode =
  | 'ERR_BAD_ARGUMENT'
  | 'ERR_NOT_FOUND'
  | 'ERR_STORE_DROPPED'
  | 'ERR_KEY_TOO_LARGE'
  | 'ERR_VALUE_TOO_LARGE'
  | 'ERR_PARTITION_FULL'
  | 'ERR_CORRUPTION'
  | 'ERR_FORMAT_VERSION'
  | 'ERR_CLOSED'
  | 'ERR_LOCKED'
  | 'ERR_NOT_SUPPORTED'
  | 'ERR_TX_CONFLICT'
  | 'ERR_CONDITION_FAILED'
  | 'ERR_TOO_MANY_SNAPSHOTS'
  | 'ERR_WORKER_CRASHED'
  | 'ERR_DISK_FULL'
  | 'ERR_READ_ONLY'
  | 'ERR_DEPOSED'
  | 'ERR_REPLICATION'
  | 'ERR_NOT_LEADER'
  | 'ERR_INTERNAL';

export class LightningError extends Error {
  readonly code: LightningErrorCode;

  constructor(code: LightningErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'LightningError';
    this.code = code;
  }
}

export function isLightningError(error: unknown, code?: LightningErrorCode): error is LightningError {
  return error instanceof LightningError && (code === undefined || error.code === code);
}

/** A LightningError's message without the code it repeats in front: for callers that show the code apart. */
export function messageWithoutCode(error: LightningError): string {
  const prefix = `${error.code}: `;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}
