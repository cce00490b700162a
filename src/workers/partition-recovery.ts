import { type BTree, LightningError } from '../shared-memory/index.js';
import { walDirectory } from '../storage/layout.js';
import { readWal, truncateTornTail } from '../storage/wal/index.js';
import { applyOperation } from './apply-operation.js';

export interface PartitionRecovery {
  /** Where the log continues. */
  nextLsn: number;
  replayedRecords: number;
  /** A torn tail that was cut: a write the crash interrupted, never acknowledged. */
  tornTail: { file: string; offset: number; bytesDropped: number } | null;
}

/**
 * Rebuilds one partition's tree from its files: the write-ahead log replayed in LSN order onto the
 * (empty) tree. A torn tail (the last write of a run that died mid-write, which no caller was told
 * had succeeded) is cut; any other damage is ERR_CORRUPTION naming the file and offset, and the
 * database does not open with data silently missing.
 */
export async function recoverPartition(
  databaseDirectory: string,
  partition: number,
  tree: BTree,
): Promise<PartitionRecovery> {
  const directory = walDirectory(databaseDirectory, partition);
  const result = await readWal(directory, partition, {
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
  return { nextLsn: result.nextLsn ?? 1, replayedRecords: result.records, tornTail: result.tornTail };
}
