import { PageArena } from '../arena.js';
import { keyToBytes } from '../bytes.js';
import { LightningError } from '../errors.js';
import type { PageSpace } from '../page-space.js';
import {
  kTreeEntryCount,
  kTreeHeight,
  kTreeOverflowPageCount,
  kTreeTombstoneCount,
  treeFormatVersion,
} from './meta-layout.js';
import { cellFlagTimestamp, leafTimestampAt } from './node-format.js';
import { OptimisticView, RestartBudget, restart } from './optimistic-view.js';
import { RangeIterator } from './range-iterator.js';
import { parseRangeOptions, type RangeBounds, type RangeOptions } from './range-options.js';
import { openTreeHandle, type TreeHandle } from './tree-handle.js';
import type { ValueScratch } from './value-scratch.js';

export interface TreeStats {
  entries: number;
  height: number;
  pageSizeBytes: number;
  pagesMax: number;
  /** Pages handed out at least once, including the arena header and the free list. */
  pagesAllocated: number;
  pagesFree: number;
  /** Pages holding the tree (and the arena header): allocated minus free. */
  pagesInUse: number;
  overflowPages: number;
  /** Bytes the SharedArrayBuffer has grown to; it never shrinks. */
  bytesReserved: number;
  bytesMax: number;
}

/**
 * Read access to a tree from any thread: point reads and sorted scans straight from shared memory,
 * never blocking and never writing it.
 */
export class TreeReader {
  /** @internal The arena and meta page, for the writer and the checker. */
  readonly view: OptimisticView;
  /** Set by `getEntry`: the flags of the cell found (see node-format.ts), 0 if none. */
  cellFlags = 0;
  /** Set by `getEntry`: the cell's timestamp or transaction reference, 0 if it has none. */
  cellTimestamp = 0;

  protected constructor(arena: PageSpace, metaPageId: number) {
    this.view = new OptimisticView(arena, metaPageId);
  }

  /** Attaches to a tree shared by its owner with `share()`, e.g. in another worker thread. */
  static attach(handle: TreeHandle): TreeReader {
    const { arena, metaPageId } = openTreeHandle(handle);
    return new TreeReader(arena, metaPageId);
  }

  /**
   * A reader of the tree whose meta page is `metaPageId` in a page space this thread has (a reader's
   * space over a buffer pool attached on this thread, say).
   */
  static over(space: PageSpace, metaPageId: number): TreeReader {
    return new TreeReader(space, metaPageId);
  }

  /** A structured-cloneable handle for `TreeReader.attach` in another thread. */
  share(): TreeHandle {
    const { arena, metaPageId } = this.view;
    if (!(arena instanceof PageArena)) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'a tree over a buffer pool is shared through its pool');
    }
    return { kind: 'lightning-db/tree', formatVersion: treeFormatVersion, sab: arena.sab, metaPageId };
  }

  /**
   * The value stored under `key` (a copy), or undefined. O(log n); a read concurrent with the writer
   * restarts until it sees one consistent version of the leaf.
   */
  get(key: Uint8Array | string): Buffer | undefined {
    return this.getEntry(keyToBytes(key));
  }

  /**
   * Like `get`, for the MVCC layer: returns the raw cell's value (empty for a tombstone) and sets
   * `cellFlags` and `cellTimestamp`. The key's length is the caller's to check.
   */
  getEntry(bytes: Uint8Array): Buffer | undefined {
    return this.getEntryInto(bytes, null);
  }

  /**
   * `getEntry` copying the value into a view of `scratch` (null: a new buffer), valid until the
   * scratch's next use.
   */
  getEntryInto(bytes: Uint8Array, scratch: ValueScratch | null): Buffer | undefined {
    const value = this.#tryGet(bytes, scratch);
    if (value !== null) return value;
    const budget = new RestartBudget();
    for (;;) {
      this.view.restarts++;
      budget.spend();
      const retried = this.#tryGet(bytes, scratch);
      if (retried !== null) return retried;
    }
  }

  /** Entries in key order (unsigned bytes) within the bounds; O(log n) to start, O(1) per entry. */
  range(options?: RangeOptions): RangeIterator {
    return new RangeIterator(this.view, parseRangeOptions(options));
  }

  /** `range` for bounds parsed already (once for many partitions), with the first step's size. */
  rangeWithin(bounds: RangeBounds, firstBatchEntries?: number): RangeIterator {
    return new RangeIterator(this.view, bounds, firstBatchEntries);
  }

  /** Number of entries (tombstones awaiting cleanup are not entries). */
  get count(): number {
    const { arena, metaPageId } = this.view;
    const metaWord = arena.pageWordIndex(metaPageId);
    return (
      (Atomics.load(arena.i32, metaWord + kTreeEntryCount) >>> 0) -
      (Atomics.load(arena.i32, metaWord + kTreeTombstoneCount) >>> 0)
    );
  }

  stats(): TreeStats {
    const { arena, metaPageId } = this.view;
    const metaWord = arena.pageWordIndex(metaPageId);
    const pagesAllocated = arena.pagesAllocated();
    const pagesFree = Atomics.load(arena.i32, arena.freePageCountIndex);
    return {
      entries: this.count,
      height: Atomics.load(arena.i32, metaWord + kTreeHeight),
      pageSizeBytes: arena.pageSizeBytes,
      pagesMax: arena.pagesMax,
      pagesAllocated,
      pagesFree,
      pagesInUse: pagesAllocated - pagesFree,
      overflowPages: Atomics.load(arena.i32, metaWord + kTreeOverflowPageCount),
      bytesReserved: arena.bytesReserved(),
      bytesMax: arena.pagesMax * arena.pageSizeBytes,
    };
  }

  /** One optimistic attempt: the value, undefined if absent, or null to restart. */
  #tryGet(key: Uint8Array, scratch: ValueScratch | null): Buffer | undefined | null {
    const view = this.view;
    const page = view.descend(key, false, false);
    if (page === restart) return null;
    const version = view.leafVersion;
    const count = view.leafCount(page);
    if (count === restart) return null;
    const index = view.leafSearch(page, count, key, false);
    if (index === restart) return null;
    if (!view.found) {
      this.cellFlags = 0;
      this.cellTimestamp = 0;
      return view.validate(page, version) ? undefined : null;
    }
    const cell = view.leafCell(page, count, index);
    if (cell === restart) return null;
    const value = view.copyLeafValueInto(page, version, cell, scratch);
    const u8 = view.arena.u8;
    const flags = u8[cell]!;
    const timestamp = (flags & cellFlagTimestamp) !== 0 ? leafTimestampAt(u8, cell) : 0;
    if (value === null || !view.validate(page, version)) return null;
    this.cellFlags = flags;
    this.cellTimestamp = timestamp;
    return value;
  }
}
