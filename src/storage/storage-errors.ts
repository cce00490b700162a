import { LightningError } from '../shared-memory/errors.js';

/**
 * The file-system errors that are operating conditions rather than faults: the disk (or the user's
 * quota) is full, or the file system is mounted read-only. Nothing is damaged when one of them
 * happens, so the database stays readable and a write refused for one of them may succeed later.
 */
export type StorageConditionErrno = 'ENOSPC' | 'EDQUOT' | 'EROFS';

const conditionErrnos: ReadonlySet<string> = new Set<StorageConditionErrno>(['ENOSPC', 'EDQUOT', 'EROFS']);

/** The errno of `error` (or of the error it wraps) if it is a full or read-only file system. */
export function storageCondition(error: unknown): StorageConditionErrno | null {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && conditionErrnos.has(code)) return code as StorageConditionErrno;
    current = current.cause;
  }
  return null;
}

/** What the caller is told for each condition. */
export function describeCondition(errno: StorageConditionErrno): string {
  if (errno === 'EROFS') return 'the file system is read-only (EROFS)';
  if (errno === 'EDQUOT') return 'the disk quota is exhausted (EDQUOT)';
  return 'the disk is full (ENOSPC)';
}

/** ERR_READ_ONLY for EROFS, ERR_DISK_FULL for ENOSPC and EDQUOT. */
export function conditionErrorCode(errno: StorageConditionErrno): 'ERR_DISK_FULL' | 'ERR_READ_ONLY' {
  return errno === 'EROFS' ? 'ERR_READ_ONLY' : 'ERR_DISK_FULL';
}

/**
 * ERR_DISK_FULL or ERR_READ_ONLY for `error` if it is a full or read-only file system, saying what
 * was being done and where (`action`, e.g. "writing the log /db/wal/…"), with `advice` after it and
 * the original error as the cause; null for any other error.
 */
export function storageConditionError(error: unknown, action: string, advice = ''): LightningError | null {
  const errno = storageCondition(error);
  if (errno === null) return null;
  const tail = advice === '' ? '' : `; ${advice}`;
  return new LightningError(conditionErrorCode(errno), `${action}: ${describeCondition(errno)}${tail}`, {
    cause: error,
  });
}

/** Rethrows `error` as ERR_DISK_FULL / ERR_READ_ONLY when it is one of those conditions, else as it is. */
export function rethrowStorageCondition(error: unknown, action: string, advice = ''): never {
  throw storageConditionError(error, action, advice) ?? error;
}
