import { LightningError } from '../shared-memory/index.js';
import { PartitionCursor } from '../shared-memory/mvcc/partition-cursor.js';
import type { VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import type { RangeBounds } from '../shared-memory/tree/range-options.js';
import { countWithin } from './api/count-range.js';
import type { Bytes, Out } from './api/encoding-types.js';
import { decode, type Encodings, encodeBounds, encodeKey, noEncodings } from './api/encodings.js';
import { readMany } from './api/get-many.js';
import { type KeyRange, type ScanIterator, type ScanOptions, scanShape } from './api/scan-options.js';
import { MergedRange, type ScanShape, scanEntries, scanKeys, scanValues } from './merged-range.js';
import type { PartitionRouter } from './partition-router.js';
import type { SnapshotHold, SnapshotRegistry } from './snapshot-registry.js';
import type { Store } from './stores/store.js';
import { assertOutsideStoreRegion, defaultRangeBounds, storeRegionFirstByte } from './stores/store-keys.js';
import { SnapshotStore } from './stores/store-views.js';

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
export class Snapshot<K = Bytes, V = Bytes> {
  readonly #source: SnapshotSource;
  readonly #encodings: Encodings;
  readonly #hold: SnapshotHold;
  readonly #timestamp: number;
  #released = false;

  /**
   * @internal Made by db.snapshot() and a transaction (`countAsLeak` false: it is always released).
   */
  constructor(source: SnapshotSource, countAsLeak = true, encodings: Encodings = noEncodings) {
    this.#source = source;
    this.#encodings = encodings;
    this.#hold = source.registry.acquire(false);
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

  /** @internal What this snapshot reads through: names the database on this thread. */
  get source(): SnapshotSource {
    return this.#source;
  }

  get(key: K): Out<V> | undefined {
    return decode(this.#encodings.values, this.#read(key));
  }

  /** The stored bytes of the value under `key` as UTF-8, whatever the value encoding. */
  getString(key: K): string | undefined {
    return this.#read(key)?.toString('utf8');
  }

  #read(key: K): Buffer | undefined {
    this.#assertOpen();
    const bytes = encodeKey(this.#encodings.keys, key);
    if (bytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(bytes);
    return this.readKey(bytes);
  }

  /** @internal A read of any key, the store region's included (for named stores). */
  readKey(bytes: Uint8Array): Buffer | undefined {
    this.#assertOpen();
    const { readers, router } = this.#source;
    return readers[router.partitionOf(bytes)]!.get(bytes, this.#timestamp);
  }

  /**
   * The values of `keys` at the snapshot, in the keys' order (undefined where a key is missing).
   * Every key is checked first: one bad key throws before anything is read. O(k log n).
   */
  getMany(keys: readonly K[]): (Out<V> | undefined)[] {
    this.#assertOpen();
    return readMany(this.#source, keys, this.#timestamp, this.#encodings);
  }

  /**
   * Entries within the bounds at the snapshot, sorted by key bytes, merged from all partitions: one
   * descent per partition to start, then O(log P) comparisons in shared memory per entry. Iterate it
   * (for-of, or for-await) before releasing the snapshot.
   */
  range(options?: ScanOptions<K>): ScanIterator<[Out<K>, Out<V>]> {
    return this.#scan(options, scanShape(options, scanEntries, this.#encodings));
  }

  /** The keys within the bounds at the snapshot, sorted; values are not read. */
  keys(options?: ScanOptions<K>): ScanIterator<Out<K>> {
    return this.#scan(options, scanShape(options, scanKeys, this.#encodings));
  }

  /** The values within the bounds at the snapshot, in key order. */
  values(options?: ScanOptions<K>): ScanIterator<Out<V>> {
    return this.#scan(options, scanShape(options, scanValues, this.#encodings));
  }

  /**
   * The number of entries within the bounds at the snapshot (at most `limit`). Walks each
   * partition's keys in place, without merging them or reading values: O(entries counted).
   */
  count(options?: KeyRange<K>): number {
    this.#assertOpen();
    const bounds = defaultRangeBounds(encodeBounds(this.#encodings.keys, options));
    return countWithin(cursorsAt(this.#source, { ...bounds, reverse: false }, this.#timestamp), bounds.limit);
  }

  /** @internal A scan of entries within bounds parsed already, which may lie in the store region. */
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]> {
    this.#assertOpen();
    return this.#scanWithin<[Buffer, Buffer]>(bounds, undefined);
  }

  #scan<T>(options: KeyRange<K> | undefined, shape: ScanShape): MergedRange<T> {
    this.#assertOpen();
    return this.#scanWithin<T>(defaultRangeBounds(encodeBounds(this.#encodings.keys, options)), shape);
  }

  #scanWithin<T>(bounds: RangeBounds, shape: ScanShape | undefined): MergedRange<T> {
    return new MergedRange<T>(
      cursorsAt(this.#source, bounds, this.#timestamp),
      bounds.reverse,
      bounds.limit,
      null,
      null,
      shape,
    );
  }

  /** Reads of named store `store` at this snapshot: get, getString and range, keys without its prefix. */
  store<SK, SV>(store: Store<SK, SV>): SnapshotStore<SK, SV> {
    this.#assertOpen();
    return new SnapshotStore(this, store);
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
 * A scan at a snapshot of its own, released when the scan ends (done, its limit reached, `return()` or
 * a `break` out of a for-of loop, or an error). A scan still open when the task that started it ends
 * is put under the garbage-collection backstop: if it is dropped half-way, the collector releases it
 * (counted as leaked). Until then, when the thread runs out of snapshot slots, unfinished scans share
 * one (see SnapshotRegistry), so abandoned scans never make later snapshots fail.
 */
export class SnapshotRange<T = [Buffer, Buffer]> extends MergedRange<T> {
  /** `bounds`: parsed by defaultRangeBounds (the default store) or for a named store, keys encoded. */
  constructor(source: SnapshotSource, bounds: RangeBounds, shape?: ScanShape) {
    const registry = source.registry;
    const hold = registry.acquire(true);
    let cursors: PartitionCursor[];
    try {
      cursors = cursorsAt(source, bounds, hold.timestamp);
    } catch (error) {
      registry.release(hold);
      throw error;
    }
    super(cursors, bounds.reverse, bounds.limit, registry, hold, shape);
    registry.guardScan(this, hold);
  }
}

/** One cursor per partition, each positioned by one descent. */
export function cursorsAt(
  source: SnapshotSource,
  bounds: RangeBounds,
  readTimestamp: number,
): PartitionCursor[] {
  const readers = source.readers;
  const cursors = new Array<PartitionCursor>(readers.length);
  for (let i = 0; i < readers.length; i++)
    cursors[i] = new PartitionCursor(readers[i]!, bounds, readTimestamp);
  return cursors;
}
