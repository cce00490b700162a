import { keyToBytes, LightningError, type RangeOptions } from '../shared-memory/index.js';
import type { VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import { parseRangeOptions } from '../shared-memory/tree/range-options.js';
import { MergedRange } from './merged-range.js';
import type { PartitionRouter } from './partition-router.js';
import type { SnapshotHold, SnapshotRegistry } from './snapshot-registry.js';

/** What a snapshot reads through: the partitions of one database, on this thread. */
export interface SnapshotSource {
  readers: VersionedReader[];
  router: PartitionRouter;
  registry: SnapshotRegistry;
}

/**
 * A consistent, read-only view of the whole database at one read timestamp: it sees exactly the
 * writes committed at or before it, in every partition, however long it is kept. Release it when done:
 * an open snapshot keeps the versions it can see from being cleaned up.
 */
export class Snapshot {
  readonly #source: SnapshotSource;
  readonly #hold: SnapshotHold;
  readonly #timestamp: number;
  #released = false;

  /**
   * @internal Made by db.snapshot(), a transaction (`countAsLeak` false: it is always released) and
   * a db.range() scan (`scan`).
   */
  constructor(source: SnapshotSource, countAsLeak = true, scan = false) {
    this.#source = source;
    this.#hold = source.registry.acquire(scan);
    this.#timestamp = this.#hold.timestamp;
    source.registry.watch(this, this.#hold, countAsLeak);
  }

  /** The read timestamp: the snapshot sees the writes committed at or before it. */
  get timestamp(): bigint {
    return BigInt(this.#timestamp);
  }

  /** @internal The read timestamp as a number. */
  get readTimestamp(): number {
    return this.#timestamp;
  }

  get released(): boolean {
    return this.#released;
  }

  get(key: Uint8Array | string): Buffer | undefined {
    this.#assertOpen();
    const bytes = keyToBytes(key);
    const { readers, router } = this.#source;
    return readers[router.partitionOf(bytes)]!.get(bytes, this.#timestamp);
  }

  getString(key: Uint8Array | string): string | undefined {
    return this.get(key)?.toString('utf8');
  }

  /** Entries within the bounds at the snapshot, sorted by key bytes, merged from all partitions. */
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]> {
    this.#assertOpen();
    const bounds = parseRangeOptions(options);
    const readers = this.#source.readers;
    // A short scan takes about its share from each partition: copy that much in the first step.
    const firstBatchEntries = Number.isFinite(bounds.limit)
      ? Math.min(8, Math.ceil(bounds.limit / readers.length) + 2)
      : undefined;
    const sources = readers.map((reader) => reader.rangeWithin(bounds, this.#timestamp, firstBatchEntries));
    return new MergedRange(sources, bounds.reverse, bounds.limit);
  }

  /** Frees the snapshot's slot. Idempotent; afterwards reads throw ERR_CLOSED. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#source.registry.unwatch(this);
    this.#source.registry.release(this.#hold);
  }

  #assertOpen(): void {
    if (this.#released) throw new LightningError('ERR_CLOSED', 'the snapshot was released');
  }
}

/**
 * A scan at a snapshot of its own, released when the scan ends (done, `return()`, or a `break` out of
 * a for-of loop), or by the garbage collector if the iterator is dropped half-way (counted as leaked).
 * Until then, when the thread runs out of snapshot slots, unfinished scans share one (see
 * SnapshotRegistry), so abandoned scans never make later snapshots fail.
 */
export class SnapshotRange implements IterableIterator<[Buffer, Buffer]> {
  readonly #snapshot: Snapshot;
  readonly #entries: IterableIterator<[Buffer, Buffer]>;

  constructor(source: SnapshotSource, options: RangeOptions | undefined) {
    this.#snapshot = new Snapshot(source, true, true);
    try {
      this.#entries = this.#snapshot.range(options);
    } catch (error) {
      this.#snapshot.release();
      throw error;
    }
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<[Buffer, Buffer]> {
    if (this.#snapshot.released) return { done: true, value: undefined };
    try {
      const result = this.#entries.next();
      if (result.done === true) this.#snapshot.release();
      return result;
    } catch (error) {
      this.#snapshot.release();
      throw error;
    }
  }

  return(): IteratorResult<[Buffer, Buffer]> {
    this.#snapshot.release();
    return { done: true, value: undefined };
  }
}
