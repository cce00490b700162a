import { join } from 'node:path';

/**
 * Where a database keeps its files:
 *
 *   <db>/LIGHTNING.json                      metadata: format, partition count (database-metadata.ts)
 *   <db>/partitions/<0007>/wal/wal-*.log     the partition's write-ahead log segments
 *   <db>/partitions/<0007>/checkpoint-*.ckp  its checkpoints, and MANIFEST.json naming the current one
 *
 * Everything of a partition lives under its own directory, so the worker that owns it this time
 * (which can change between opens) needs nothing else.
 */
export function partitionDirectory(databaseDirectory: string, partition: number): string {
  return join(databaseDirectory, 'partitions', String(partition).padStart(4, '0'));
}

export function walDirectory(databaseDirectory: string, partition: number): string {
  return join(partitionDirectory(databaseDirectory, partition), 'wal');
}
