import type { PartitionCursor } from '../../shared-memory/mvcc/partition-cursor.js';

/**
 * The number of entries the cursors (one per partition, at one snapshot) still see, at most
 * `limit`. Order across partitions does not matter for a count, so each partition is walked on its
 * own, with no merge; only keys are copied (a cursor resumes from its last key), never values.
 */
export function countWithin(cursors: readonly PartitionCursor[], limit: number): number {
  let count = 0;
  for (const cursor of cursors) {
    while (count < limit && !cursor.exhausted) {
      cursor.takeKey();
      cursor.advance();
      count++;
    }
  }
  return count;
}
