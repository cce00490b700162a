import { recordPageSet } from '../storage/checkpoint/index.js';
import { partitionDirectory } from '../storage/layout.js';
import type { PartitionLog, SegmentRemoval } from '../storage/wal/index.js';
import type { PagedTree } from './paged-tree.js';
import { checkpointStartLsn } from './partition-checkpoint.js';

export interface PagedCheckpointResult {
  partition: number;
  redoLsn: number;
  pagesWritten: number;
  /** The pages' bytes (page 0 and the double-write copies not counted). */
  bytesWritten: number;
  walSegmentsRemoved: number;
}

/**
 * A checkpoint of a partition over a page file: writes its dirty pages as one set at `redoLsn`,
 * records the set in the partition's manifest as its checkpoint, then drops the log segments every
 * partition has checkpointed past. Returns null if a set is being written already.
 *
 * The caller calls it between its passes, with the tree holding every record below `redoLsn` and
 * nothing a replay from there would not apply again, and the timestamp oracle's value now (see
 * PagedTree.writePages). The pages are copied
 * in this call's first synchronous step, so the log position read here is the one they reflect.
 */
export async function checkpointPagedPartition(
  databaseDirectory: string,
  paged: PagedTree,
  log: PartitionLog,
  segmentRemoval: SegmentRemoval,
  redoLsn: number,
  timestampHigh = 0,
): Promise<PagedCheckpointResult | null> {
  const partition = log.partition;
  // Every record of this partition before this position is below redoLsn only if nothing is staged.
  const coversLog = redoLsn === log.nextLsn ? log.writer.appendPosition() : null;
  const written = await paged.writePages(redoLsn, timestampHigh);
  if (written === null) return null;
  await recordPageSet(partitionDirectory(databaseDirectory, partition), partition, BigInt(redoLsn), {
    coversLog,
    durable: log.writer.syncedMark(partition),
  });
  const walSegmentsRemoved = await segmentRemoval.removeObsolete((other) =>
    checkpointStartLsn(databaseDirectory, other),
  );
  return {
    partition,
    redoLsn,
    pagesWritten: written.pagesWritten,
    bytesWritten: written.pagesWritten * paged.pool.pageSizeBytes,
    walSegmentsRemoved,
  };
}
