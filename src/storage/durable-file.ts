import { dirname } from 'node:path';
import { fileLayer, type LayerFileHandle } from './file-layer.js';

/**
 * fsync of a directory. A rename (or a new file) is only durable once the directory entry that names
 * it is on disk: without this, power loss after rename() can bring back the old name, or no file.
 */
export async function syncDirectory(path: string): Promise<void> {
  await fileLayer().syncDirectory(path);
}

/**
 * Moves a finished, fsynced temporary file over `file` and makes the rename durable. rename(2) is
 * atomic, so a reader (or recovery after a crash) sees either the old file or the new one, whole.
 */
export async function publishFile(temporary: string, file: string): Promise<void> {
  await fileLayer().rename(temporary, file);
  await syncDirectory(dirname(file));
}

/**
 * Writes `file` atomically and durably: `<file>.tmp` (truncated if an earlier attempt left one), the
 * content (bytes, or a function that writes through the handle, e.g. streaming blocks), fsync,
 * rename over `file`, fsync of the directory. On failure the temporary file is removed. Returns what
 * the write function returned.
 */
export async function writeFileDurably<T = void>(
  file: string,
  content: string | Uint8Array | ((handle: LayerFileHandle) => Promise<T>),
): Promise<T | undefined> {
  const temporary = `${file}.tmp`;
  const handle = await fileLayer().open(temporary, 'w');
  let result: T | undefined;
  try {
    if (typeof content === 'function') result = await content(handle);
    else await handle.writeFile(content);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await removeQuietly(temporary);
    throw error;
  }
  await handle.close();
  await publishFile(temporary, file);
  return result;
}

/**
 * Unlinks a file whose absence is the goal: an already missing file is fine, and any other failure is
 * left for the next cleanup rather than hiding the error that led here.
 */
export async function removeQuietly(file: string): Promise<boolean> {
  try {
    await fileLayer().unlink(file);
    return true;
  } catch {
    return false;
  }
}

/** A file's text, or null if it does not exist (a database not created yet, a partition never checkpointed). */
export async function readTextIfExists(file: string): Promise<string | null> {
  try {
    return await fileLayer().readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The names in a directory, or none if it does not exist (a partition that has written nothing yet). */
export async function readdirIfExists(directory: string): Promise<string[]> {
  try {
    return await fileLayer().readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/**
 * Creates `dir` (and missing parents) if needed, syncing each parent whose entries changed, so that
 * the directory itself, and with it every file synced into it, survives a power loss.
 */
export async function ensureDirectory(dir: string): Promise<void> {
  const firstCreated = await fileLayer().mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  // mkdir returns the top-most directory it created; every directory from there down to `dir` is
  // new, so the parent of each needs a sync.
  for (let path = dir; ; path = dirname(path)) {
    await syncDirectory(dirname(path));
    if (path === firstCreated || dirname(path) === path) break;
  }
}
