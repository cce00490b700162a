import type { LogPosition } from '../checkpoint/manifest.js';
import { parseSegmentFileName, type SegmentName } from './wal-format.js';

/**
 * Whether damaged bytes of a log can be skipped: only if no partition can need a record there.
 *
 * Damaged bytes cannot be attributed to a partition (the header that would say which may be the
 * damage), so the bytes are skippable only when every partition's checkpoint covers them. A
 * checkpoint records where its owner's log stood when it began (`coversLog`); every record of that
 * partition before that position, and in every log of earlier runs, is below its start LSN. Logs
 * of other workers of that same run hold none of its records (a partition has one owner per run).
 * A partition without a checkpoint, or whose checkpoint's position is unknown, covers nothing.
 */
export class LogCoverage {
  readonly #positions: readonly ({ name: SegmentName; offset: number } | null)[];

  /** One entry per partition of the database: its checkpoint's log position, or null. */
  constructor(positions: readonly (LogPosition | null | undefined)[]) {
    this.#positions = positions.map((position) => {
      if (position === null || position === undefined) return null;
      const name = parseSegmentFileName(position.file);
      return name === null ? null : { name, offset: position.offset };
    });
  }

  /** A coverage of nothing: no damage is ever skipped. */
  static none(): LogCoverage {
    return new LogCoverage([null]);
  }

  /**
   * True if every byte of segment `segment` before `endOffset` is covered by every partition's
   * checkpoint, so damage there loses nothing a recovery needs.
   */
  covers(segment: SegmentName, endOffset: number): boolean {
    for (const position of this.#positions) {
      if (position === null) return false;
      const { name, offset } = position;
      if (segment.epoch < name.epoch) continue;
      if (segment.epoch > name.epoch) return false;
      if (segment.worker !== name.worker) continue;
      if (segment.ordinal < name.ordinal) continue;
      if (segment.ordinal > name.ordinal || endOffset > offset) return false;
    }
    return true;
  }
}
