import { open } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import {
  type ChecksummedJsonKind,
  checksumOf,
  decimalU64Pattern,
  type Fail,
  isRecord,
  readChecksummedJson,
  writeChecksummedJson,
} from './checksummed-json.js';
import { xxhashApi } from './xxhash.js';

/**
 * `BACKUP.json`, the file that makes a directory a finished backup: what it holds (the snapshot
 * timestamp, entries and bytes per partition) and every other file of the backup with its size and
 * xxh64. It is written last, atomically, so a directory without it is a backup that never finished.
 * Its own checksum (xxh64 of the canonical JSON of the other fields) detects damage to it.
 */
export const backupDescriptorFileName = 'BACKUP.json';
export const backupFormat = 'lightning-db-backup';
export const backupFormatVersion = 1;

export interface BackupFile {
  /** Relative to the backup directory, `/`-separated. */
  path: string;
  bytes: number;
  /** xxh64 of the whole file, 16 hex digits. */
  xxh64: string;
}

export interface BackupPartition {
  partition: number;
  entries: number;
  /** Key and value bytes of its entries, uncompressed. */
  dataBytes: number;
  /** Size of its checkpoint file. */
  fileBytes: number;
}

export interface BackupDescriptor {
  /** The snapshot's read timestamp: the backup holds exactly the writes committed at or before it. */
  timestamp: bigint;
  createdAt: string;
  /** The database directory the backup was taken from. */
  source: string;
  partitions: number;
  contents: BackupPartition[];
  files: BackupFile[];
}

const backupKind: ChecksummedJsonKind = {
  format: backupFormat,
  formatVersion: backupFormatVersion,
  description: 'a lightning-db backup descriptor',
  versionName: 'backup format',
};

/** Writes `dir/BACKUP.json` durably: temporary file, fsync, rename, fsync of `dir`. */
export async function writeBackupDescriptor(dir: string, descriptor: BackupDescriptor): Promise<void> {
  checkDescriptor(descriptor, (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `BACKUP.json: ${why}`);
  });
  await writeChecksummedJson(join(dir, backupDescriptorFileName), canonicalObject(descriptor));
}

/**
 * Reads and verifies `dir/BACKUP.json`: null if absent (not a backup, or one that never finished),
 * ERR_CORRUPTION if damaged, ERR_FORMAT_VERSION if written by a newer format.
 */
export async function readBackupDescriptor(dir: string): Promise<BackupDescriptor | null> {
  const read = await readChecksummedJson(join(dir, backupDescriptorFileName), backupKind);
  if (read === null) return null;
  const { fields, fail } = read;
  const descriptor = fromJson(fields, fail);
  checkDescriptor(descriptor, fail);
  if (fields.checksum !== (await checksumOf(canonicalObject(descriptor)))) fail('checksum mismatch');
  return descriptor;
}

/** Chunk size of the hashing (and copying) reads: big enough to amortize a syscall. */
export const fileChunkBytes = 1024 * 1024;

/**
 * Streams `file` once, handing each chunk to `onChunk` (a copy's write, awaited before the next
 * read), and returns its size and xxh64. O(file bytes), one chunk of memory.
 */
export async function hashFile(
  file: string,
  onChunk?: (chunk: Buffer) => Promise<void>,
): Promise<{ bytes: number; xxh64: string }> {
  const hasher = (await xxhashApi()).create64();
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(fileChunkBytes);
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, bytes);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hasher.update(chunk);
      if (onChunk !== undefined) await onChunk(chunk);
      bytes += bytesRead;
    }
    return { bytes, xxh64: hasher.digest().toString(16).padStart(16, '0') };
  } finally {
    await handle.close();
  }
}

function canonicalObject(descriptor: BackupDescriptor) {
  return {
    format: backupFormat,
    formatVersion: backupFormatVersion,
    timestamp: descriptor.timestamp.toString(),
    createdAt: descriptor.createdAt,
    source: descriptor.source,
    partitions: descriptor.partitions,
    contents: descriptor.contents.map(({ partition, entries, dataBytes, fileBytes }) => ({
      partition,
      entries,
      dataBytes,
      fileBytes,
    })),
    files: descriptor.files.map(({ path, bytes, xxh64 }) => ({ path, bytes, xxh64 })),
  };
}

function fromJson(parsed: Record<string, unknown>, fail: Fail): BackupDescriptor {
  const { timestamp, createdAt, source, partitions, contents, files } = parsed;
  if (typeof timestamp !== 'string' || !decimalU64Pattern.test(timestamp)) {
    fail('timestamp is not a decimal u64');
  }
  if (typeof createdAt !== 'string' || typeof source !== 'string') fail('createdAt or source missing');
  if (typeof partitions !== 'number' || !Array.isArray(contents) || !Array.isArray(files)) {
    fail('partitions, contents or files missing');
  }
  const partitionContents = contents.map((value: unknown, i): BackupPartition => {
    if (!isRecord(value)) fail(`contents[${i}] is not an object`);
    const { partition, entries, dataBytes, fileBytes } = value;
    if (
      typeof partition !== 'number' ||
      typeof entries !== 'number' ||
      typeof dataBytes !== 'number' ||
      typeof fileBytes !== 'number'
    ) {
      fail(`contents[${i}] has fields of the wrong type`);
    }
    return { partition, entries, dataBytes, fileBytes };
  });
  const backupFiles = files.map((value: unknown, i): BackupFile => {
    if (!isRecord(value)) fail(`files[${i}] is not an object`);
    const { path, bytes, xxh64 } = value;
    if (typeof path !== 'string' || typeof bytes !== 'number' || typeof xxh64 !== 'string') {
      fail(`files[${i}] has fields of the wrong type`);
    }
    return { path, bytes, xxh64 };
  });
  return {
    timestamp: BigInt(timestamp),
    createdAt,
    source,
    partitions,
    contents: partitionContents,
    files: backupFiles,
  };
}

/**
 * Each partition is described once, in order, and every file path stays inside the backup: restore
 * copies files by these names, so a damaged descriptor must not reach outside the directory.
 */
function checkDescriptor(descriptor: BackupDescriptor, fail: Fail): void {
  const { partitions, contents, files, timestamp } = descriptor;
  if (timestamp < 0n || timestamp >= 1n << 64n) fail(`timestamp ${timestamp} is not a u64`);
  if (!Number.isInteger(partitions) || partitions < 1) fail(`partitions ${partitions}`);
  if (contents.length !== partitions) fail(`${contents.length} partition summaries for ${partitions}`);
  contents.forEach((summary, i) => {
    if (summary.partition !== i) fail(`contents[${i}] describes partition ${summary.partition}`);
    for (const count of [summary.entries, summary.dataBytes, summary.fileBytes]) {
      if (!Number.isSafeInteger(count) || count < 0) fail(`contents[${i}] has a count out of range`);
    }
  });
  const seen = new Set<string>();
  for (const file of files) {
    if (!isSafeRelativePath(file.path)) fail(`file path ${JSON.stringify(file.path)} leaves the backup`);
    if (seen.has(file.path)) fail(`file ${file.path} listed twice`);
    seen.add(file.path);
    if (!Number.isSafeInteger(file.bytes) || file.bytes < 0) fail(`file ${file.path} size ${file.bytes}`);
    if (!/^[0-9a-f]{16}$/.test(file.xxh64)) fail(`file ${file.path} checksum ${JSON.stringify(file.xxh64)}`);
  }
}

function isSafeRelativePath(path: string): boolean {
  if (path.length === 0 || isAbsolute(path) || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}
