import type { RingConsumer } from '../shared-memory/index.js';
import {
  statusDiskFull,
  statusDiskQuota,
  statusOk,
  statusReadOnlyFileSystem,
} from '../shared-memory/ring/ring-layout.js';
import type { StorageConditionErrno } from '../storage/storage-errors.js';
import type { PartitionLog, PartitionLogMark } from '../storage/wal/index.js';
import type { OperationApplier } from './operation-applier.js';
import type { OwnedPartition } from './owner-loop.js';

/** Where every partition's log sequence stood when a pass began. */
export type PassMarks = Map<PartitionLog, PartitionLogMark>;

export function markPass(partitions: Map<number, OwnedPartition>): PassMarks {
  const marks: PassMarks = new Map();
  for (const owned of partitions.values()) marks.set(owned.log, owned.log.mark());
  return marks;
}

/** The ring status a write refused for `errno` completes with. */
export function refusalStatus(errno: StorageConditionErrno): number {
  if (errno === 'EROFS') return statusReadOnlyFileSystem;
  if (errno === 'EDQUOT') return statusDiskQuota;
  return statusDiskFull;
}

/** What one pass did to one ring: operations completed from `fromSeq` (exclusive) to `toSeq`. */
export interface RingPass {
  consumer: RingConsumer;
  fromSeq: number;
  toSeq: number;
}

/**
 * Undoes a pass whose log flush the disk refused (full, over quota or read-only). The pipeline is
 * durable, then visible: the refused records were staged and logged, never applied, so nothing of
 * the pass is visible yet and it can be taken back whole. The writer already dropped the records and
 * cut its segment back; here each partition's LSN sequence returns to where the pass began, the
 * staged operations and the locks of prepared transactions go (operation-applier), and every
 * operation the pass accepted is completed with the refusal instead, which its caller receives as
 * ERR_DISK_FULL or ERR_READ_ONLY. Operations refused for other reasons (a conflict, a full partition)
 * keep their own status. The next pass simply tries again: once space returns, writes succeed.
 */
export function rollBackPass(
  marks: PassMarks,
  applier: OperationApplier,
  rings: readonly RingPass[],
  refused: number,
): void {
  for (const [log, mark] of marks) log.rollBack(mark);
  applier.rollBackPass();
  for (const { consumer, fromSeq, toSeq } of rings) {
    for (let seq = (fromSeq + 1) | 0; seq !== ((toSeq + 1) | 0); seq = (seq + 1) | 0) {
      if (consumer.statusOf(seq) === statusOk) consumer.setStatus(seq, refused);
    }
  }
}
