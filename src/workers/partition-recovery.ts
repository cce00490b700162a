import { join } from 'node:path';
import { type BTree, LightningError } from '../shared-memory/index.js';
import { readCheckpoint, readManifest } from '../storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../storage/layout.js';
import { lsnFirst, readWal, truncateTornTail } from '../storage/wal/index.js';
import { applyOperation } from './apply-operation.js';

export interface PartitionRecovery {
  /** Where the log continues. */
  nextLsn: number;
  /** Entries loaded from the partition's checkpoint (0 without one). */
  checkpointEntries: number;
  replayedRecords: number;
  /** A torn tail that was cut: a write the crash interrupted, never acknowledged. */
  tornTail: { file: string; offset: number; bytesDropped: number } | null;
}

/**
 * Rebuilds one partition's tree from its files: the checkpoint the partition's manifest names (if
 * any), then the write-ahead log from the checkpoint's start LSN, replayed in LSN order. A torn tail (the last write of a run that died mid-write, which no caller was told
 * had succeeded) is cut; any other damage is ERR_CORRUPTION naming the file and offset, and the
 * database does not open with data silently missing.
 */
export async function recoverPartition(
  databaseDirectory: string,
  partition: number,
  tree: BTree,
): Promise<PartitionRecovery> {
  const checkpointDirectory = partitionDirectory(databaseDirectory, partition);
  const manifest = await readManifest(checkpointDirectory);
  const checkpoint = manifest?.checkpoints.find((record) => record.partition === partition) ?? null;
  let checkpointEntries = 0;
  if (checkpoint !== null) {
    for await (const batch of readCheckpoint(join(checkpointDirectory, checkpoint.file))) {
      for (const [key, value] of batch) tree.put(key, value);
      checkpointEntries += batch.length;
    }
  }
  // Without a checkpoint the log must start at the first LSN: a missing first segment is lost data,
  // not a shorter log.
  const fromLsn = checkpoint === null ? lsnFirst : Number(checkpoint.startLsn);
  const directory = walDirectory(databaseDirectory, partition);
  const result = await readWal(directory, partition, {
    fromLsn,
    onRecord: (record) => {
      const payload = record.payload;
      try {
        applyOperation(tree, payload, 0, payload.length);
      } catch (error) {
        throw new LightningError(
          'ERR_CORRUPTION',
          `replaying ${record.file} at byte ${record.offset} (LSN ${record.lsn}) failed: ${String(error)}`,
          { cause: error },
        );
      }
    },
  });
  if (result.tornTail !== null) await truncateTornTail(result.tornTail.file, result.tornTail.offset);
  return {
    nextLsn: result.nextLsn ?? fromLsn,
    checkpointEntries,
    replayedRecords: result.records,
    tornTail: result.tornTail,
  };
}
