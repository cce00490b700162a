/**
 * A piscina task: writes one partition of a backup. Reads the partition's trees in shared memory at
 * the backup's snapshot, writes them as one checkpoint (encoded, lz4-compressed, checksummed,
 * fsynced) and a manifest naming it, then reads both files back for their size and xxh64. Runs in a
 * pool thread or on the calling thread (src/main/partition-tasks.ts), so partitions are written in
 * parallel.
 *
 * The caller holds the snapshot for as long as the task runs: the versions visible at its read
 * timestamp are kept in the version store until then, so this thread may read them without a
 * snapshot of its own.
 */
import { join, relative, sep } from 'node:path';
import { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import type { TreeHandle } from '../shared-memory/tree/tree-handle.js';
import { TreeReader } from '../shared-memory/tree/tree-reader.js';
import { type BackupFile, hashFile } from '../storage/backup-descriptor.js';
import {
  type CheckpointBatch,
  type CheckpointEntry,
  manifestFileName,
  writeCheckpoint,
  writeManifest,
} from '../storage/checkpoint/index.js';
import { partitionDirectory } from '../storage/layout.js';
import { attachPartitionTree, type PartitionTreeHandle } from '../storage/page-file/paged-tree-handle.js';
import type { PartitionHash } from '../storage/partition-hash.js';
import { lsnFirst } from '../storage/wal/index.js';

export interface BackupPartitionTask {
  /** The backup directory (absolute). */
  dir: string;
  partition: number;
  partitions: number;
  databaseId: string;
  hash: PartitionHash;
  tree: PartitionTreeHandle;
  versionTree: TreeHandle;
  mvcc: SharedArrayBuffer;
  /** The read timestamp of the snapshot the caller holds. */
  readTimestamp: number;
}

export interface BackupPartitionDone {
  partition: number;
  entries: number;
  /** Key and value bytes of its entries, uncompressed. */
  dataBytes: number;
  /** Size of its checkpoint file. */
  fileBytes: number;
  /** The checkpoint and the manifest, as BACKUP.json lists them. */
  files: BackupFile[];
}

/**
 * Entries, and their bytes, handed to the checkpoint writer at a time: about one 64 KiB block's worth.
 * A batch stays alive while its blocks are compressed and written, and a thread keeps two tasks in
 * flight; small batches keep what survives the young generation's collections small.
 */
const batchEntriesMax = 512;
const batchBytesMax = 64 * 1024;

export default async function backupPartition(task: BackupPartitionTask): Promise<BackupPartitionDone> {
  // A tree over a page file is read through its pool: this thread serves its own misses.
  const tree = await attachPartitionTree(task.tree);
  const reader = new VersionedReader(
    tree.reader,
    TreeReader.attach(task.versionTree),
    MvccState.attach(task.mvcc),
  );
  const directory = partitionDirectory(task.dir, task.partition);
  const counted = { dataBytes: 0 };
  let written: Awaited<ReturnType<typeof writeCheckpoint>>;
  try {
    written = await writeCheckpoint(
      directory,
      task.partition,
      BigInt(lsnFirst),
      batches(reader.range(undefined, task.readTimestamp), counted),
    );
  } finally {
    tree.close();
  }
  await writeManifest(directory, {
    databaseId: task.databaseId,
    partitions: task.partitions,
    hash: task.hash,
    checkpoints: [
      { partition: task.partition, file: written.file, startLsn: BigInt(lsnFirst), entries: written.entries },
    ],
    durable: { lsn: 0n, log: null },
  });
  const files: BackupFile[] = [];
  for (const path of [join(directory, manifestFileName), written.path]) {
    const { bytes, xxh64 } = await hashFile(path);
    files.push({ path: relative(task.dir, path).split(sep).join('/'), bytes, xxh64 });
  }
  return {
    partition: task.partition,
    entries: written.entries,
    dataBytes: counted.dataBytes,
    fileBytes: written.bytes,
    files,
  };
}

/** The partition's entries in key order, in batches bounded in entries and bytes. */
function* batches(
  entries: IterableIterator<[Buffer, Buffer]>,
  counted: { dataBytes: number },
): Generator<CheckpointBatch> {
  let batch: CheckpointEntry[] = [];
  let batchBytes = 0;
  for (const entry of entries) {
    const entryBytes = entry[0].length + entry[1].length;
    batch.push(entry);
    batchBytes += entryBytes;
    counted.dataBytes += entryBytes;
    if (batch.length >= batchEntriesMax || batchBytes >= batchBytesMax) {
      yield batch;
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}

/** What a pool thread answers once it has loaded this module (src/main/partition-tasks.ts). */
export function ready(): true {
  return true;
}
