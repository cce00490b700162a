import { open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { readdirIfExists, removeQuietly } from '../durable-file.js';
import { xxhashApi } from '../xxhash.js';
import { checkpointHeaderBytes, decodeHeader, parseCheckpointFileName } from './checkpoint-format.js';

export interface CheckpointFileEntry {
  /** The file's name inside the directory. */
  name: string;
  startLsn: bigint;
  /** True for a `.ckp.tmp` file: a checkpoint whose writer never finished (or is still writing). */
  temporary: boolean;
}

/**
 * The checkpoint files in `dir`, in start LSN order; temporary files only when asked for. Other files
 * are ignored. A name says nothing about completeness on its own: the manifest says which checkpoint
 * is current, and readCheckpointHeader whether a file is whole. An absent directory holds none.
 */
export async function listCheckpoints(
  dir: string,
  options: { includeTemporary?: boolean } = {},
): Promise<CheckpointFileEntry[]> {
  const names = await readdirIfExists(dir);
  const found: CheckpointFileEntry[] = [];
  for (const name of names) {
    const parsed = parseCheckpointFileName(name);
    if (parsed === null || (parsed.temporary && options.includeTemporary !== true)) continue;
    found.push({ name, ...parsed });
  }
  return found.sort((a, b) =>
    a.startLsn === b.startLsn ? Number(a.temporary) - Number(b.temporary) : a.startLsn < b.startLsn ? -1 : 1,
  );
}

/**
 * Removes a partition's checkpoint files that the current one supersedes: the file the previous
 * manifest named (`previousFile`, relative to `dir`), and any complete or temporary checkpoint in the
 * current checkpoint's directory with a lower start LSN whose header names this partition. The header
 * check keeps a misconfigured shared directory from losing another partition's files; files the
 * manifest still names are never touched. Call only after the manifest naming `currentFile` is
 * durable. Returns the removed paths relative to `dir`; a file that cannot be removed is left for
 * the next checkpoint's cleanup.
 */
export async function removeSupersededCheckpoints(
  dir: string,
  partition: number,
  currentFile: string,
  currentStartLsn: bigint,
  keep: readonly string[],
  previousFile: string | null,
): Promise<string[]> {
  const kept = new Set(keep.map((file) => resolve(dir, file)));
  const removed: string[] = [];
  if (previousFile !== null && !kept.has(resolve(dir, previousFile))) {
    if (await removeQuietly(join(dir, previousFile))) removed.push(previousFile);
  }
  const folder = dirname(currentFile);
  for (const entry of await listCheckpoints(join(dir, folder), { includeTemporary: true })) {
    if (entry.startLsn >= currentStartLsn) continue;
    const relative = folder === '.' ? entry.name : join(folder, entry.name);
    const path = join(dir, relative);
    if (kept.has(resolve(path)) || removed.includes(relative)) continue;
    if ((await headerPartition(path)) !== partition) continue;
    if (await removeQuietly(path)) removed.push(relative);
  }
  return removed;
}

/** The partition a file's header names, or null when the header is missing or invalid. */
async function headerPartition(path: string): Promise<number | null> {
  const api = await xxhashApi();
  try {
    const handle = await open(path, 'r');
    try {
      const bytes = Buffer.alloc(checkpointHeaderBytes);
      const { bytesRead } = await handle.read(bytes, 0, checkpointHeaderBytes, 0);
      return decodeHeader(api, bytes.subarray(0, bytesRead), path).partition;
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}
