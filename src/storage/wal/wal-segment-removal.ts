import { dirname } from 'node:path';
import { removeFileIfExists, type SegmentContents, syncDirectory } from './wal-files.js';
import type { WalWriter } from './wal-writer.js';

/** The LSN a partition's replay starts at (its checkpoint's), or 0 if it has no checkpoint. */
export type CheckpointStart = (partition: number) => Promise<number>;

/**
 * The log segments one owner may remove, and the rule for removing them: a segment goes once every
 * partition with records in it has checkpointed past them (each partition's checkpoint starts its
 * replay after the segment's last LSN of that partition). That is RocksDB's rule for a WAL shared by
 * column families: a log is obsolete below the minimum log number any column family still needs.
 *
 * What an owner may remove: the segments of earlier runs (as recovery read them), and the segments
 * its own writer filled and closed. Never a segment a writer of this run still appends to: the
 * writers' open segments are nobody's candidates, and other owners' segments of this run are not
 * this owner's. Several owners may remove the same earlier-run segment: each decides from the
 * durable manifests, which only move forward, so they agree, and a file already gone is fine.
 *
 * Each log loses segments oldest first and stops at the first one still needed, so a log never has
 * a hole: a missing segment in the middle of a log is then always damage, which readers report.
 *
 * Every owner reads every earlier run's log at its recovery, including segments its own partitions
 * no longer need, and owners recover at the same time: one that recovered first and checkpoints must
 * not remove a segment another is still to open (ENOENT, a failed open). So earlier runs' segments
 * are removed only once `releaseEarlier` was called, when every owner has read them; until then a
 * checkpoint removes only this run's segments, and a later one removes the earlier ones.
 */
export class SegmentRemoval {
  /** Earlier runs' segments not removed yet, oldest log first, each log's in order. */
  #earlier: SegmentContents[];
  readonly #writer: WalWriter;
  /** Every owner has read the earlier runs' logs: their segments may go. */
  #earlierReleased: boolean;

  constructor(earlierSegments: readonly SegmentContents[], writer: WalWriter, earlierReleased = true) {
    this.#earlier = [...earlierSegments];
    this.#writer = writer;
    this.#earlierReleased = earlierReleased;
  }

  /** Every owner has read the earlier runs' logs: the next removal may remove their segments. */
  releaseEarlier(): void {
    this.#earlierReleased = true;
  }

  /** Segments still waiting for their partitions' checkpoints. */
  get candidates(): number {
    return this.#earlier.length + this.#writer.closedSegments.length;
  }

  /**
   * Removes every candidate segment whose partitions have all checkpointed past it, and syncs the
   * directory once if any went. Returns how many this call removed (or found already gone).
   */
  async removeObsolete(checkpointStart: CheckpointStart): Promise<number> {
    const starts = new Map<number, number>();
    const startOf = async (partition: number): Promise<number> => {
      let start = starts.get(partition);
      if (start === undefined) {
        start = await checkpointStart(partition);
        starts.set(partition, start);
      }
      return start;
    };
    const removed: SegmentContents[] = [];
    if (this.#earlierReleased) await removeLogPrefixes(this.#earlier, startOf, removed);
    await removeLogPrefixes(this.#writer.closedSegments, startOf, removed);
    if (removed.length === 0) return 0;
    const gone = new Set(removed.map((segment) => segment.path));
    this.#earlier = this.#earlier.filter((segment) => !gone.has(segment.path));
    for (const path of gone) this.#writer.forgetClosedSegment(path);
    for (const directory of new Set(removed.map((segment) => dirname(segment.path))))
      await syncDirectory(directory);
    return removed.length;
  }
}

/** True if every partition with records in the segment checkpointed past them. */
async function isObsolete(segment: SegmentContents, startOf: CheckpointStart): Promise<boolean> {
  for (const [partition, lastLsn] of segment.lastLsns)
    if ((await startOf(partition)) <= lastLsn) return false;
  return true;
}

/** Removes each log's obsolete segments from its oldest on, stopping at its first needed one. */
async function removeLogPrefixes(
  segments: readonly SegmentContents[],
  startOf: CheckpointStart,
  removed: SegmentContents[],
): Promise<void> {
  let blockedLog: string | null = null;
  for (const segment of segments) {
    const log = `${segment.log.epoch}/${segment.log.worker}`;
    if (log === blockedLog) continue;
    if (!(await isObsolete(segment, startOf))) {
      blockedLog = log;
      continue;
    }
    await removeFileIfExists(segment.path);
    removed.push(segment);
  }
}
