import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import { checkBackupFile, named, relativePath } from '../storage/backup-check.js';
import {
  type BackupDescriptor,
  type BackupFile,
  backupDescriptorFileName,
  readBackupDescriptor,
} from '../storage/backup-descriptor.js';
import { manifestFileName } from '../storage/checkpoint/index.js';
import { metadataFileName, readMetadata } from '../storage/database-metadata.js';
import { syncDirectory } from '../storage/durable-file.js';
import { partitionDirectory } from '../storage/layout.js';
import type { BackupCheckDone, BackupCheckTask } from '../workers/backup-check-task.js';
import { pooledWorkMin, runPartitionTasks } from './partition-tasks.js';

/** A file inside a partition's directory, `partitions/NNNN/...`: that partition's task checks it. */
const partitionFilePattern = /^partitions\/(\d{4})\//;

/**
 * Restore: checks a backup completely and copies it into place as a database directory that opens to
 * exactly the backup's snapshot. Nothing is trusted unchecked: BACKUP.json's own checksum, every
 * file's size and xxh64 (computed while copying, so what is checked is what is copied), then the
 * copy's structure through the readers open() uses (metadata, each manifest, and every block of each
 * checkpoint). The copy is built in a temporary directory beside the target and renamed into place
 * only once all of it verified and is durable, so a failure leaves no target and no partial copy.
 * Each partition's files are checked (and copied) by a task of its own, on the calling thread and, for
 * a large backup, in a piscina pool beside it.
 */

export interface RestoreProgress {
  /** 'copy': reading and checksumming (and copying) files; 'verify': reading the checkpoints through. */
  phase: 'copy' | 'verify';
  /** The file being worked on, relative to the backup directory; '' once the phase is over. */
  file: string;
  /** Files checked (and copied), of those BACKUP.json lists, and their bytes. */
  filesDone: number;
  files: number;
  bytesDone: number;
  bytes: number;
  /** Partitions whose manifest and checkpoint verified. */
  partitionsDone: number;
  partitions: number;
}

/** The progress of one verify or restore, reported to `onProgress` as it moves. */
class Tracker {
  readonly progress: RestoreProgress;
  readonly #onProgress: ((progress: RestoreProgress) => void) | undefined;

  constructor(descriptor: BackupDescriptor, options: RestoreOptions) {
    this.#onProgress = options.onProgress;
    this.progress = {
      phase: 'copy',
      file: '',
      filesDone: 0,
      files: descriptor.files.length,
      bytesDone: 0,
      bytes: descriptor.files.reduce((sum, file) => sum + file.bytes, 0),
      partitionsDone: 0,
      partitions: descriptor.partitions,
    };
  }

  report(change: Partial<RestoreProgress>): void {
    Object.assign(this.progress, change);
    this.#onProgress?.({ ...this.progress });
  }
}

export interface RestoreOptions {
  onProgress?: (progress: RestoreProgress) => void;
}

export interface VerifyBackupResult {
  /** The backup directory (absolute). */
  dir: string;
  /** The snapshot timestamp the backup holds. */
  timestamp: bigint;
  partitions: number;
  entries: number;
  /** Size of the files BACKUP.json lists. */
  bytes: number;
  /** Number of files BACKUP.json lists. */
  files: number;
  durationMs: number;
}

export interface RestoreResult extends VerifyBackupResult {
  /** The restored database directory (absolute). */
  target: string;
}

/**
 * Checks a backup without writing anything: BACKUP.json, every file's size and xxh64, and the
 * metadata, manifests and checkpoints (every block checksum). ERR_CORRUPTION naming the file on any
 * mismatch, a missing file or a backup without BACKUP.json (never finished). O(backup bytes).
 */
export async function verifyBackup(
  backupDir: string,
  options: RestoreOptions = {},
): Promise<VerifyBackupResult> {
  const started = performance.now();
  const { dir, descriptor } = await loadBackup(backupDir, options);
  const tracker = new Tracker(descriptor, options);
  await checkBackup(dir, descriptor, tracker, null);
  return summaryOf(dir, descriptor, started);
}

/**
 * Restores the backup in `backupDir` as the database directory `targetDir`, which must not exist or
 * be empty (ERR_BAD_ARGUMENT). Verifies everything verifyBackup does, on the copy; ERR_CORRUPTION
 * naming the backup file on any mismatch, and then nothing is left behind. O(backup bytes).
 */
export async function restore(
  backupDir: string,
  targetDir: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const started = performance.now();
  const { dir, descriptor } = await loadBackup(backupDir, options);
  const target = await checkTarget(targetDir, dir);
  await mkdir(dirname(target), { recursive: true });
  const temporary = join(dirname(target), `.${basename(target)}.restore-${randomBytes(6).toString('hex')}`);
  await mkdir(temporary);
  try {
    const tracker = new Tracker(descriptor, options);
    await checkBackup(dir, descriptor, tracker, temporary);
    await syncDirectories(temporary, descriptor);
    await rename(temporary, target).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOTEMPTY' || error.code === 'EEXIST' || error.code === 'ENOTDIR') {
        throw new LightningError('ERR_BAD_ARGUMENT', `restore: ${target} is no longer empty`, {
          cause: error,
        });
      }
      throw error;
    });
  } catch (error) {
    await rm(temporary, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(target));
  return { ...summaryOf(dir, descriptor, started), target };
}

async function loadBackup(
  backupDir: string,
  options: RestoreOptions,
): Promise<{ dir: string; descriptor: BackupDescriptor }> {
  if (typeof backupDir !== 'string' || backupDir.trim() === '') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'the backup directory must be a non-empty string');
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'onProgress must be a function');
  }
  const dir = resolve(backupDir);
  const found = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
    throw error;
  });
  if (found === null || !found.isDirectory()) {
    throw new LightningError('ERR_BAD_ARGUMENT', `no backup at ${dir}: it is not a directory`);
  }
  const descriptor = await readBackupDescriptor(dir);
  if (descriptor === null) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `${join(dir, backupDescriptorFileName)} is missing: not a backup, or a backup that never finished ` +
        '(BACKUP.json is written last)',
    );
  }
  const listed = new Set(descriptor.files.map((file) => file.path));
  const required = [metadataFileName];
  for (let partition = 0; partition < descriptor.partitions; partition++) {
    required.push(relativePath(partitionDirectory('', partition), manifestFileName));
  }
  for (const path of required) {
    if (!listed.has(path)) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `${join(dir, backupDescriptorFileName)} does not list ${path}`,
      );
    }
  }
  return { dir, descriptor };
}

async function checkTarget(targetDir: string, backup: string): Promise<string> {
  if (typeof targetDir !== 'string' || targetDir.trim() === '') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'the target directory must be a non-empty string');
  }
  const target = resolve(targetDir);
  if (target === backup || target.startsWith(backup + sep) || backup.startsWith(target + sep)) {
    throw new LightningError('ERR_BAD_ARGUMENT', `restore: ${target} overlaps the backup ${backup}`);
  }
  const existing = await stat(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (existing !== null && (!existing.isDirectory() || (await readdir(target)).length > 0)) {
    throw new LightningError('ERR_BAD_ARGUMENT', `restore: ${target} exists and is not an empty directory`);
  }
  return target;
}

/**
 * Checks every listed file once for its size and xxh64 and reads the metadata, manifests and
 * checkpoints through; with `copyTo`, copies each file there on the way and fsyncs it. The files
 * outside the partitions' directories (the metadata) are checked here first; each partition is then
 * checked (and copied) by a task of its own (src/main/partition-tasks.ts). ERR_CORRUPTION names the
 * backup file.
 */
async function checkBackup(
  dir: string,
  descriptor: BackupDescriptor,
  tracker: Tracker,
  copyTo: string | null,
): Promise<void> {
  const root = copyTo ?? dir;
  const byPartition: BackupFile[][] = Array.from({ length: descriptor.partitions }, () => []);
  const others: BackupFile[] = [];
  for (const file of descriptor.files) {
    const match = partitionFilePattern.exec(file.path);
    const partition = match === null ? -1 : Number(match[1]);
    if (partition >= 0 && partition < descriptor.partitions) byPartition[partition]!.push(file);
    else others.push(file);
  }
  for (const file of others) {
    tracker.report({ phase: 'copy', file: file.path });
    await checkBackupFile(dir, file, copyTo);
    const { filesDone, bytesDone } = tracker.progress;
    tracker.report({ filesDone: filesDone + 1, bytesDone: bytesDone + file.bytes });
  }
  const metadata = await named(metadataFileName, root, dir, () => readMetadata(root));
  if (metadata === null || metadata.partitions !== descriptor.partitions) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `${join(dir, metadataFileName)}: does not describe ${descriptor.partitions} partitions`,
    );
  }
  const listed = descriptor.files.map((file) => file.path);
  const tasks = byPartition.map(
    (files, partition): BackupCheckTask => ({
      dir,
      partition,
      partitions: descriptor.partitions,
      entries: descriptor.contents[partition]!.entries,
      files,
      listed,
      copyTo,
    }),
  );
  const bytes = descriptor.files.reduce((sum, file) => sum + file.bytes, 0);
  await runPartitionTasks<BackupCheckTask, BackupCheckDone>(
    'backup-check-task',
    () => import('../workers/backup-check-task.js'),
    tasks,
    (done) => {
      const { filesDone, bytesDone, partitionsDone } = tracker.progress;
      tracker.report({ phase: 'verify', file: relativePath(partitionDirectory('', done.partition), '') });
      tracker.report({
        filesDone: filesDone + done.files,
        bytesDone: bytesDone + done.bytes,
        partitionsDone: partitionsDone + 1,
      });
    },
    bytes >= pooledWorkMin.checkBytes,
  );
  tracker.report({ file: '' });
}

/** fsyncs every directory of the copy, deepest first, so the whole tree is durable before the rename. */
async function syncDirectories(root: string, descriptor: BackupDescriptor): Promise<void> {
  const directories = new Set<string>();
  for (const file of descriptor.files) {
    const parts = file.path.split('/');
    for (let depth = parts.length - 1; depth > 0; depth--) directories.add(parts.slice(0, depth).join('/'));
  }
  const deepestFirst = [...directories].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const directory of deepestFirst) await syncDirectory(join(root, ...directory.split('/')));
  await syncDirectory(root);
}

function summaryOf(dir: string, descriptor: BackupDescriptor, started: number): VerifyBackupResult {
  return {
    dir,
    timestamp: descriptor.timestamp,
    partitions: descriptor.partitions,
    entries: descriptor.contents.reduce((sum, partition) => sum + partition.entries, 0),
    bytes: descriptor.files.reduce((sum, file) => sum + file.bytes, 0),
    files: descriptor.files.length,
    durationMs: performance.now() - started,
  };
}
