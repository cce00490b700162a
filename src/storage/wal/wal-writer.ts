import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import { fileLayer, type LayerFileHandle } from '../file-layer.js';
import { ensureDirectory, fileSizeBytes, listSegments, syncDirectory, writeFully } from './wal-files.js';
import {
  encodeSegmentHeader,
  type H32Raw,
  loadH32Raw,
  lsnFirst,
  segmentFileName,
  segmentHeaderBytes,
  segmentTargetBytesDefault,
  segmentTargetBytesMax,
  segmentTargetBytesMin,
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

/** Told of each write and fdatasync as it completes (the owner's metrics); runs on the writer's thread. */
export interface WalObserver {
  written(bytes: number): void;
  synced(durationMs: number): void;
}

/**
 * Appends records to ONE partition's log directory. Owner thread only: nothing here is shared.
 *
 * `append` frames records into memory (no I/O, so the owner keeps applying its batch) and `flush`
 * writes everything appended since the last flush with one write call, then optionally one
 * fdatasync: that is group commit. Flushes run strictly one after another, in call order.
 *
 * A writer never appends to a segment it did not create: `open` starts a new segment at `nextLsn`.
 * A previous run may have died mid-write, and extending its file would put new records after a torn
 * one, where a reader must treat the tear as damage instead of a cut-off tail.
 *
 * After an I/O error the writer is failed: the file's state is unknown (a write may be partly on disk;
 * after a failed fsync the kernel may have dropped the dirty pages), so nothing is retried. Every
 * later call rejects with ERR_CLOSED carrying the cause; recovery from the files is the way back.
 */
export class WalWriter {
  readonly dir: string;
  readonly partition: number;
  readonly #h32Raw: H32Raw;
  readonly #segmentTargetBytes: number;
  readonly #framer: RecordFramer;
  #handle: LayerFileHandle | null = null;
  #segmentFirstLsn = 0;
  #segmentBytes = 0;
  /** One past the last record handed to write(2), and one past the last record fdatasync covered. */
  #writtenNextLsn: number;
  #syncedNextLsn: number;
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

  private constructor(dir: string, partition: number, nextLsn: number, h32Raw: H32Raw, targetBytes: number) {
    this.dir = dir;
    this.partition = partition;
    this.#h32Raw = h32Raw;
    this.#segmentTargetBytes = targetBytes;
    this.#framer = new RecordFramer(h32Raw, nextLsn);
    this.#writtenNextLsn = nextLsn;
    this.#syncedNextLsn = nextLsn;
  }

  /**
   * Opens the log in `dir` (created if needed) for appending at `nextLsn`, which must be what
   * recovery found: one past the last valid record, after any torn tail was cut. A segment starting
   * after `nextLsn`, or one at `nextLsn` that holds records, means the caller is wrong about the log
   * and is ERR_BAD_ARGUMENT; a segment at `nextLsn` with no records (a run that wrote nothing, or died
   * creating it) is replaced. Earlier segments are not read: the caller vouches for `nextLsn`.
   */
  static async open(
    dir: string,
    partition: number,
    nextLsn: number,
    options: WalWriterOptions = {},
  ): Promise<WalWriter> {
    validatePartition(partition);
    if (!Number.isSafeInteger(nextLsn) || nextLsn < lsnFirst) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `nextLsn must be a safe integer >= ${lsnFirst}, got ${nextLsn}`,
      );
    }
    const target = options.segmentTargetBytes ?? segmentTargetBytesDefault;
    if (!Number.isSafeInteger(target) || target < segmentTargetBytesMin || target > segmentTargetBytesMax) {
      const range = `${segmentTargetBytesMin}..${segmentTargetBytesMax}`;
      throw new LightningError('ERR_BAD_ARGUMENT', `segmentTargetBytes must be in ${range}, got ${target}`);
    }
    const h32Raw = await loadH32Raw();
    await ensureDirectory(dir);
    for (const segment of await listSegments(dir)) {
      if (segment.nameLsn > nextLsn) {
        const later = `starts at LSN ${segment.nameLsn}, after nextLsn ${nextLsn}: the log holds later records`;
        throw new LightningError('ERR_BAD_ARGUMENT', `${segment.path} ${later}`);
      }
      if (segment.nameLsn !== nextLsn) continue;
      if ((await fileSizeBytes(segment.path)) > segmentHeaderBytes) {
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `${segment.path} already holds records from LSN ${nextLsn}`,
        );
      }
      await fileLayer().unlink(segment.path); // This change of the directory is synced with the new segment's entry.
    }
    const writer = new WalWriter(dir, partition, nextLsn, h32Raw, target);
    await writer.#openSegment(nextLsn);
    return writer;
  }

  /** The LSN the next appended record gets. */
  get nextLsn(): number {
    return this.#framer.nextLsn;
  }

  /** Last LSN handed to write(2) (nextLsn at open - 1 if none yet). */
  get writtenLsn(): number {
    return this.#writtenNextLsn - 1;
  }

  /** Last LSN made durable by fdatasync (nextLsn at open - 1 if none yet). */
  get syncedLsn(): number {
    return this.#syncedNextLsn - 1;
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
   * Frames one record per payload, all of `type`, with consecutive LSNs. No I/O: the records reach
   * the file at the next `flush`. All-or-nothing: a bad argument (ERR_BAD_ARGUMENT) appends nothing.
   * O(total payload bytes).
   */
  append(type: WalRecordType, payloads: readonly Uint8Array[]): { firstLsn: number; lastLsn: number } {
    this.#throwIfUnusable();
    return this.#framer.append(type, payloads);
  }

  /**
   * Writes everything appended since the last flush with one write call, then, if `sync`, makes it
   * durable with one fdatasync (which also covers earlier unsynced flushes). A flush called while
   * another runs waits for it: flushes complete in call order, and each writes what was appended
   * until it starts, so it may carry records appended after it was called. Then, if the segment
   * passed its target size, rotates to a new one. A rejection leaves the writer failed and the
   * durability of the batch unknown.
   */
  flush(sync: boolean): Promise<void> {
    try {
      if (typeof sync !== 'boolean') throw new LightningError('ERR_BAD_ARGUMENT', 'sync must be a boolean');
      this.#throwIfUnusable();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#chain(() => this.#flushNow(sync, true));
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

  #chain(step: () => Promise<void>): Promise<void> {
    const run = this.#flushChain.then(step);
    this.#flushChain = run.catch(() => undefined);
    return run;
  }

  #throwIfUnusable(): void {
    const writer = `the WAL writer of partition ${this.partition}`;
    const failure = this.#failure;
    if (failure !== null) throw new LightningError('ERR_CLOSED', `${writer} failed on I/O earlier`, failure);
    if (this.#closing !== null) throw new LightningError('ERR_CLOSED', `${writer} is closed`);
  }

  async #flushNow(sync: boolean, mayRotate: boolean): Promise<void> {
    if (this.#failure !== null) this.#throwIfUnusable();
    const handle = this.#handle;
    assert(handle !== null, 'a writer that has not failed has a segment open');
    try {
      const batch = this.#framer.take();
      if (batch !== null) {
        await writeFully(handle, batch.buffer, batch.bytes, this.#segmentBytes);
        this.#framer.recycle(batch.buffer);
        this.#segmentBytes += batch.bytes;
        this.#stats.bytesWritten += batch.bytes;
        this.#stats.flushes++;
        this.#writtenNextLsn = batch.nextLsn;
        this.observer?.written(batch.bytes);
      }
      if (sync) await this.#syncWritten(handle);
      // Only a segment that holds a record rotates, so the next name (its next LSN) is always new.
      const full = this.#segmentBytes > this.#segmentTargetBytes;
      if (mayRotate && full && this.#writtenNextLsn > this.#segmentFirstLsn) {
        await this.#rotate(handle);
      }
    } catch (error) {
      this.#failure ??= { cause: error };
      throw error;
    }
  }

  async #syncWritten(handle: LayerFileHandle): Promise<void> {
    if (this.#syncedNextLsn === this.#writtenNextLsn) return;
    const nextLsn = this.#writtenNextLsn;
    await this.#datasync(handle);
    this.#syncedNextLsn = nextLsn;
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
   * Closes the full segment and starts the next, named by the next LSN. The old segment is synced
   * first even when flushes do not sync: once a later segment exists, a reader takes every earlier
   * one as complete, so an earlier segment must never lose its end in a power loss.
   */
  async #rotate(old: LayerFileHandle): Promise<void> {
    await this.#syncWritten(old);
    await this.#openSegment(this.#writtenNextLsn);
    await old.close();
  }

  /**
   * Creates a segment (failing if the name exists) and makes it durable before any record goes in:
   * its header is synced, then the directory entry. A crash in between leaves a newest segment with
   * no records or a partial header, which a reader reports as a torn tail.
   */
  async #openSegment(firstLsn: number): Promise<void> {
    const handle = await fileLayer().open(join(this.dir, segmentFileName(firstLsn)), 'wx');
    try {
      const header = encodeSegmentHeader(this.#h32Raw, this.partition, firstLsn);
      await writeFully(handle, header, segmentHeaderBytes, 0);
      await this.#datasync(handle);
      await syncDirectory(this.dir);
      this.#stats.directorySyncs++;
    } catch (error) {
      await handle.close();
      throw error;
    }
    this.#handle = handle;
    this.#segmentFirstLsn = firstLsn;
    this.#segmentBytes = segmentHeaderBytes;
    this.#stats.bytesWritten += segmentHeaderBytes;
    this.#stats.segmentsCreated++;
    this.observer?.written(segmentHeaderBytes);
  }
}
