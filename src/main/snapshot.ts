import { keyToBytes, LightningError, type RangeOptions } from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import type { VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import { parseRangeOptions } from '../shared-memory/tree/range-options.js';
import { MergedRange } from './merged-range.js';
import type { PartitionRouter } from './partition-router.js';

/** What a snapshot reads through: the partitions of one database, on this thread. */
export interface SnapshotSource {
  readers: VersionedReader[];
  router: PartitionRouter;
  registry: SnapshotRegistry;
}

/**
 * This thread's snapshot slots in the shared reader-slot table. A snapshot holds a slot until it is
 * released; one dropped without `release()` is reclaimed when the garbage collector finds it (and
 * counted as leaked, since until then it held back version cleanup).
 */
export class SnapshotRegistry {
  readonly #mvcc: MvccState;
  readonly #thread: number;
  readonly #free: number[] = [];
  #leaked = 0;
  /** Set once the thread closed its database: its slot (and snapshot slots) may be another's now. */
  #closed = false;
  readonly #finalizer = new FinalizationRegistry<{ slot: number; counted: boolean }>((held) => {
    if (this.#closed) return;
    if (held.counted) this.#leaked++;
    this.release(held.slot);
  });

  constructor(mvcc: MvccState, thread: number) {
    this.#mvcc = mvcc;
    this.#thread = thread;
    for (let slot = mvcc.slotsPerThread - 1; slot >= 0; slot--) this.#free.push(slot);
  }

  get leaked(): number {
    return this.#leaked;
  }

  /** Registers a snapshot; returns its slot and read timestamp. */
  acquire(): { slot: number; timestamp: number } {
    const slot = this.#free.pop();
    if (slot === undefined) {
      throw new LightningError(
        'ERR_TOO_MANY_SNAPSHOTS',
        `this thread holds ${this.#mvcc.slotsPerThread} open snapshots and transactions; release some`,
      );
    }
    try {
      return { slot, timestamp: this.#mvcc.registerSnapshot(this.#thread, slot) };
    } catch (error) {
      // registerSnapshot left the shared slot free.
      this.#free.push(slot);
      throw error;
    }
  }

  release(slot: number): void {
    if (this.#closed) return;
    this.#mvcc.releaseSnapshot(this.#thread, slot);
    this.#free.push(slot);
  }

  /** Reclaims `owner`'s slot if it is garbage-collected while still holding it. */
  watch(owner: object, slot: number, countAsLeak: boolean): void {
    this.#finalizer.register(owner, { slot, counted: countAsLeak }, owner);
  }

  unwatch(owner: object): void {
    this.#finalizer.unregister(owner);
  }

  /** Frees every slot of this thread (it is closing); later releases of its snapshots do nothing. */
  releaseAll(): void {
    this.#closed = true;
    this.#mvcc.releaseThreadSnapshots(this.#thread);
  }
}

/**
 * A consistent, read-only view of the whole database at one read timestamp: it sees exactly the
 * writes committed at or before it, in every partition, however long it is kept. Release it when done:
 * an open snapshot keeps the versions it can see from being cleaned up.
 */
export class Snapshot {
  readonly #source: SnapshotSource;
  readonly #slot: number;
  readonly #timestamp: number;
  #released = false;

  /** @internal Made by db.snapshot(). */
  constructor(source: SnapshotSource, countAsLeak = true) {
    this.#source = source;
    const { slot, timestamp } = source.registry.acquire();
    this.#slot = slot;
    this.#timestamp = timestamp;
    source.registry.watch(this, slot, countAsLeak);
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
    this.#source.registry.release(this.#slot);
  }

  #assertOpen(): void {
    if (this.#released) throw new LightningError('ERR_CLOSED', 'the snapshot was released');
  }
}

/**
 * A scan at a snapshot of its own, released when the scan ends (done, `return()`, or a `break` out of
 * a for-of loop), or by the garbage collector if the iterator is dropped half-way.
 */
export class SnapshotRange implements IterableIterator<[Buffer, Buffer]> {
  readonly #snapshot: Snapshot;
  readonly #entries: IterableIterator<[Buffer, Buffer]>;

  constructor(source: SnapshotSource, options: RangeOptions | undefined) {
    this.#snapshot = new Snapshot(source, false);
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
