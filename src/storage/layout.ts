import { join } from 'node:path';

/**
 * Where a database keeps its files:
 *
 *   <db>/LIGHTNING.json                      metadata: format, partition count (database-metadata.ts)
 *   <db>/wal/wal-<run>-<worker>-<n>.log      the owners' write-ahead logs: one per owner worker per
 *                                            run, records of all its partitions (wal/wal-format.ts)
 *   <db>/partitions/<0007>/checkpoint-*.ckp  a partition's checkpoints, and MANIFEST.json naming the
 *                                            current one (with the LSN its log replay starts at)
 *
 * A partition's checkpoints live under its own directory and its records are tagged with it in the
 * logs, so the worker that owns it this time (which can change between opens) finds it all.
 */
export function partitionDirectory(databaseDirectory: string, partition: number): string {
  return join(databaseDirectory, 'partitions', String(partition).padStart(4, '0'));
}

/** The directory of every owner's write-ahead log. */
export function walDirectory(databaseDirectory: string): string {
  return join(databaseDirectory, 'wal');
}

/** Where WAL format version 1 kept a partition's own log: met only to say how to upgrade. */
export function perPartitionWalDirectory(partitionDirectoryPath: string): string {
  return join(partitionDirectoryPath, 'wal');
}
