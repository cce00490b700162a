import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import type { DurableMark, LogPosition } from '../checkpoint/manifest.js';
import { removeQuietly } from '../durable-file.js';
import { fileLayer, type LayerFileHandle } from '../file-layer.js';
import { storageCondition, storageConditionError } from '../storage-errors.js';
import { type MarksUndo, PartitionMarks } from './partition-marks.js';
import {
  ensureDirectory,
  listSegments,
  type SegmentContents,
  syncDirectory,
  writeFully,
} from './wal-files.js';
import {
  describeLog,
  encodeSegmentHeader,
  type H32Raw,
  type LogId,
  loadH32Raw,
  segmentFileName,
  segmentHeaderBytes,
  segmentOrdinalMax,
  segmentTargetBytesDefault,
  segmentTargetBytesMax,
  segmentTargetBytesMin,
  validateLogId,
  validatePartition,
  type WalRecordType,
} from './wal-format.js';
import { RecordFramer } from './wal-framer.js';

export interface WalWriterOptions {
  /** Rotate to a new segment after the flush that takes the current one past this size. */
  readonly segmentTargetBytes?: number;
}

/** Counters for metrics. */
export interface WalWriterStats {
  /** Bytes written to segment files, segment headers included. */
  bytesWritten: number;
  /** Flushes that wrote something (one write call each). */
  flushes: number;
  /** fdatasync calls: those flushes asked for, plus those that rotation and segment creation need. */
  syncs: number;
  directorySyncs: number;
  segmentsCreated: number;
  /** How long the last fdatasync took, and when it ended (Date.now()); 0 before the first. */
  lastSyncDurationMs: number;
  lastSyncAtMs: number;
}

/** What a flush added, for taking it back when the disk refuses it. */
interface FlushUndo {
  bytes: number;
  records: number;
  marks: MarksUndo;
}

/** Told of each write and fdatasync as it completes (the owner's metrics); runs on the writer's thread. */
export interface WalObserver {
  written(bytes: number): void;
  synced(durationMs: number): void;
}

/**
 * Appends records to ONE owner's log: every partition the owner serves writes into it, each record
 * tagged with its partition and that partition's LSN (the per-partition views in wal-partition-log.ts
 * keep the sequences). Owner thread only: nothing here is shared.
 *
 * `append` frames records into memory (no I/O, so the owner keeps applying its batch) and `flush`
 * writes everything appended since the last flush with one write call, then optionally one
 * fdatasync: that is group commit, across all the owner's partitions at once. Flushes run strictly
 * one after another, in call order.
 *
 * A writer never appends to a file of an earlier run: `open` takes the new run's epoch, and refuses
 * if its log already has a segment. A previous run may have died mid-write, and extending its file
 * would put new records after a torn one, where a reader must treat the tear as damage instead of a
 * cut-off tail.
 *
 * A flush the disk refuses because it is full or read-only (ENOSPC, EDQUOT, EROFS) is undone: its
 * records are dropped, the segment is cut back to where the flush began, and the flush rejects with
 * ERR_DISK_FULL or ERR_READ_ONLY; the writer stays usable, and the next flush tries again. After any
 * other I/O error (or a failed cut) the writer is failed: the file's state is unknown (a write may be
 * partly on disk; after a failed fsync the kernel may have dropped the dirty pages), so nothing is
 * retried. Every later call rejects with ERR_CLOSED carrying the cause; recovery from the files is the
 * way back.
 */
export class WalWriter {
  readonly dir: string;
  readonly log: LogId;
  readonly #h32Raw: H32Raw;
  readonly #segmentTargetBytes: number;
  readonly #framer: RecordFramer;
  #handle: LayerFileHandle | null = null;
  #segmentOrdinal = -1;
  #segmentBytes = 0;
  #segmentRecords = 0;
  /** The last LSN of each partition written to the open segment. */
  readonly #marks = new PartitionMarks();
  readonly #closedSegments: SegmentContents[] = [];
  /** Records handed to write(2), and records fdatasync covered, since open. */
  #writtenRecords = 0;
  #syncedRecords = 0;
  #flushChain: Promise<void> = Promise.resolve();
  #failure: { cause: unknown } | null = null;
  #closing: Promise<void> | null = null;
  /** Set by the owner to feed its metrics; null costs nothing. */
  observer: WalObserver | null = null;
  readonly #stats: WalWriterStats = {
    bytesWritten: 0,
    flushes: 0,
    syncs: 0,
    directorySyncs: 0,
    segmentsCreated: 0,
    lastSyncDurationMs: 0,
    lastSyncAtMs: 0,
  };

  private constructor(dir: string, log: LogId, h32Raw: H32Raw, targetBytes: number) {
    this.dir = dir;
    this.log = { epoch: log.epoch, worker: log.worker };
    this.#h32Raw = h32Raw;
    this.#segmentTargetBytes = targetBytes;
    this.#framer = new RecordFramer(h32Raw);
  }

  /**
   * Opens a new log in `dir` (created if needed) for the run `log.epoch` and worker `log.worker`.
   * The epoch must be new: a segment of this log already in the directory is ERR_BAD_ARGUMENT, as
   * appending to it would write into a file of an earlier run.
   */
  static async open(dir: string, log: LogId, options: WalWriterOptions = {}): Promise<WalWriter> {
    validateLogId(log);
    const target = options.segmentTargetBytes ?? segmentTargetBytesDefault;
    if (!Number.isSafeInteger(target) || target < segmentTargetBytesMin || target > segmentTargetBytesMax) {
      const range = `${segmentTargetBytesMin}..${segmentTargetBytesMax}`;
      throw new LightningError('ERR_BAD_ARGUMENT', `segmentTargetBytes must be in ${range}, got ${target}`);
    }
    const h32Raw = await loadH32Raw();
    await ensureDirectory(dir);
    for (const segment of await listSegments(dir)) {
      if (segment.name.epoch === log.epoch && segment.name.worker === log.worker) {
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `${segment.path} exists: the ${describeLog(log)} was written before, and a writer never appends to an earlier run's file`,
        );
      }
    }
    const writer = new WalWriter(dir, log, h32Raw, target);
    await writer.#openSegment(0);
    return writer;
  }

  /** Records handed to write(2) since open. */
  get writtenRecords(): number {
    return this.#writtenRecords;
  }

  /** Records made durable by fdatasync since open. */
  get syncedRecords(): number {
    return this.#syncedRecords;
  }

  /** The segment the writer appends to: never removed while the writer is open. */
  get activeSegmentPath(): string {
    return join(this.dir, segmentFileName(this.log, this.#segmentOrdinal));
  }

  /** Segments this writer filled and closed, oldest first, until `forgetClosedSegment` drops them. */
  get closedSegments(): readonly SegmentContents[] {
    return this.#closedSegments;
  }

  /** Drops a closed segment from `closedSegments` once it was removed from the directory. */
  forgetClosedSegment(path: string): void {
    const index = this.#closedSegments.findIndex((segment) => segment.path === path);
    if (index >= 0) this.#closedSegments.splice(index, 1);
  }

  /**
   * The partition's last record made durable by this writer (its LSN and segment), or null if none
   * is: what the partition's manifest may promise recovery will find.
   */
  syncedMark(partition: number): DurableMark | null {
    return this.#marks.syncedMark(partition);
  }

  /**
   * Where the next appended record will lie, or before it: every record appended so far lies before
   * this position (records of a flush in progress may be counted out, never in).
   */
  appendPosition(): LogPosition {
    return {
      file: segmentFileName(this.log, this.#segmentOrdinal),
      offset: this.#segmentBytes + this.#framer.pendingBytes,
    };
  }

  /**
   * A copy of the records appended and not yet handed to a flush, framed as the log holds them
   * (wal-format.ts): what a replication leader publishes before it writes them.
   */
  copyPending(): Uint8Array {
    return this.#framer.copyPending();
  }

  /**
   * Forgets the records appended since the last flush: the replication log refused them, so they
   * must never reach this log either. The caller rolls back its partitions' LSNs (PartitionLog).
   */
  discardPending(): void {
    this.#throwIfUnusable();
    this.#framer.discardPending();
  }

  /** Bytes appended and not yet handed to a flush. */
  get pendingBytes(): number {
    return this.#framer.pendingBytes;
  }

  get segmentBytes(): number {
    return this.#segmentBytes;
  }

  /** A snapshot of the counters. */
  get stats(): Readonly<WalWriterStats> {
    return { ...this.#stats };
  }

  /**
   * Frames one record per payload for `partition`, all of `type`, with consecutive LSNs from
   * `firstLsn` (the partition's sequence, kept by its PartitionLog). No I/O: the records reach the
   * file at the next `flush`. All-or-nothing: a bad argument (ERR_BAD_ARGUMENT) appends nothing.
   * O(total payload bytes).
   */
  append(
    partition: number,
    firstLsn: number,
    type: WalRecordType,
    payloads: readonly Uint8Array[],
  ): { firstLsn: number; lastLsn: number } {
    this.#throwIfUnusable();
    validatePartition(partition);
    return this.#framer.append(partition, firstLsn, type, payloads);
  }

  /**
   * Writes everything appended since the last flush with one write call, then, if `sync`, makes it
   * durable with one fdatasync (which also covers earlier unsynced flushes). A flush called while
   * another runs waits for it: flushes complete in call order, and each writes what was appended
   * until it starts, so it may carry records appended after it was called. Then, if the segment
   * passed its target size, rotates to a new one. ERR_DISK_FULL or ERR_READ_ONLY means none of the
   * batch is in the log and the writer is still usable; any other rejection leaves the writer failed
   * and the durability of the batch unknown.
   */
  flush(sync: boolean): Promise<void> {
    if (typeof sync !== 'boolean')
      return Promise.reject(new LightningError('ERR_BAD_ARGUMENT', 'sync must be a boolean'));
    return this.#refusal() ?? this.#chain(() => this.#flushNow(sync, true));
  }

  /**
   * Makes durable what earlier flushes wrote (one fdatasync, if anything is unsynced), without writing
   * what was appended since: the owner's periodic sync in 'relaxed' mode, which must not take the
   * records of a pass the owner is still staging. A rejection leaves the writer failed.
   */
  syncWritten(): Promise<void> {
    return (
      this.#refusal() ??
      this.#chain(async () => {
        if (this.#failure !== null) this.#throwIfUnusable();
        const handle = this.#handle;
        assert(handle !== null, 'a writer that has not failed has a segment open');
        try {
          await this.#syncWritten(handle);
        } catch (error) {
          this.#failure ??= { cause: error };
          throw error;
        }
      })
    );
  }

  /**
   * Flushes and syncs what was appended, then closes the segment. Idempotent. A writer that failed
   * earlier only closes its file: the failure was reported to the flush that met it.
   */
  close(): Promise<void> {
    this.#closing ??= this.#chain(async () => {
      try {
        // No rotation: a segment opened only to be closed would be a waste, as the next open starts one.
        if (this.#failure === null) await this.#flushNow(true, false);
      } finally {
        await this.#handle?.close();
        this.#handle = null;
      }
    });
    return this.#closing;
  }

  /**
   * Flushes and syncs what was appended and, if the current segment holds records, closes it and
   * starts the next, so that segment removal can take it once every partition checkpointed past it:
   * at a clean close of a database over page files, whose next open then reads none of it. On a full
   * disk the segment stays, and the writer with it (`#rotateUnlessEmpty`).
   */
  startNextSegment(): Promise<void> {
    return (
      this.#refusal() ??
      this.#chain(async () => {
        await this.#flushNow(true, false);
        if (this.#handle !== null) await this.#rotateUnlessEmpty(this.#handle);
      })
    );
  }

  /** A rejection with why the writer takes no more calls (failed or closed), or null if it does. */
  #refusal(): Promise<never> | null {
    try {
      this.#throwIfUnusable();
      return null;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #chain(step: () => Promise<void>): Promise<void> {
    const run = this.#flushChain.then(step);
    this.#flushChain = run.catch(() => undefined);
    return run;
  }

  #throwIfUnusable(): void {
    const writer = `the WAL writer of the ${describeLog(this.log)}`;
    const failure = this.#failure;
    if (failure !== null) throw new LightningError('ERR_CLOSED', `${writer} failed on I/O earlier`, failure);
    if (this.#closing !== null) throw new LightningError('ERR_CLOSED', `${writer} is closed`);
  }

  async #flushNow(sync: boolean, mayRotate: boolean): Promise<void> {
    if (this.#failure !== null) this.#throwIfUnusable();
    const handle = this.#handle;
    assert(handle !== null, 'a writer that has not failed has a segment open');
    // The last good offset: every byte before it was written whole by an earlier flush.
    const goodBytes = this.#segmentBytes;
    let written: FlushUndo | null = null;
    try {
      const batch = this.#framer.take();
      if (batch !== null) {
        try {
          await writeFully(handle, batch.buffer, batch.bytes, this.#segmentBytes);
        } finally {
          this.#framer.recycle(batch.buffer);
        }
        const segment = segmentFileName(this.log, this.#segmentOrdinal);
        written = {
          bytes: batch.bytes,
          records: batch.records,
          marks: this.#marks.written(batch.lastLsns, segment),
        };
        this.#segmentBytes += batch.bytes;
        this.#stats.bytesWritten += batch.bytes;
        this.#stats.flushes++;
        this.#writtenRecords += batch.records;
        this.#segmentRecords += batch.records;
        this.observer?.written(batch.bytes);
      }
      if (sync) await this.#syncWritten(handle);
    } catch (error) {
      const condition = storageConditionError(error, `writing the log ${this.activeSegmentPath}`);
      if (condition === null) {
        this.#failure ??= { cause: error };
        throw error;
      }
      await this.#cutBack(handle, goodBytes, written, error);
      throw condition;
    }
    if (mayRotate && this.#segmentBytes > this.#segmentTargetBytes) await this.#rotateUnlessEmpty(handle);
  }

  /**
   * Rotates, if the segment holds a record (a log never fills with empty segments). With no room for
   * the next segment, the writer keeps appending to this one, whose records are durable, and the next
   * call tries again.
   */
  async #rotateUnlessEmpty(handle: LayerFileHandle): Promise<void> {
    if (this.#segmentRecords === 0) return;
    try {
      await this.#rotate(handle);
    } catch (error) {
      if (storageCondition(error) === null || this.#handle !== handle) {
        this.#failure ??= { cause: error };
        throw error;
      }
    }
  }

  /**
   * Undoes a flush the disk refused (full or read-only): the records it framed are dropped, and the
   * segment is cut back to `goodBytes`, where the previous flush ended, so that bytes of a write that
   * partly landed can never sit before the records of a later flush. If even the cut fails, the file
   * cannot be trusted to take more: the writer fails, as after any other I/O error.
   */
  async #cutBack(
    handle: LayerFileHandle,
    goodBytes: number,
    written: FlushUndo | null,
    cause: unknown,
  ): Promise<void> {
    try {
      await handle.truncate(goodBytes);
    } catch (error) {
      // Thrown as a plain error, whatever the cut's errno: the owner must stop, not retry.
      const failure = new Error(
        `cutting the log ${this.activeSegmentPath} back to ${goodBytes} bytes failed`,
        {
          cause: new AggregateError([cause, error]),
        },
      );
      this.#failure ??= { cause: failure };
      throw failure;
    }
    this.#segmentBytes = goodBytes;
    if (written === null) return;
    this.#stats.bytesWritten -= written.bytes;
    this.#writtenRecords -= written.records;
    this.#segmentRecords -= written.records;
    if (this.#syncedRecords > this.#writtenRecords) this.#syncedRecords = this.#writtenRecords;
    this.#marks.undo(written.marks);
  }

  async #syncWritten(handle: LayerFileHandle): Promise<void> {
    if (this.#syncedRecords === this.#writtenRecords) return;
    const written = this.#writtenRecords;
    await this.#datasync(handle);
    this.#syncedRecords = written;
    // Nothing is written while a sync runs (flushes are chained), so every written mark is durable.
    this.#marks.synced();
  }

  async #datasync(handle: LayerFileHandle): Promise<void> {
    const startMs = performance.now();
    await handle.datasync();
    this.#stats.lastSyncDurationMs = performance.now() - startMs;
    this.#stats.lastSyncAtMs = Date.now();
    this.#stats.syncs++;
    this.observer?.synced(this.#stats.lastSyncDurationMs);
  }

  /**
   * Closes the full segment and starts the next. The old segment is synced first even when flushes
   * do not sync: once a later segment exists, a reader takes every earlier one as complete, so an
   * earlier segment must never lose its end in a power loss.
   */
  async #rotate(old: LayerFileHandle): Promise<void> {
    await this.#syncWritten(old);
    const closed: SegmentContents = {
      path: this.activeSegmentPath,
      log: this.log,
      ordinal: this.#segmentOrdinal,
      lastLsns: this.#marks.segmentLastLsns,
    };
    assert(this.#segmentOrdinal < segmentOrdinalMax, 'a log has fewer than 2^32 segments');
    await this.#openSegment(this.#segmentOrdinal + 1);
    this.#closedSegments.push(closed);
    await old.close();
  }

  /**
   * Creates a segment (failing if the name exists) and makes it durable before any record goes in:
   * its header is synced, then the directory entry. A crash in between leaves a newest segment with
   * no records or a partial header, which a reader reports as a torn tail.
   */
  async #openSegment(ordinal: number): Promise<void> {
    const path = join(this.dir, segmentFileName(this.log, ordinal));
    const handle = await fileLayer().open(path, 'wx');
    try {
      const header = encodeSegmentHeader(this.#h32Raw, this.log, ordinal);
      await writeFully(handle, header, segmentHeaderBytes, 0);
      await this.#datasync(handle);
      await syncDirectory(this.dir);
      this.#stats.directorySyncs++;
    } catch (error) {
      await handle.close();
      // A segment that never got its header (the disk was full, say) would read as a torn newest
      // segment and block the next attempt to create it: it goes.
      await removeQuietly(path);
      throw error;
    }
    this.#handle = handle;
    this.#segmentOrdinal = ordinal;
    this.#segmentBytes = segmentHeaderBytes;
    this.#segmentRecords = 0;
    this.#marks.newSegment();
    this.#stats.bytesWritten += segmentHeaderBytes;
    this.#stats.segmentsCreated++;
    this.observer?.written(segmentHeaderBytes);
  }
}
