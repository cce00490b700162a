import { type ArenaOptions, PageArena } from '../arena.js';
import { keyToBytes, valueToBytes } from '../bytes.js';
import { LightningError } from '../errors.js';
import { cellBytesMax, pageHeaderBytes, slotBytes } from '../limits.js';
import { PageAllocator } from '../page-allocator.js';
import { pageTypeLeaf, pChunkBytes, pFragmented, pLink } from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import { checkTree } from './check-tree.js';
import {
  kTreeEntryCount,
  kTreeHeight,
  kTreeOverflowPageCount,
  kTreeRootPageId,
  kTreeTombstoneCount,
} from './meta-layout.js';
import { contiguousFreeBytes, fragmentedBytes, initNode, removeCell } from './node-edit.js';
import {
  cellAt,
  cellFlagOverflow,
  cellFlagTimestamp,
  cellFlagTombstone,
  get16,
  get32,
  keyHead,
  leafCellBytes,
  leafCellSizeAt,
  leafKeyAt,
  leafKeyLengthOffset,
  leafTimestampAt,
  leafValueLengthOffset,
  nodeCount,
  set16,
  set32,
  setLeafTimestamp,
} from './node-format.js';

const emptyValue = new Uint8Array(0);

import { overflowChainPages, overflowPagesFor, writeOverflowChain } from './overflow-chain.js';
import { OwnerPath } from './owner-path.js';
import { verifyTreeMeta, writeTreeMetaHeader } from './tree-handle.js';
import { TreeReader } from './tree-reader.js';
import { TreeReshape } from './tree-reshape.js';
import { WriteLatches } from './write-latches.js';
import { framesForWrites, pagesForWrites, type TreeShape, WriteTally } from './write-pages.js';

export type BTreeOptions = ArenaOptions;

/**
 * A B+Tree in a SharedArrayBuffer, owned by one thread: the only thread that may call `put` and
 * `delete`. Any thread reads it through `TreeReader.attach(tree.share())`, concurrently with writes.
 *
 * A write takes the latches of the pages it changes, and keeps them until the whole change (including
 * splits and merges up the tree) is in place, so readers see either the state before or after it.
 * Pages freed by the change go back to the allocator only after every latch is released.
 */
export class BTree extends TreeReader {
  readonly #arena: PageSpace;
  readonly #allocator: PageAllocator;
  readonly #metaWord: number;
  readonly #pageSizeBytes: number;
  readonly #cellBytesMax: number;
  /** The pages and child indexes of the last descent, root first. */
  readonly #path: OwnerPath;
  readonly #latches: WriteLatches;
  readonly #reshape: TreeReshape;
  readonly #cellBuffer: Uint8Array;
  readonly #checkEveryWrite: boolean;
  /** Inside `group()`: latches are kept until the group ends. */
  #grouped = false;
  /** Set when a write failed half-way because of a bug: the tree refuses further writes. */
  #failure: unknown = null;
  /**
   * The largest leaf cell (slot included) and the longest key this tree ever held: how unevenly a
   * split may divide a node's bytes, which `pagesForWrites` needs. They only grow.
   */
  #cellBytesLargest = 0;
  #keyBytesLongest = 0;

  private constructor(arena: PageSpace, metaPageId: number, allocator: PageAllocator) {
    super(arena.readerSpace(), metaPageId);
    this.#arena = arena;
    this.pooled = arena.framesAvailableWhenClean() !== Number.MAX_SAFE_INTEGER;
    this.#allocator = allocator;
    this.#metaWord = arena.pageWordIndex(metaPageId);
    this.#pageSizeBytes = arena.pageSizeBytes;
    this.#cellBytesMax = cellBytesMax(arena.pageSizeBytes);
    this.#latches = new WriteLatches(arena);
    this.#path = new OwnerPath(arena, this.#metaWord);
    this.#reshape = new TreeReshape(
      arena,
      allocator,
      this.#latches,
      metaPageId,
      this.#path.pages,
      this.#path.indexes,
      (error) => this.#reportDamagedSibling(error),
    );
    this.#cellBuffer = new Uint8Array(arena.pageSizeBytes);
    this.#checkEveryWrite = process.env.LIGHTNING_CHECK_TREE === '1';
  }

  /** Creates an empty tree in a new arena. */
  static create(options: BTreeOptions = {}): BTree {
    if (typeof options !== 'object' || options === null) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'tree options must be an object');
    }
    return BTree.createOn(PageArena.create(options));
  }

  /** Creates an empty tree in a page space with no pages yet (a new arena, or a new buffer pool). */
  static createOn(arena: PageSpace): BTree {
    const allocator = new PageAllocator(arena);
    allocator.reserve(2);
    const metaPageId = allocator.allocate();
    const rootPageId = allocator.allocate();
    initNode(arena.u8, arena.pageOffset(rootPageId), arena.pageSizeBytes, pageTypeLeaf, 0);
    writeTreeMetaHeader(arena, metaPageId);
    const metaWord = arena.pageWordIndex(metaPageId);
    Atomics.store(arena.i32, metaWord + kTreeRootPageId, rootPageId);
    Atomics.store(arena.i32, metaWord + kTreeHeight, 1);
    return new BTree(arena, metaPageId, allocator);
  }

  /**
   * The tree whose meta page is `metaPageId` in a space that already holds it (a buffer pool over a
   * page file a tree was written to). Throws ERR_CORRUPTION if that page is not a tree's meta page.
   * The allocator's free list is the space's: a pool's starts empty, so pages freed before are not
   * reused until the page file keeps that list.
   */
  static openOn(arena: PageSpace, metaPageId: number): BTree {
    verifyTreeMeta(arena, metaPageId);
    return new BTree(arena, metaPageId, new PageAllocator(arena));
  }

  /** Inserts or overwrites. O(log n); throws ERR_PARTITION_FULL, leaving the tree unchanged, if full. */
  put(key: Uint8Array | string, value: Uint8Array | string): void {
    this.putCell(keyToBytes(key), valueToBytes(value), 0, 0);
  }

  /**
   * Inserts or overwrites a cell with MVCC flags (see node-format.ts): a tombstone when `value` is
   * null, and a timestamp (or transaction reference) when `flags` has cellFlagTimestamp. Owner-only;
   * the key's length is the caller's to check.
   */
  putCell(keyBytes: Uint8Array, value: Uint8Array | null, flags: number, timestamp: number): void {
    const valueBytes = value ?? emptyValue;
    const cellFlags = value === null ? flags | cellFlagTombstone : flags;
    this.#assertWritable();
    const overflow = this.#needsOverflow(keyBytes, valueBytes);
    // Worst case: the chain, a split at every level, and a new root.
    if (!this.#grouped) this.#allocator.reserve(this.pagesForPut(keyBytes, valueBytes));
    // Inline rather than through #write: a closure per put shows in the insert profile.
    try {
      this.#put(keyBytes, valueBytes, overflow, cellFlags, timestamp);
    } catch (error) {
      this.#failure = error;
      throw error;
    } finally {
      this.#finishWrite();
    }
  }

  /** Pages one put may take in the worst case: its overflow chain, a split per level, a new root. */
  pagesForPut(key: Uint8Array, value: Uint8Array): number {
    const overflowPages = this.#needsOverflow(key, value)
      ? overflowPagesFor(value.length, this.#pageSizeBytes)
      : 0;
    return overflowPages + this.#height() + 1;
  }

  /** A tally for the writes of a group, to be measured with `pagesForWrites`. */
  newWriteTally(): WriteTally {
    return new WriteTally(this.#pageSizeBytes);
  }

  /**
   * At most how many pages the writes of `tally` can allocate in one group, and how many levels they may
   * add (see write-pages.ts), on top of `staged`: what groups applied before them may have added. O(1).
   */
  pagesForWrites(
    tally: WriteTally,
    staged: { pages: number; levels: number } = { pages: 0, levels: 0 },
  ): { pages: number; levels: number } {
    return pagesForWrites(this.#shape(staged), tally);
  }

  /**
   * At most how many pages the writes of `tally` can change in one group, allocated ones included
   * (write-pages.ts `framesForWrites`): the frames a tree over a buffer pool needs for them, on top of
   * `staged` (as in `pagesForWrites`). O(1).
   */
  framesForWrites(
    tally: WriteTally,
    staged: { pages: number; levels: number } = { pages: 0, levels: 0 },
  ): number {
    const shape = this.#shape(staged);
    return framesForWrites(shape, tally, pagesForWrites(shape, tally));
  }

  /** True if the tree lives in a buffer pool: its changed pages take frames until written back. */
  readonly pooled: boolean;

  /**
   * A delete left a merge undone because the sibling failed verification as it loaded (a damaged page
   * of a page file; TreeReshape). The tree stays whole: a line names the page, once (every later
   * delete beside it meets it again).
   */
  #reportDamagedSibling(error: LightningError): void {
    if (this.#damageReported.has(error.message)) return;
    this.#damageReported.add(error.message);
    console.error(`lightning-db: a merge after a delete left undone: ${error.message}`);
  }

  readonly #damageReported = new Set<string>();

  #shape(staged: { pages: number; levels: number }): TreeShape {
    return {
      pageSizeBytes: this.#pageSizeBytes,
      height: this.#height() + staged.levels,
      pagesInUse: this.#arena.pagesAllocated() - this.#allocator.freePageCount() + staged.pages,
      cellBytesLargest: this.#cellBytesLargest,
      keyBytesLongest: this.#keyBytesLongest,
    };
  }

  /** Pages that can still be allocated: free ones plus those the buffer may still grow by. O(1). */
  pagesAvailable(): number {
    return this.#allocator.pagesAvailable();
  }

  /**
   * Changed pages the tree's memory can still take before its dirty pages are written back: a tree over
   * a buffer pool holds changed pages in frames until a page set takes them. Unbounded in an arena.
   */
  framesAvailable(): number {
    return this.#arena.framesAvailable();
  }

  /**
   * While `covered`, writes whose frames were counted as a group when they were staged run without
   * each write's own worst case checked against the frames (PageSpace.coverFrames).
   */
  coverFrames(covered: boolean): void {
    this.#arena.coverFrames(covered);
  }

  /** Holds frames for writes applied later (PageSpace.holdFrames); negative gives them back. */
  holdFrames(delta: number): void {
    this.#arena.holdFrames(delta);
  }

  /** `framesAvailable` once every changed page is written back. */
  framesAvailableWhenClean(): number {
    return this.#arena.framesAvailableWhenClean();
  }

  /** Makes sure `pages` pages can be allocated, or throws ERR_PARTITION_FULL having changed nothing. */
  reserve(pages: number): void {
    this.#allocator.reserve(pages);
  }

  /**
   * Runs several writes as one change for readers: every latch taken is held until `change` returns,
   * so a reader sees each page before or after all of them. The caller reserves the pages the whole
   * group may need first (`reserve`), so a full partition fails before anything changes.
   */
  group<T>(change: () => T): T {
    if (this.#grouped) return change();
    this.#assertWritable();
    this.#grouped = true;
    try {
      return change();
    } catch (error) {
      this.#failure = error;
      throw error;
    } finally {
      this.#grouped = false;
      this.#finishWrite();
    }
  }

  /**
   * Entries, read through the owner's own space: inside a group over a buffer pool this thread holds
   * the meta page's latch, and the reader's way to it (a shared latch) would find it taken by itself.
   */
  override get count(): number {
    const i32 = this.#arena.i32;
    return (
      (Atomics.load(i32, this.#metaWord + kTreeEntryCount) >>> 0) -
      (Atomics.load(i32, this.#metaWord + kTreeTombstoneCount) >>> 0)
    );
  }

  /** Tombstones in the tree (MVCC heads of deleted keys awaiting cleanup), from its meta page. */
  get tombstoneCount(): number {
    return Atomics.load(this.#arena.i32, this.#metaWord + kTreeTombstoneCount) >>> 0;
  }

  /** Set by `readCell` and `readCellPrefix`: the whole value's length in bytes, 0 if no cell. */
  cellValueBytes = 0;
  /** Set by `readCell` and `readCellPrefix`: the pages of the descent, root first, the leaf last. */
  cellPathLength = 0;
  /** Set by `readCell` and `readCellPrefix`: the leaf's free and fragmented bytes (a new cell fits in them). */
  cellLeafRoomBytes = 0;

  /** The pages of the last `readCell`'s descent (`cellPathLength` of them). Owner-only, reused. */
  get cellPath(): ArrayLike<number> {
    return this.#path.pages;
  }

  /**
   * The cell under `key` as the owner sees it: its value (a copy; empty for a tombstone), or undefined
   * if there is none; `cellFlags`, `cellTimestamp` and `cellValueBytes` describe it. Owner-only: no
   * restarts needed.
   */
  readCell(key: Uint8Array): Buffer | undefined {
    return this.readCellPrefix(key, Number.MAX_SAFE_INTEGER);
  }

  /**
   * `readCell`, copying at most the value's first `bytesMax` bytes, so that only the overflow pages
   * holding them are read: over a buffer pool, each page read stays pinned until the group ends, and
   * a check of a cell's flags or of a stored version's header must not take the frames of its value.
   */
  readCellPrefix(key: Uint8Array, bytesMax: number): Buffer | undefined {
    try {
      return this.#readCell(key, bytesMax);
    } finally {
      if (!this.#grouped) this.#arena.releasePins();
    }
  }

  /**
   * `readCellPrefix(key, 0)`, also reading, over a buffer pool, every page besides the descent that a
   * write of `key` reads when it applies in the tree as it is now: the overflow chain of the value it
   * replaces (freed, or kept as a version) and, for a delete (`removes`), the siblings its merges may
   * take (TreeReshape.readMergeSiblings). Each page is verified as it loads, so a damaged one throws
   * ERR_CORRUPTION here, with nothing changed. The chain's pages are let go one by one outside a
   * group: a chain may be longer than the frames free for pins.
   */
  readCellForWrite(key: Uint8Array, removes: boolean): Buffer | undefined {
    try {
      const cell = this.#readCell(key, 0);
      if (cell === undefined || !this.pooled) return cell;
      if (removes) this.#reshape.readMergeSiblings(this.cellPathLength - 1, this.#cellBytes);
      const arena = this.#arena;
      for (let page = this.#cellOverflowPage; page !== 0; ) {
        page = get32(arena.u8, arena.pageOffset(page) + pLink);
        if (!this.#grouped) arena.releasePins();
      }
      return cell;
    } finally {
      if (!this.#grouped) this.#arena.releasePins();
    }
  }

  /** Set by `#readCell` when it finds a cell: its bytes (slot included) and first overflow page (or 0). */
  #cellBytes = 0;
  #cellOverflowPage = 0;

  #readCell(key: Uint8Array, bytesMax: number): Buffer | undefined {
    // Trusted and latch-blind: inside a group this thread holds latches an optimistic read would wait on.
    const path = this.#path;
    const depth = path.descend(key);
    const base = this.#arena.pageOffset(path.pages[depth]!);
    this.cellPathLength = depth + 1;
    this.cellLeafRoomBytes =
      contiguousFreeBytes(this.#arena.u8, base) + fragmentedBytes(this.#arena.u8, base);
    const index = path.leafSearch(base, key);
    if (!path.found) {
      this.cellFlags = 0;
      this.cellTimestamp = 0;
      this.cellValueBytes = 0;
      return undefined;
    }
    const u8 = this.#arena.u8;
    const cell = cellAt(u8, base, index);
    const flags = u8[cell]!;
    this.cellFlags = flags;
    this.cellTimestamp = (flags & cellFlagTimestamp) !== 0 ? leafTimestampAt(u8, cell) : 0;
    this.cellValueBytes = get32(u8, cell + leafValueLengthOffset);
    const valueLength = Math.min(this.cellValueBytes, bytesMax);
    const valueStart = leafKeyAt(u8, cell) + get16(u8, cell + leafKeyLengthOffset);
    this.#cellBytes = leafCellSizeAt(u8, cell) + slotBytes;
    this.#cellOverflowPage = (flags & cellFlagOverflow) === 0 ? 0 : get32(u8, valueStart);
    const out = Buffer.allocUnsafe(valueLength);
    if ((flags & cellFlagOverflow) === 0) {
      out.set(u8.subarray(valueStart, valueStart + valueLength));
      return out;
    }
    let copied = 0;
    for (let page = get32(u8, valueStart); copied < valueLength && page !== 0; ) {
      const pageBase = this.#arena.pageOffset(page);
      const chunk = Math.min(get32(this.#arena.u8, pageBase + pChunkBytes), valueLength - copied);
      out.set(
        this.#arena.u8.subarray(pageBase + pageHeaderBytes, pageBase + pageHeaderBytes + chunk),
        copied,
      );
      copied += chunk;
      page = get32(this.#arena.u8, pageBase + pLink);
    }
    return out;
  }

  /**
   * The first key at or after `key` (a copy), or undefined at the end of the tree. Trusted and
   * latch-blind like `readCell`: owner-only.
   */
  firstKeyFrom(key: Uint8Array): Uint8Array | undefined {
    try {
      return this.#firstKeyFrom(key);
    } finally {
      if (!this.#grouped) this.#arena.releasePins();
    }
  }

  #firstKeyFrom(key: Uint8Array): Uint8Array | undefined {
    const arena = this.#arena;
    const path = this.#path;
    const depth = path.descend(key);
    let base = arena.pageOffset(path.pages[depth]!);
    let index = path.leafSearch(base, key);
    if (index >= nodeCount(arena.u8, base)) {
      const next = path.nextLeaf(depth);
      if (next === 0) return undefined;
      base = arena.pageOffset(next);
      index = 0;
      if (nodeCount(arena.u8, base) === 0) return undefined;
    }
    const u8 = arena.u8;
    const cell = cellAt(u8, base, index);
    const start = leafKeyAt(u8, cell);
    return u8.slice(start, start + get16(u8, cell + leafKeyLengthOffset));
  }

  /** Removes a cell by its raw key (owner-only; the key's length is the caller's to check). */
  deleteCell(keyBytes: Uint8Array): boolean {
    this.#assertWritable();
    return this.#write(() => this.#delete(keyBytes));
  }

  /** Removes a key; true if it was there. O(log n). Never allocates, so it works in a full partition. */
  delete(key: Uint8Array | string): boolean {
    const keyBytes = keyToBytes(key);
    this.#assertWritable();
    return this.#write(() => this.#delete(keyBytes));
  }

  #needsOverflow(key: Uint8Array, value: Uint8Array): boolean {
    return leafCellBytes(cellFlagTimestamp, key.length, value.length) > this.#cellBytesMax;
  }

  #put(key: Uint8Array, value: Uint8Array, overflow: boolean, flags: number, timestamp: number): boolean {
    const path = this.#path;
    const depth = path.descend(key);
    const leaf = path.pages[depth]!;
    const base = this.#arena.pageOffset(leaf);
    const index = path.leafSearch(base, key);
    let firstOverflow = 0;
    if (overflow) {
      const chain = writeOverflowChain(this.#arena, this.#allocator, value, (page) =>
        this.#latches.lock(page),
      );
      firstOverflow = chain.firstPageId;
      Atomics.add(this.#arena.i32, this.#metaWord + kTreeOverflowPageCount, chain.pageCount);
    }
    const cellLength = this.#encodeLeafCell(key, value, firstOverflow, flags, timestamp);
    if (cellLength + slotBytes > this.#cellBytesLargest) this.#cellBytesLargest = cellLength + slotBytes;
    if (key.length > this.#keyBytesLongest) this.#keyBytesLongest = key.length;
    this.#latches.lock(leaf);
    const u8 = this.#arena.u8;
    if (path.found) {
      const cell = cellAt(u8, base, index);
      const tombstones =
        ((flags & cellFlagTombstone) !== 0 ? 1 : 0) - ((u8[cell]! & cellFlagTombstone) !== 0 ? 1 : 0);
      if (tombstones !== 0) Atomics.add(this.#arena.i32, this.#metaWord + kTreeTombstoneCount, tombstones);
      const oldLength = leafCellSizeAt(u8, cell);
      this.#releaseOverflowOf(cell);
      if (cellLength <= oldLength) {
        // Overwrite in place; the tail of the old cell becomes fragmented space.
        u8.set(this.#cellBuffer.subarray(0, cellLength), cell);
        set16(u8, base + pFragmented, fragmentedBytes(u8, base) + oldLength - cellLength);
        return true;
      }
      removeCell(u8, base, index, oldLength);
    } else {
      Atomics.add(this.#arena.i32, this.#metaWord + kTreeEntryCount, 1);
      if ((flags & cellFlagTombstone) !== 0)
        Atomics.add(this.#arena.i32, this.#metaWord + kTreeTombstoneCount, 1);
    }
    this.#reshape.insertCell(depth, index, this.#cellBuffer, 0, cellLength, keyHead(key, 0, key.length));
    return true;
  }

  #delete(key: Uint8Array): boolean {
    const path = this.#path;
    const depth = path.descend(key);
    const leaf = path.pages[depth]!;
    const base = this.#arena.pageOffset(leaf);
    const index = path.leafSearch(base, key);
    if (!path.found) return false;
    this.#latches.lock(leaf);
    const u8 = this.#arena.u8;
    const cell = cellAt(u8, base, index);
    if ((u8[cell]! & cellFlagTombstone) !== 0)
      Atomics.sub(this.#arena.i32, this.#metaWord + kTreeTombstoneCount, 1);
    this.#releaseOverflowOf(cell);
    removeCell(u8, base, index, leafCellSizeAt(u8, cell));
    Atomics.sub(this.#arena.i32, this.#metaWord + kTreeEntryCount, 1);
    this.#reshape.mergeUpward(depth);
    this.#reshape.collapseRoot();
    return true;
  }

  /** Runs one write, then releases its latches and frees its pages, even if it failed. */
  #write<T>(change: () => T): T {
    if (this.#grouped) return change();
    try {
      return change();
    } catch (error) {
      this.#failure = error;
      throw error;
    } finally {
      this.#finishWrite();
    }
  }

  #finishWrite(): void {
    if (this.#grouped) return;
    this.#latches.release(this.#allocator);
    this.#arena.releasePins();
    if (this.#checkEveryWrite && this.#failure === null) {
      try {
        checkTree(this);
      } catch (error) {
        this.#failure = error;
        throw error;
      }
    }
  }

  #assertWritable(): void {
    if (this.#failure !== null) {
      throw new LightningError('ERR_INTERNAL', 'an earlier write failed half-way; the tree refuses writes', {
        cause: this.#failure,
      });
    }
  }

  #height(): number {
    return Atomics.load(this.#arena.i32, this.#metaWord + kTreeHeight);
  }

  /** Encodes a leaf cell into #cellBuffer; returns its length. */
  #encodeLeafCell(
    key: Uint8Array,
    value: Uint8Array,
    firstOverflow: number,
    mvccFlags: number,
    timestamp: number,
  ): number {
    const out = this.#cellBuffer;
    const flags = (firstOverflow !== 0 ? cellFlagOverflow : 0) | mvccFlags;
    out[0] = flags;
    set16(out, 1, key.length);
    set32(out, 3, value.length);
    let at = 7;
    if ((flags & cellFlagTimestamp) !== 0) {
      setLeafTimestamp(out, 0, timestamp);
      at = 15;
    }
    out.set(key, at);
    if (firstOverflow !== 0) set32(out, at + key.length, firstOverflow);
    else out.set(value, at + key.length);
    return leafCellBytes(flags, key.length, value.length);
  }

  /** Queues the overflow chain of a leaf cell, if it has one, to be freed when this write ends. */
  #releaseOverflowOf(cell: number): void {
    const arena = this.#arena;
    const u8 = arena.u8;
    if ((u8[cell]! & cellFlagOverflow) === 0) return;
    const pages = overflowChainPages(
      arena,
      get32(u8, leafKeyAt(u8, cell) + get16(u8, cell + leafKeyLengthOffset)),
    );
    for (const page of pages) this.#latches.freeLater(page);
    Atomics.sub(arena.i32, this.#metaWord + kTreeOverflowPageCount, pages.length);
  }
}
