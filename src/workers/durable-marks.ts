import { recordDurableMark } from '../storage/checkpoint/index.js';
import { fileLayer } from '../storage/file-layer.js';
import { partitionDirectory } from '../storage/layout.js';
import type { WalWriter } from '../storage/wal/index.js';
import type { OwnerRecovery } from './partition-recovery.js';

/**
 * Each partition's manifest records the last LSN of it known to be durable in the logs (its durable
 * mark), and recovery refuses logs that end before it: a deleted or truncated log is then an error,
 * never a silent loss. The marks move forward when an owner closes cleanly (everything synced) and
 * when a recovery found records past them (after a crash), once the segments holding those are synced.
 * A mark is never written per batch: that would cost a second file write per commit.
 */

/** After recovery: syncs the segments holding records past the marks, then moves the marks there. */
export async function recordRecoveredMarks(
  databaseDirectory: string,
  partitions: readonly number[],
  recovered: OwnerRecovery,
): Promise<void> {
  const moved = partitions.flatMap((partition, i) => {
    const mark = recovered.durableMarks[i];
    return mark === null || mark === undefined ? [] : [{ partition, mark }];
  });
  if (moved.length === 0) return;
  // A crash may have left these records in the page cache only: a power loss now would take them,
  // and the moved mark would then call that damage.
  const movedPartitions = new Set(moved.map(({ partition }) => partition));
  for (const segment of recovered.segments) {
    if ([...segment.lastLsns.keys()].some((partition) => movedPartitions.has(partition))) {
      await syncFile(segment.path);
    }
  }
  await Promise.all(
    moved.map(({ partition, mark }) =>
      recordDurableMark(partitionDirectory(databaseDirectory, partition), mark),
    ),
  );
}

/** At a clean shutdown, after the log's final sync: every partition's last record is durable. */
export async function recordClosingMarks(
  databaseDirectory: string,
  partitions: readonly number[],
  writer: WalWriter,
): Promise<void> {
  await Promise.all(
    partitions.map(async (partition) => {
      const mark = writer.syncedMark(partition);
      if (mark !== null) await recordDurableMark(partitionDirectory(databaseDirectory, partition), mark);
    }),
  );
}

async function syncFile(path: string): Promise<void> {
  const handle = await fileLayer().open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
