/**
 * Helpers the WAL and CLI tests share: temporary directories removed after each test, reading a
 * partition's whole log, listing its segment files, and damaging a byte in place.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { readWal, type WalRecord } from '../../src/storage/wal/index.js';

/**
 * Call at the top level of a test file: returns a function that makes a fresh directory under the OS
 * temp directory (named `prefix` + random suffix), and registers an afterEach that removes every
 * directory made during the test.
 */
export function useTemporaryDirectories(prefix: string): () => Promise<string> {
  const directories: string[] = [];
  afterEach(async () => {
    for (const dir of directories.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    directories.push(dir);
    return dir;
  };
}

/** Every record of the log in `dir` (from `fromLsn` when given), and what readWal returned. */
export async function readLog(dir: string, partition: number, fromLsn?: number) {
  const records: WalRecord[] = [];
  const options = fromLsn === undefined ? {} : { fromLsn };
  const result = await readWal(dir, partition, {
    ...options,
    onRecord: (record) => void records.push(record),
  });
  return { records, result };
}

/** The log's segment file names (`wal-*`), oldest first. */
export async function segmentNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith('wal-')).sort();
}

/** The log's segment files (`wal-*`) as paths, oldest first. */
export async function segmentPaths(dir: string): Promise<string[]> {
  return (await segmentNames(dir)).map((name) => join(dir, name));
}

/** XORs the byte at `offset` of `file` with `mask` (0x5a unless given), rewriting the file. */
export async function flipByte(file: string, offset: number, mask = 0x5a): Promise<void> {
  const bytes = await readFile(file);
  bytes[offset] = bytes[offset]! ^ mask;
  await writeFile(file, bytes);
}
