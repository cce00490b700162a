import { LightningError } from '../../shared-memory/errors.js';
import { lsnFirst, recordBytes, validatePartition, type WalRecordType } from './wal-format.js';
import type { WalWriter } from './wal-writer.js';

/** Counters of one partition's share of its owner's log. */
export interface PartitionLogStats {
  /** Bytes of this partition's records appended to the log (padding included, headers not). */
  bytesWritten: number;
}

/** A partition log's position, from `mark()`. */
export interface PartitionLogMark {
  readonly nextLsn: number;
  readonly bytesWritten: number;
}

/**
 * One partition's view of its owner's log: it keeps the partition's LSN sequence and tags each
 * record with the partition, while the records of all the owner's partitions go to one file, so a
 * batch costs one write and one fdatasync however many partitions it touched. Owner thread only.
 */
export class PartitionLog {
  readonly partition: number;
  /** The owner's log this view appends to. */
  readonly writer: WalWriter;
  #nextLsn: number;
  readonly #stats: PartitionLogStats = { bytesWritten: 0 };

  /** A view of `writer` for `partition`, whose next record gets `nextLsn` (what recovery found). */
  constructor(writer: WalWriter, partition: number, nextLsn: number) {
    validatePartition(partition);
    if (!Number.isSafeInteger(nextLsn) || nextLsn < lsnFirst) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `nextLsn must be a safe integer >= ${lsnFirst}, got ${nextLsn}`,
      );
    }
    this.writer = writer;
    this.partition = partition;
    this.#nextLsn = nextLsn;
  }

  /** The LSN the partition's next record gets. */
  get nextLsn(): number {
    return this.#nextLsn;
  }

  get stats(): Readonly<PartitionLogStats> {
    return { ...this.#stats };
  }

  /**
   * Frames one record per payload, all of `type`, with the partition's next LSNs; see
   * `WalWriter.append`. All-or-nothing. O(total payload bytes).
   */
  append(type: WalRecordType, payloads: readonly Uint8Array[]): { firstLsn: number; lastLsn: number } {
    const range = this.writer.append(this.partition, this.#nextLsn, type, payloads);
    this.#nextLsn = range.lastLsn + 1;
    for (const payload of payloads) this.#stats.bytesWritten += recordBytes(payload.length);
    return range;
  }

  /** Where the partition's sequence stands: what `rollBack` returns to. */
  mark(): PartitionLogMark {
    return { nextLsn: this.#nextLsn, bytesWritten: this.#stats.bytesWritten };
  }

  /**
   * Takes back the LSNs and bytes appended since `mark`: their records never reached the log (the
   * owner's writer dropped them when the disk refused its flush), so the next record reuses the LSN.
   */
  rollBack(mark: PartitionLogMark): void {
    if (mark.nextLsn > this.#nextLsn)
      throw new LightningError('ERR_INTERNAL', 'a partition log rolls back only to an earlier mark');
    this.#nextLsn = mark.nextLsn;
    this.#stats.bytesWritten = mark.bytesWritten;
  }

  /** Flushes the owner's log: this partition's records and every other partition's with them. */
  flush(sync: boolean): Promise<void> {
    return this.writer.flush(sync);
  }
}

/**
 * Flushes the logs behind these partition views, each once: one write and, if `sync`, one
 * fdatasync per owner log, however many of its partitions the batch touched.
 */
export function flushOwnerLogs(logs: Iterable<PartitionLog>, sync: boolean): Promise<void> {
  const writers = new Set<WalWriter>();
  for (const log of logs) writers.add(log.writer);
  return Promise.all([...writers].map((writer) => writer.flush(sync))).then(() => undefined);
}

/** Syncs what the logs behind these partition views wrote, each log once, writing nothing new. */
export function syncOwnerLogs(logs: Iterable<PartitionLog>): Promise<void> {
  const writers = new Set<WalWriter>();
  for (const log of logs) writers.add(log.writer);
  return Promise.all([...writers].map((writer) => writer.syncWritten())).then(() => undefined);
}
