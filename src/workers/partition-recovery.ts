import { join } from 'node:path';
import { type BTree, isLightningError, LightningError } from '../shared-memory/index.js';
import { readCheckpoint, readManifest } from '../storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../storage/layout.js';
import {
  lsnFirst,
  readWal,
  recordTypeDecision,
  recordTypePrepare,
  truncateTornTail,
} from '../storage/wal/index.js';
import { applyOperation } from './apply-operation.js';
import { decisionCommitted, recordTransactionId } from './transaction-records.js';

export interface PartitionRecovery {
  /** Where the log continues. */
  nextLsn: number;
  /** Entries loaded from the partition's checkpoint (0 without one). */
  checkpointEntries: number;
  replayedRecords: number;
  /** A torn tail that was cut: a write the crash interrupted, never acknowledged. */
  tornTail: { file: string; offset: number; bytesDropped: number } | null;
  /**
   * Transactions that were prepared here and had no decision in this log, resolved from the
   * coordinators' decision logs (presumed abort): the owner logs these decisions before serving.
   */
  resolved: { transactionId: number; committed: boolean }[];
}

/**
 * Rebuilds one partition's tree from its files: the checkpoint the partition's manifest names, when
 * there is one, then the write-ahead log from the checkpoint's start LSN, replayed in LSN order. A
 * torn tail (the last write of a run that died mid-write, which no caller was told had succeeded) is
 * cut; other damage is ERR_CORRUPTION naming the file and offset, and the database does not open
 * with data silently missing.
 */
export async function recoverPartition(
  databaseDirectory: string,
  partition: number,
  tree: BTree,
  committedTransactions: ReadonlySet<number>,
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
  /** Prepared transactions without a decision yet: their writes, as batch operations. */
  const prepared = new Map<number, Uint8Array>();
  const result = await readWal(directory, partition, {
    fromLsn,
    onRecord: (record) => {
      const payload = record.payload;
      try {
        if (record.type === recordTypePrepare) {
          prepared.set(recordTransactionId(payload), payload.slice(8));
        } else if (record.type === recordTypeDecision) {
          const transactionId = recordTransactionId(payload);
          const writes = prepared.get(transactionId);
          prepared.delete(transactionId);
          if (writes !== undefined && decisionCommitted(payload))
            applyOperation(tree, writes, 0, writes.length);
        } else {
          applyOperation(tree, payload, 0, payload.length);
        }
      } catch (error) {
        // Not damage: the files hold more than this open's partitionBytesMax lets the partition hold.
        if (isLightningError(error, 'ERR_PARTITION_FULL')) {
          throw new LightningError(
            'ERR_PARTITION_FULL',
            `partition ${partition} does not fit in partitionBytesMax while replaying ${record.file} (LSN ${record.lsn}); open with a larger partitionBytesMax`,
            { cause: error },
          );
        }
        throw new LightningError(
          'ERR_CORRUPTION',
          `replaying ${record.file} at byte ${record.offset} (LSN ${record.lsn}) failed: ${String(error)}`,
          { cause: error },
        );
      }
    },
  });
  if (result.tornTail !== null) await truncateTornTail(result.tornTail.file, result.tornTail.offset);
  // In doubt: prepared, then the process died before this partition logged a decision. A decision
  // log naming the transaction means the coordinator decided to commit; otherwise it never did.
  const resolved: PartitionRecovery['resolved'] = [];
  for (const [transactionId, writes] of prepared) {
    const committed = committedTransactions.has(transactionId);
    if (committed) applyOperation(tree, writes, 0, writes.length);
    resolved.push({ transactionId, committed });
  }
  return {
    resolved,
    nextLsn: result.nextLsn ?? fromLsn,
    checkpointEntries,
    replayedRecords: result.records,
    tornTail: result.tornTail,
  };
}
