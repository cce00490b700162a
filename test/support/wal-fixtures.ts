/**
 * Helpers the WAL and CLI tests share: temporary directories removed after each test, reading a
 * partition's records from the logs, opening a log with one partition's view, listing segment
 * files, and damaging a byte in place.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { PartitionLog, readWal, type WalRecord, WalWriter } from '../../src/storage/wal/index.js';

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

/**
 * Every record of `partition` in the logs in `dir` (from `fromLsn`, 1 unless given: the partition's
 * sequence must be gap-free from there), and what readWal returned.
 */
export async function readLog(dir: string, partition: number, fromLsn = 1) {
  const records: WalRecord[] = [];
  const result = await readWal(dir, {
    partitions: new Map([[partition, fromLsn]]),
    onRecord: (record) => void records.push(record),
  });
  return { records, result };
}

/**
 * A log of run `epoch` (worker 0 unless given) with one partition's view on it, for tests of one
 * partition's records: what an owner that owns only `partition` would write.
 */
export async function openPartitionLog(
  dir: string,
  partition: number,
  nextLsn: number,
  options: { epoch?: number; worker?: number; segmentTargetBytes?: number } = {},
): Promise<{ writer: WalWriter; log: PartitionLog }> {
  const { epoch = 1, worker = 0, segmentTargetBytes } = options;
  const writer = await WalWriter.open(
    dir,
    { epoch, worker },
    segmentTargetBytes === undefined ? {} : { segmentTargetBytes },
  );
  return { writer, log: new PartitionLog(writer, partition, nextLsn) };
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
