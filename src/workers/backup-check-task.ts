/**
 * A piscina task: checks (and, for a restore, copies) one partition of a backup. Each of the
 * partition's files is read once for its size and xxh64 against BACKUP.json (copied and fsynced on the
 * way when `copyTo` is set), then the manifest and every block of the checkpoint are read through the
 * readers open() uses. Runs in a pool thread or on the calling thread (src/main/partition-tasks.ts),
 * so partitions are checked in parallel.
 */

import { checkBackupFile, checkPartitionStructure } from '../storage/backup-check.js';
import type { BackupFile } from '../storage/backup-descriptor.js';

export interface BackupCheckTask {
  /** The backup directory (absolute). */
  dir: string;
  partition: number;
  partitions: number;
  entries: number;
  /** The files of this partition, as BACKUP.json lists them. */
  files: BackupFile[];
  /** Every path BACKUP.json lists. */
  listed: string[];
  /** The directory being restored into, or null to check only. */
  copyTo: string | null;
}

export interface BackupCheckDone {
  partition: number;
  files: number;
  bytes: number;
}

export default async function checkBackupPartition(task: BackupCheckTask): Promise<BackupCheckDone> {
  for (const file of task.files) await checkBackupFile(task.dir, file, task.copyTo);
  await checkPartitionStructure(task.copyTo ?? task.dir, task.dir, {
    partition: task.partition,
    partitions: task.partitions,
    entries: task.entries,
    listed: new Set(task.listed),
  });
  return {
    partition: task.partition,
    files: task.files.length,
    bytes: task.files.reduce((sum, file) => sum + file.bytes, 0),
  };
}

/** What a pool thread answers once it has loaded this module (src/main/partition-tasks.ts). */
export function ready(): true {
  return true;
}
