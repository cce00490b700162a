import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { kDatabaseWritesRefused, LightningError } from '../shared-memory/index.js';
import { acquireLock } from '../storage/lock-file.js';
import { storageConditionError } from '../storage/storage-errors.js';
import type { WriteChannel } from './write-channel.js';

/** What open() tells a caller whose disk is full or read-only. */
const readOnlyAdvice = 'to read the database, open it with { readOnly: true }';

/**
 * Makes sure the database directory exists: created (with its parents) for a writable open; for a
 * read-only open, which writes nothing, it must exist already. A read-only file system, a missing
 * permission or a path through a file is a clear error naming the path and the real cause.
 */
export async function prepareDatabaseDirectory(directory: string, readOnly: boolean): Promise<void> {
  if (readOnly) {
    await requireDirectory(directory);
    return;
  }
  try {
    await mkdir(directory, { recursive: true });
  } catch (recursiveError) {
    const error = await realMkdirError(directory, recursiveError);
    const condition = storageConditionError(error, `creating the database directory ${directory}`);
    if (condition !== null) throw condition;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `creating the database directory ${directory}: permission denied (${code})`,
        { cause: error },
      );
    }
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `creating the database directory ${directory}: a file is in the way (${code})`,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * The error that stopped a recursive mkdir, found again by creating the first missing directory on
 * its own: node's recursive mkdir reports some failures as the parent's ENOENT (on a read-only file
 * system, for one), which would hide the real cause.
 */
async function realMkdirError(directory: string, error: unknown): Promise<unknown> {
  let missing = directory;
  for (let parent = dirname(missing); parent !== missing; missing = parent, parent = dirname(parent)) {
    try {
      await stat(parent);
      break;
    } catch {
      // Still missing: go up.
    }
  }
  try {
    await mkdir(missing);
  } catch (real) {
    return real;
  }
  return error;
}

async function requireDirectory(directory: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(directory)).isDirectory();
  } catch (error) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `${directory} cannot be opened read-only: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { cause: error },
    );
  }
  if (!isDirectory) throw new LightningError('ERR_BAD_ARGUMENT', `${directory} is not a directory`);
}

/**
 * The directory's lock for a writable open; none for a read-only one, which must not write even the
 * LOCK file (so it works on a read-only file system, and does not keep a writer out). Returns the
 * function that releases it.
 */
export async function lockUnlessReadOnly(directory: string, readOnly: boolean): Promise<() => Promise<void>> {
  if (readOnly) return async () => {};
  try {
    return await acquireLock(directory);
  } catch (error) {
    throw explainOpenFailure(error, directory);
  }
}

/**
 * A failure of open() as the caller should see it: a full or read-only file system (met writing the
 * lock, this run's log, a torn-tail cut, the metadata) is ERR_DISK_FULL / ERR_READ_ONLY naming the
 * directory and saying how to read the database anyway; any other error is returned as it is.
 */
export function explainOpenFailure(error: unknown, directory: string): unknown {
  if (error instanceof LightningError) return error;
  return storageConditionError(error, `opening ${directory} for writing`, readOnlyAdvice) ?? error;
}

/** A read-only open of a directory without a database: it creates nothing. */
export function noDatabaseToRead(directory: string): LightningError {
  return new LightningError(
    'ERR_BAD_ARGUMENT',
    `${directory} holds no database (no LIGHTNING.json), and an open with { readOnly: true } creates nothing`,
  );
}

/**
 * Why a database serves reads only: opened with `{ readOnly: true }`, or opened on a full disk
 * (open() falls back to reading rather than fail, and writes again once space is freed).
 */
export type ReadOnlyCause = 'option' | 'disk-full';

/** A read-only database refuses `what` with this: ERR_READ_ONLY, or ERR_DISK_FULL after a full-disk open. */
export function readOnlyError(
  what: string,
  directory: string,
  cause: ReadOnlyCause = 'option',
): LightningError {
  if (cause === 'disk-full') {
    return new LightningError(
      'ERR_DISK_FULL',
      `${what}: the disk holding ${directory} was full when it was opened, so it serves reads only; it takes writes again once space is freed (looked at every second)`,
    );
  }
  return new LightningError(
    'ERR_READ_ONLY',
    `${what}: ${directory} was opened with { readOnly: true }; reopen it without readOnly to write`,
  );
}

/** Makes every write through these channels reject (a read-only open). */
export function refuseWrites(channels: readonly WriteChannel[], directory: string): void {
  const refusal = readOnlyError('writes and transaction commits are refused', directory);
  for (const channel of channels) channel.fail(refusal);
}

/** Whether a database opened on a full disk still refuses writes (every thread reads the same word). */
export function writesRefusedUntilSpace(databaseControl: Int32Array): boolean {
  return Atomics.load(databaseControl, kDatabaseWritesRefused) !== 0;
}

/** Makes writes through these channels reject while the database refuses writes until space returns. */
export function refuseWritesUntilSpace(
  channels: readonly WriteChannel[],
  directory: string,
  databaseControl: Int32Array,
): void {
  const refusal = readOnlyError('writes and transaction commits are refused', directory, 'disk-full');
  const stillRefused = () => writesRefusedUntilSpace(databaseControl);
  for (const channel of channels) channel.refuseWhile(refusal, stillRefused);
}
