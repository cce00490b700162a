import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { LightningError } from '../shared-memory/index.js';
import {
  type BackupFile,
  type BackupPartition,
  backupDescriptorFileName,
  hashFile,
  writeBackupDescriptor,
} from '../storage/backup-descriptor.js';
import {
  type CheckpointBatch,
  type CheckpointEntry,
  manifestFileName,
  writeCheckpoint,
  writeManifest,
} from '../storage/checkpoint/index.js';
import { metadataFileName, readMetadata, writeMetadata } from '../storage/database-metadata.js';
import { syncDirectory } from '../storage/durable-file.js';
import { partitionDirectory } from '../storage/layout.js';
import type { PartitionHash } from '../storage/partition-hash.js';
import { lsnFirst } from '../storage/wal/index.js';
import { BatchFeed } from './batch-feed.js';
import type { PartitionRouter } from './partition-router.js';

/**
 * Online backup: the contents of one snapshot, written as a database directory of its own.
 *
 * Every partition gets one checkpoint of exactly the snapshot's entries that route to it, and a
 * manifest naming that checkpoint with start LSN 1 and no log: opening the backup (or a restored copy)
 * loads the checkpoints and has nothing to replay. Reading at one snapshot is what makes the backup
 * consistent across partitions: it holds every write committed at or before the snapshot's timestamp
 * and none after, whichever partitions a transaction touched. Writes continue meanwhile; the snapshot
 * only keeps the versions it can see from being reclaimed until the backup releases it.
 */

/** What a backup needs of an open database; Database.backup() builds it. */
export interface BackupSource {
  /** The database directory (absolute). */
  path: string;
  partitions: number;
  /** The database's key-to-partition routing. */
  router: PartitionRouter;
  snapshot(): BackupSnapshot;
}

/** The part of a Snapshot a backup reads. */
export interface BackupSnapshot {
  readonly timestamp: bigint;
  range(): IterableIterator<[Buffer, Buffer]>;
  release(): void;
}

export interface BackupProgress {
  /** Entries handed to the checkpoint writers so far. */
  entries: number;
  /** Their key and value bytes, uncompressed. */
  bytes: number;
  /** Partitions whose checkpoint is complete. */
  partitionsDone: number;
  partitions: number;
}

export interface BackupOptions {
  /** Called after each chunk of entries and when a partition's checkpoint completes. */
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
 * Entries read from the snapshot between yields to the event loop, and their byte bound: the walk is
 * synchronous, so this bounds how long the thread's other work (resolving writes) waits.
 */
const chunkEntriesMax = 4096;
const chunkBytesMax = 1024 * 1024;
/** Chunks of batches a partition's writer may fall behind the reader before the reader waits. */
const feedCapacity = 4;
/**
 * Partitions written at once, each with an open file and a 64 KiB block buffer. More partitions than
 * this take several passes over the snapshot, each writing the next group, so memory and file
 * descriptors stay bounded for any partition count.
 */
const partitionsPerPass = 256;

/**
 * Writes a backup of `source` into `dir`, which must not exist or be empty (ERR_BAD_ARGUMENT), and
 * must not lie inside the database directory. Files are fsynced, then their directories; BACKUP.json
 * goes last, so a backup interrupted at any point lacks it and restore refuses it. On failure what was
 * written is removed. O(snapshot bytes); memory about 64 KiB per partition written at once.
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
    const { router } = source;
    const snapshot = source.snapshot();
    const timestamp = snapshot.timestamp;
    let contents: BackupPartition[];
    try {
      contents = await writePartitions(
        target.path,
        snapshot,
        router,
        source.partitions,
        { databaseId, hash },
        options,
      );
    } finally {
      snapshot.release();
    }
    await writeMetadata(target.path, { ...metadata, databaseId });
    await syncDirectory(join(target.path, 'partitions'));
    await syncDirectory(target.path);
    if (target.created) await syncDirectory(dirname(target.path));
    const files = await describeFiles(target.path, source.partitions, contents);
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

/** Writes every partition's checkpoint and manifest, a group of partitions per pass over the snapshot. */
async function writePartitions(
  dir: string,
  snapshot: BackupSnapshot,
  router: PartitionRouter,
  partitions: number,
  identity: { databaseId: string; hash: PartitionHash },
  options: BackupOptions,
): Promise<BackupPartition[]> {
  const progress: BackupProgress = { entries: 0, bytes: 0, partitionsDone: 0, partitions };
  const report = () => options.onProgress?.({ ...progress });
  const contents: BackupPartition[] = [];
  for (let first = 0; first < partitions; first += partitionsPerPass) {
    const end = Math.min(partitions, first + partitionsPerPass);
    const feeds = Array.from({ length: end - first }, () => new BatchFeed<CheckpointBatch>(feedCapacity));
    const dataBytes = new Array<number>(end - first).fill(0);
    const writers = feeds.map(async (feed, i) => {
      const partition = first + i;
      const directory = partitionDirectory(dir, partition);
      try {
        const written = await writeCheckpoint(directory, partition, BigInt(lsnFirst), feed);
        await writeManifest(directory, {
          databaseId: identity.databaseId,
          partitions,
          hash: identity.hash,
          checkpoints: [
            { partition, file: written.file, startLsn: BigInt(lsnFirst), entries: written.entries },
          ],
          durable: { lsn: 0n, log: null },
        });
        progress.partitionsDone++;
        report();
        return { partition, entries: written.entries, dataBytes: dataBytes[i]!, fileBytes: written.bytes };
      } catch (error) {
        // The reader must not wait for room in a feed nobody drains any more.
        for (const other of feeds) other.abort(error);
        throw error;
      }
    });
    // Settled below, after the pass; until then a failure must not count as an unhandled rejection.
    for (const writer of writers) writer.catch(() => {});
    try {
      await feedPass(snapshot, router, first, feeds, dataBytes, progress, report);
      for (const feed of feeds) feed.end();
    } catch (error) {
      for (const feed of feeds) feed.abort(error);
    }
    const settled = await Promise.allSettled(writers);
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    for (const result of settled) if (result.status === 'fulfilled') contents.push(result.value);
  }
  return contents;
}

/**
 * One pass over the snapshot in key order: each entry of a partition in [first, first + feeds) goes to
 * that partition's feed. A partition's entries are a subsequence of the sorted stream, so each
 * checkpoint receives its keys in ascending order, as the format requires.
 */
async function feedPass(
  snapshot: BackupSnapshot,
  router: PartitionRouter,
  first: number,
  feeds: readonly BatchFeed<CheckpointBatch>[],
  dataBytes: number[],
  progress: BackupProgress,
  report: () => void,
): Promise<void> {
  let pending: CheckpointEntry[][] = feeds.map(() => []);
  let chunkEntries = 0;
  let chunkBytes = 0;
  const flush = async () => {
    const batches = pending;
    pending = feeds.map(() => []);
    for (const [i, batch] of batches.entries()) if (batch.length > 0) await feeds[i]!.push(batch);
    progress.entries += chunkEntries;
    progress.bytes += chunkBytes;
    chunkEntries = 0;
    chunkBytes = 0;
    report();
    await yieldToEventLoop();
  };
  for (const entry of snapshot.range()) {
    const i = router.partitionOf(entry[0]) - first;
    if (i < 0 || i >= feeds.length) continue;
    const entryBytes = entry[0].length + entry[1].length;
    pending[i]!.push(entry);
    dataBytes[i]! += entryBytes;
    chunkEntries++;
    chunkBytes += entryBytes;
    if (chunkEntries >= chunkEntriesMax || chunkBytes >= chunkBytesMax) await flush();
  }
  await flush();
}

/** Every file of the backup but BACKUP.json, read back from disk for its size and xxh64. */
async function describeFiles(
  dir: string,
  partitions: number,
  contents: readonly BackupPartition[],
): Promise<BackupFile[]> {
  const paths = [join(dir, metadataFileName)];
  for (let partition = 0; partition < partitions; partition++) {
    const directory = partitionDirectory(dir, partition);
    paths.push(join(directory, manifestFileName));
    for (const name of await readdir(directory)) if (name.endsWith('.ckp')) paths.push(join(directory, name));
  }
  const files: BackupFile[] = [];
  for (const path of paths) {
    const { bytes, xxh64 } = await hashFile(path);
    files.push({ path: relative(dir, path).split(sep).join('/'), bytes, xxh64 });
  }
  const checkpointBytes = contents.reduce((sum, partition) => sum + partition.fileBytes, 0);
  const listedBytes = files.filter((file) => file.path.endsWith('.ckp')).reduce((s, f) => s + f.bytes, 0);
  if (listedBytes !== checkpointBytes) {
    throw new LightningError(
      'ERR_INTERNAL',
      `backup: checkpoints hold ${listedBytes} bytes on disk, ${checkpointBytes} as written`,
    );
  }
  return files;
}
