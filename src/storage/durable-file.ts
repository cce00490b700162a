import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * fsync of a directory. A rename (or a new file) is only durable once the directory entry that names
 * it is on disk: without this, power loss after rename() can bring back the old name, or no file.
 */
export async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * Moves a finished, fsynced temporary file over `file` and makes the rename durable. rename(2) is
 * atomic, so a reader (or recovery after a crash) sees either the old file or the new one, whole.
 */
export async function publishFile(temporary: string, file: string): Promise<void> {
  await rename(temporary, file);
  await syncDirectory(dirname(file));
}

/** Writes `data` to `file` atomically and durably: a temporary file, fsync, rename, fsync directory. */
export async function writeFileDurably(file: string, data: string | Uint8Array): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await removeQuietly(temporary);
    throw error;
  }
  await handle.close();
  await publishFile(temporary, file);
}

/**
 * Unlinks a file whose absence is the goal: an already missing file is fine, and any other failure is
 * left for the next cleanup rather than hiding the error that led here.
 */
export async function removeQuietly(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch {
    return false;
  }
}

/** A file's text, or null if it does not exist (a database not created yet, a partition never checkpointed). */
export async function readTextIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The names in a directory, or none if it does not exist (a partition that has written nothing yet). */
export async function readdirIfExists(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
