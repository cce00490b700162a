import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { LightningError, type TreeHandle } from '../shared-memory/index.js';
import {
  type BackupFile,
  type BackupPartition,
  backupDescriptorFileName,
  hashFile,
  writeBackupDescriptor,
} from '../storage/backup-descriptor.js';
import { metadataFileName, readMetadata, writeMetadata } from '../storage/database-metadata.js';
import { syncDirectory } from '../storage/durable-file.js';
import type { PartitionTreeHandle } from '../storage/page-file/paged-tree-handle.js';
import type { PartitionHash } from '../storage/partition-hash.js';
import type { BackupPartitionDone, BackupPartitionTask } from '../workers/backup-partition-task.js';
import { pooledWorkMin, runPartitionTasks } from './partition-tasks.js';

/**
 * Online backup: the contents of one snapshot, written as a database directory of its own.
 *
 * Every partition gets one checkpoint of exactly the snapshot's entries that route to it, and a
 * manifest naming that checkpoint with start LSN 1 and no log: opening the backup (or a restored copy)
 * loads the checkpoints and has nothing to replay. Reading at one snapshot is what makes the backup
 * consistent across partitions: it holds every write committed at or before the snapshot's timestamp
 * and none after, whichever partitions a transaction touched. Writes continue meanwhile; the snapshot
 * only keeps the versions it can see from being reclaimed until the backup releases it.
 *
 * Each partition is written by a task of its own (src/workers/backup-partition-task.ts), on the calling
 * thread and, for a large backup, in a piscina pool beside it (src/main/partition-tasks.ts):
 * the task reads the partition's tree in shared memory at the snapshot's read timestamp (in key order,
 * so nothing is merged across partitions and no key is hashed again), encodes, compresses, fsyncs and
 * checksums its files. The snapshot is held on this thread until every task has finished.
 */

/** What a backup needs of an open database; Database.backup() builds it. */
export interface BackupSource {
  /** The database directory (absolute). */
  path: string;
  partitions: number;
  /** Every partition's tree and version store, and the MVCC state, as the database handle has them. */
  trees: readonly PartitionTreeHandle[];
  versionTrees: readonly TreeHandle[];
  mvcc: SharedArrayBuffer;
  /** Entries in the partitions' trees (heads; an upper bound of what a snapshot sees). */
  headCount(): number;
  snapshot(): BackupSnapshot;
}

/** The part of a Snapshot a backup reads. */
export interface BackupSnapshot {
  readonly timestamp: bigint;
  readonly readTimestamp: number;
  release(): void;
}

export interface BackupProgress {
  /** Entries of the partitions written so far. */
  entries: number;
  /** Their key and value bytes, uncompressed. */
  bytes: number;
  /** Partitions whose checkpoint is complete. */
  partitionsDone: number;
  partitions: number;
}

export interface BackupOptions {
  /** Called when a partition's checkpoint and manifest are written (in completion order). */
  onProgress?: (progress: BackupProgress) => void;
}

export interface BackupResult {
  /** The backup directory (absolute). */
  dir: string;
  /** The snapshot's read timestamp: the backup holds exactly the writes committed at or before it. */
  timestamp: bigint;
  entries: number;
  /** Size of all the backup's files, BACKUP.json included. */
  bytes: number;
  /** Number of files in the backup, BACKUP.json included. */
  files: number;
  durationMs: number;
}

/**
 * Writes a backup of `source` into `dir`, which must not exist or be empty (ERR_BAD_ARGUMENT), and
 * must not lie inside the database directory. Files are fsynced, then their directories; BACKUP.json
 * goes last, so a backup interrupted at any point lacks it and restore refuses it. On failure what was
 * written is removed. O(snapshot bytes); memory about 128 KiB per partition written at once (a batch
 * of entries and a block), with two partitions at once per thread and as many threads as cores.
 */
export async function backupDatabase(
  source: BackupSource,
  dir: string,
  options: BackupOptions = {},
): Promise<BackupResult> {
  const started = performance.now();
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'backup: onProgress must be a function');
  }
  const target = await claimDirectory(dir, source.path);
  try {
    const metadata = await readMetadata(source.path);
    if (metadata === null || metadata.databaseId === null) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `${join(source.path, metadataFileName)} is ${metadata === null ? 'missing' : 'of format version 1 (open the database once to upgrade it)'}`,
      );
    }
    const { databaseId, hash } = metadata;
    const snapshot = source.snapshot();
    const timestamp = snapshot.timestamp;
    let written: BackupPartitionDone[];
    try {
      written = await writePartitions(
        target.path,
        source,
        snapshot.readTimestamp,
        { databaseId, hash },
        options,
      );
    } finally {
      snapshot.release();
    }
    const contents: BackupPartition[] = written.map(({ partition, entries, dataBytes, fileBytes }) => ({
      partition,
      entries,
      dataBytes,
      fileBytes,
    }));
    await writeMetadata(target.path, { ...metadata, databaseId });
    await syncDirectory(join(target.path, 'partitions'));
    await syncDirectory(target.path);
    if (target.created) await syncDirectory(dirname(target.path));
    const files = await describeFiles(target.path, written);
    await writeBackupDescriptor(target.path, {
      timestamp,
      createdAt: new Date().toISOString(),
      source: source.path,
      partitions: source.partitions,
      contents,
      files,
    });
    const descriptorBytes = (await stat(join(target.path, backupDescriptorFileName))).size;
    return {
      dir: target.path,
      timestamp,
      entries: contents.reduce((sum, partition) => sum + partition.entries, 0),
      bytes: files.reduce((sum, file) => sum + file.bytes, descriptorBytes),
      files: files.length + 1,
      durationMs: performance.now() - started,
    };
  } catch (error) {
    await target.discard();
    throw error;
  }
}

interface ClaimedDirectory {
  path: string;
  /** True when the backup created it (then its parent's entry must be made durable too). */
  created: boolean;
  /** Removes what the backup wrote: the directory if it created it, else its contents. */
  discard(): Promise<void>;
}

async function claimDirectory(dir: string, databasePath: string): Promise<ClaimedDirectory> {
  if (typeof dir !== 'string' || dir.trim() === '') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'backup: dir must be a non-empty string');
  }
  const path = resolve(dir);
  const database = resolve(databasePath);
  if (path === database || path.startsWith(database + sep)) {
    throw new LightningError('ERR_BAD_ARGUMENT', `backup: ${path} is inside the database directory`);
  }
  const existing = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (existing !== null && !existing.isDirectory()) {
    throw new LightningError('ERR_BAD_ARGUMENT', `backup: ${path} exists and is not a directory`);
  }
  if (existing !== null && (await readdir(path)).length > 0) {
    throw new LightningError('ERR_BAD_ARGUMENT', `backup: ${path} is not empty`);
  }
  if (existing === null) await mkdir(path, { recursive: true });
  const created = existing === null;
  return {
    path,
    created,
    discard: async () => {
      if (created) await rm(path, { recursive: true, force: true }).catch(() => {});
      else {
        for (const name of await readdir(path).catch(() => [])) {
          await rm(join(path, name), { recursive: true, force: true }).catch(() => {});
        }
      }
    },
  };
}

/** Writes every partition's checkpoint and manifest, one pool task per partition. */
async function writePartitions(
  dir: string,
  source: BackupSource,
  readTimestamp: number,
  identity: { databaseId: string; hash: PartitionHash },
  options: BackupOptions,
): Promise<BackupPartitionDone[]> {
  const { partitions } = source;
  const progress: BackupProgress = { entries: 0, bytes: 0, partitionsDone: 0, partitions };
  const tasks = Array.from(
    { length: partitions },
    (_, partition): BackupPartitionTask => ({
      dir,
      partition,
      partitions,
      databaseId: identity.databaseId,
      hash: identity.hash,
      tree: source.trees[partition]!,
      versionTree: source.versionTrees[partition]!,
      mvcc: source.mvcc,
      readTimestamp,
    }),
  );
  // Counted from the trees' heads (an upper bound of what the snapshot sees): enough to tell a small
  // backup, which threads would only slow down, from one worth spreading over the cores.
  const heads = source.headCount();
  const written = await runPartitionTasks<BackupPartitionTask, BackupPartitionDone>(
    'backup-partition-task',
    () => import('../workers/backup-partition-task.js'),
    tasks,
    (done) => {
      progress.entries += done.entries;
      progress.bytes += done.dataBytes;
      progress.partitionsDone++;
      options.onProgress?.({ ...progress });
    },
    heads >= pooledWorkMin.backupEntries,
  );
  for (const [partition, done] of written.entries()) {
    if (done.partition !== partition) {
      throw new LightningError('ERR_INTERNAL', `backup: task ${partition} wrote partition ${done.partition}`);
    }
  }
  return written;
}

/**
 * Every file of the backup but BACKUP.json with its size and xxh64: the partitions' files as their
 * tasks read them back, and the metadata read back here. The partition directories must hold exactly
 * those files.
 */
async function describeFiles(dir: string, written: readonly BackupPartitionDone[]): Promise<BackupFile[]> {
  const files: BackupFile[] = [{ path: metadataFileName, ...(await hashFile(join(dir, metadataFileName))) }];
  for (const done of written) {
    files.push(...done.files);
    const checkpoints = done.files.filter((file) => file.path.endsWith('.ckp'));
    if (checkpoints.length !== 1 || checkpoints[0]!.bytes !== done.fileBytes) {
      throw new LightningError(
        'ERR_INTERNAL',
        `backup: partition ${done.partition}'s checkpoint is not the ${done.fileBytes} bytes written`,
      );
    }
  }
  return files;
}
