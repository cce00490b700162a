import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { isLightningError, LightningError } from '../shared-memory/index.js';
import { type BackupFile, hashFile } from './backup-descriptor.js';
import { manifestFileName, readManifest, verifyCheckpoint } from './checkpoint/index.js';
import { partitionDirectory } from './layout.js';

/**
 * The checks restore and verify make of a backup's files, on whichever thread runs them: each file's
 * size and xxh64 against BACKUP.json (copying it on the way for a restore), and a partition's
 * manifest and checkpoint read through the readers open() uses. Every error is ERR_CORRUPTION naming
 * the backup's file.
 */

/**
 * Reads `file` of the backup in `dir` once, checking its size and xxh64; with `copyTo`, writes it
 * there on the way and fsyncs it. A mismatch or a missing file is ERR_CORRUPTION naming it.
 */
export async function checkBackupFile(dir: string, file: BackupFile, copyTo: string | null): Promise<void> {
  const source = join(dir, ...file.path.split('/'));
  let found: { bytes: number; xxh64: string };
  try {
    if (copyTo === null) found = await hashFile(source);
    else found = await copyFile(source, join(copyTo, ...file.path.split('/')));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LightningError('ERR_CORRUPTION', `${source}: missing (BACKUP.json lists it)`, {
        cause: error,
      });
    }
    throw error;
  }
  if (found.bytes !== file.bytes || found.xxh64 !== file.xxh64) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `${source}: ${found.bytes} bytes with xxh64 ${found.xxh64}; BACKUP.json says ${file.bytes} bytes with xxh64 ${file.xxh64}`,
    );
  }
}

async function copyFile(source: string, destination: string): Promise<{ bytes: number; xxh64: string }> {
  // Opening the source first means a missing backup file creates nothing in the copy.
  await stat(source);
  await mkdir(dirname(destination), { recursive: true });
  const output = await open(destination, 'wx');
  try {
    let position = 0;
    const found = await hashFile(source, async (chunk) => {
      let written = 0;
      while (written < chunk.length) {
        const { bytesWritten } = await output.write(
          chunk,
          written,
          chunk.length - written,
          position + written,
        );
        written += bytesWritten;
      }
      position += chunk.length;
    });
    await output.sync();
    return found;
  } finally {
    await output.close();
  }
}

/** What BACKUP.json says of one partition. */
export interface ExpectedPartition {
  partition: number;
  partitions: number;
  entries: number;
  /** Every file BACKUP.json lists, by relative path. */
  listed: ReadonlySet<string>;
}

/**
 * Opens partition `expected.partition` under `root` the way open() would read it: its manifest and the
 * whole checkpoint it names, every block checksum included, and checks them against BACKUP.json.
 * Errors name the backup file (the files under `root` equal it byte for byte by now).
 */
export async function checkPartitionStructure(
  root: string,
  backup: string,
  expected: ExpectedPartition,
): Promise<void> {
  const { partition, partitions } = expected;
  const inBackup = (path: string) => join(backup, ...path.split('/'));
  const corrupt = (path: string, why: string) =>
    new LightningError('ERR_CORRUPTION', `${inBackup(path)}: ${why}`);
  const directory = partitionDirectory(root, partition);
  const manifestPath = relativePath(partitionDirectory('', partition), manifestFileName);
  const manifest = await named(manifestPath, root, backup, () => readManifest(directory));
  const record = manifest?.checkpoints.find((checkpoint) => checkpoint.partition === partition);
  if (manifest === null || manifest.partitions !== partitions || record === undefined) {
    throw corrupt(manifestPath, `does not name a checkpoint of partition ${partition}`);
  }
  const checkpointPath = relativePath(partitionDirectory('', partition), record.file);
  if (!expected.listed.has(checkpointPath))
    throw corrupt(manifestPath, `names ${record.file}, which BACKUP.json does not list`);
  const info = await named(checkpointPath, root, backup, () =>
    verifyCheckpoint(join(directory, record.file)),
  );
  if (
    info.partition !== partition ||
    info.startLsn !== record.startLsn ||
    info.entryCount !== expected.entries
  ) {
    throw corrupt(
      checkpointPath,
      `holds partition ${info.partition}, start LSN ${info.startLsn}, ${info.entryCount} entries; ` +
        `expected partition ${partition}, start LSN ${record.startLsn}, ${expected.entries} entries`,
    );
  }
}

/** Runs a reader on a copy; its corruption error is re-raised naming the backup file it came from. */
export async function named<T>(
  path: string,
  root: string,
  backup: string,
  read: () => Promise<T>,
): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (root === backup || !isLightningError(error)) throw error;
    const detail = error.message.replace(`${error.code}: `, '');
    throw new LightningError(error.code, `${join(backup, ...path.split('/'))} (as copied): ${detail}`, {
      cause: error,
    });
  }
}

export function relativePath(partitionDir: string, name: string): string {
  return join(partitionDir, name).split(sep).join('/');
}
