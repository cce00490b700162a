import type { DurableMark } from '../checkpoint/manifest.js';

/**
 * What a log writer knows of each partition's records in its log: the last LSN in the current
 * segment (what segment removal needs), and the last record written and the last one synced, with
 * the segment holding it (the durable mark a manifest may promise). A flush the disk refuses is
 * undone with the token `written` returns. Owner thread only.
 */
export class PartitionMarks {
  #segmentLastLsns = new Map<number, number>();
  readonly #written = new Map<number, DurableMark>();
  readonly #synced = new Map<number, DurableMark>();

  /** The last LSN of each partition in the current segment. */
  get segmentLastLsns(): Map<number, number> {
    return this.#segmentLastLsns;
  }

  /** A new segment: it holds no record yet. Returns the closed segment's last LSNs. */
  newSegment(): Map<number, number> {
    const closed = this.#segmentLastLsns;
    this.#segmentLastLsns = new Map();
    return closed;
  }

  /** A flush wrote these partitions' records, up to these LSNs, into `segment`; returns how to undo it. */
  written(lastLsns: ReadonlyMap<number, number>, segment: string): MarksUndo {
    const undo: MarksUndo = new Map();
    for (const [partition, lastLsn] of lastLsns) {
      undo.set(partition, {
        lastLsn: this.#segmentLastLsns.get(partition),
        mark: this.#written.get(partition),
      });
      this.#segmentLastLsns.set(partition, lastLsn);
      this.#written.set(partition, { lsn: BigInt(lastLsn), log: segment });
    }
    return undo;
  }

  /** Takes back a flush the disk refused (its bytes were cut from the segment). */
  undo(undo: MarksUndo): void {
    for (const [partition, { lastLsn, mark }] of undo) {
      if (lastLsn === undefined) this.#segmentLastLsns.delete(partition);
      else this.#segmentLastLsns.set(partition, lastLsn);
      if (mark === undefined) this.#written.delete(partition);
      else this.#written.set(partition, mark);
    }
  }

  /** Everything written is on disk now (an fdatasync returned). */
  synced(): void {
    for (const [partition, mark] of this.#written) this.#synced.set(partition, mark);
  }

  /** The partition's last record known durable in this log, or null. */
  syncedMark(partition: number): DurableMark | null {
    return this.#synced.get(partition) ?? null;
  }
}

/** Per partition touched by a flush: its last LSN in the segment and its written mark before it. */
export type MarksUndo = Map<number, { lastLsn: number | undefined; mark: DurableMark | undefined }>;
