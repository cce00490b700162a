import { LightningError } from '../errors.js';
import { pageTypeFree, pType } from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import { copyToArena } from './arena-image.js';
import type { BufferPool } from './buffer-pool.js';
import { FramesShortError } from './frames-short-error.js';
import {
  kPoolFreeListHead,
  kPoolFreePageCount,
  stateMarked,
  stateTagMask,
  stateUnlocked,
} from './pool-layout.js';

/**
 * A tree's pages in a buffer pool: a page lives in whichever frame holds it, or only in the page file.
 * The pool's state word of a page is the tree's latch, so readers validate one word per page as they do
 * in an arena, and the owner and an evictor exclude each other by compare-and-swap.
 *
 * Two kinds, one per role:
 * - **The owner's**, which the single writer uses. Every page it reaches through `pageOffset` is pinned
 *   until its write ends (`releasePins`), because the tree keeps offsets in locals across a write and
 *   its own allocations run the clock. A page reached through `pageWordIndex` (a tree's meta page,
 *   whose counters are words in place) stays pinned for good and is marked dirty after every write.
 * - **A reader's**, on any thread. `readLatch` brings a missing page in; `pageOffset` says where its
 *   frame is now, and `validate` says whether it still was.
 *
 * A reader sees the latch word with the tag byte cleared, so that the tree's own test for an unstable
 * word (latch.ts: the low two bits) passes for a readable page; a page latched, evicted or loading is
 * never handed to it (`read` waits or loads first).
 */
/**
 * Frames a write needs beyond the pages it changes: its descent's pinned path and a sibling per level,
 * and frames readers are loading pages into at the time.
 */
const framesForPinsAndReaders = 8;

export class PooledPageSpace implements PageSpace {
  readonly pool: BufferPool;
  readonly pageSizeBytes: number;
  readonly pagesMax: number;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly freeListHeadIndex = kPoolFreeListHead;
  readonly freePageCountIndex = kPoolFreePageCount;
  readonly #owner: boolean;
  /** The owner's pins until its write ends, and those it keeps for good. */
  #pinned: number[] = [];
  readonly #pinnedForGood = new Set<number>();
  /** Frames held for writes decided on and applied later (holdFrames). */
  #framesHeld = 0;
  /** Set while writes counted as a group when staged are applied (coverFrames). */
  #covered = false;
  #reader: PooledPageSpace | null = null;
  /**
   * The page `readLatch` (a reader) or `pageOffset` (the owner) resolved last and its offset: the tree
   * asks for the same page's offset right after, and again for every cell it reads.
   */
  #lastPage = 0;
  #lastOffset = 0;
  #pagesSeen = 0;
  readonly #stateBase: number;
  readonly #frameOfBase: number;
  readonly #framesByteOffset: number;

  private constructor(pool: BufferPool, owner: boolean) {
    this.pool = pool;
    this.pageSizeBytes = pool.pageSizeBytes;
    this.pagesMax = pool.pagesMax;
    this.u8 = pool.u8;
    this.u32 = new Uint32Array(pool.sab);
    this.i32 = pool.i32;
    this.#owner = owner;
    this.#stateBase = pool.regions.pageState;
    this.#frameOfBase = pool.regions.frameOf;
    this.#framesByteOffset = pool.regions.framesByteOffset;
  }

  /** The owner's space over `pool`: the only one that writes. */
  static forOwner(pool: BufferPool): PooledPageSpace {
    return new PooledPageSpace(pool, true);
  }

  /** A reader's space over `pool` (attached on the reader's thread). */
  static forReader(pool: BufferPool): PooledPageSpace {
    return new PooledPageSpace(pool, false);
  }

  /** Page ids are never taken back, so a count seen once stays a lower bound: reload it only above. */
  covers(pageId: number): boolean {
    if (pageId < this.#pagesSeen) return pageId >= 0;
    this.#pagesSeen = this.pool.pagesAllocated();
    return pageId >= 0 && pageId < this.#pagesSeen;
  }

  pagesAllocated(): number {
    return this.pool.pagesAllocated();
  }

  pageOffset(pageId: number): number {
    if (pageId === this.#lastPage) return this.#lastOffset;
    const pool = this.pool;
    if (!this.#owner) return pool.residentOffset(pageId);
    let offset = pool.pinnedOffset(pageId);
    if (offset < 0) {
      offset = pool.pin(pageId);
      this.#pinned.push(pageId);
    }
    // Pinned: the offset holds until releasePins.
    this.#lastPage = pageId;
    this.#lastOffset = offset;
    return offset;
  }

  /**
   * Only a tree's meta page is reached this way. Its owner pins it for good; a reader brings it in if
   * it is not resident (a pool with no owner, reading a page file).
   */
  pageWordIndex(pageId: number): number {
    if (!this.#owner) return this.pool.read(pageId) >>> 2;
    if (!this.#pinnedForGood.has(pageId)) {
      this.pageOffset(pageId);
      this.#pinnedForGood.add(pageId);
    }
    return this.pageOffset(pageId) >>> 2;
  }

  readLatch(pageId: number): number {
    const pool = this.pool;
    // A hit on an unlocked page, inlined: the state word, then the frame (BufferPool.read in short).
    const i32 = this.i32;
    const word = Atomics.load(i32, this.#stateBase + (pageId << 1));
    if ((word & stateTagMask) === stateUnlocked) {
      const frame = Atomics.load(i32, this.#frameOfBase + (pageId << 1));
      if (frame >= 0) {
        pool.hits++;
        this.#remember(pageId, this.#framesByteOffset + frame * this.pageSizeBytes);
        return word;
      }
    }
    const offset = pool.read(pageId);
    this.#remember(pageId, offset);
    return pool.version & ~stateTagMask;
  }

  /** Readers only: the owner's remembered page is its last pinned one. */
  #remember(pageId: number, offset: number): void {
    if (this.#owner) return;
    this.#lastPage = pageId;
    this.#lastOffset = offset;
  }

  /** BufferPool.validate inlined: unchanged, or only marked by the clock since. */
  validate(pageId: number, version: number): boolean {
    const word = Atomics.load(this.i32, this.#stateBase + (pageId << 1));
    return word === version || (word ^ version) === stateMarked;
  }

  lockForWrite(pageId: number): number {
    const pool = this.pool;
    if (pool.holdsLatch(pageId)) return -1;
    pool.lock(pageId);
    return 0;
  }

  unlockAfterWrite(pageId: number, _wordBefore: number): void {
    this.pool.unlock(pageId, true);
  }

  /** Returns -1 if the writer holds the page already (it then stays latched until the write ends). */
  lockForFree(pageId: number): number {
    return this.lockForWrite(pageId);
  }

  unlockFreed(pageId: number, wordBefore: number): void {
    if (wordBefore === -1) return;
    this.pool.unlock(pageId, true);
  }

  isLatched(pageId: number): boolean {
    return this.pool.isLatched(pageId);
  }

  /** The pool has no freed state: a freed page is one whose type says so (read at rest). */
  isFreed(pageId: number): boolean {
    const pool = this.pool;
    for (;;) {
      const offset = pool.read(pageId);
      const type = this.u8[offset + pType];
      if (pool.validate(pageId, pool.version)) return type === pageTypeFree;
    }
  }

  growToHold(pageId: number): void {
    if (pageId >= this.pagesMax) {
      throw new LightningError(
        'ERR_PARTITION_FULL',
        `partition is full: page ${pageId} is beyond the ${this.pagesMax - 1} pages its buffer pool's page table holds`,
      );
    }
  }

  /**
   * Frames for the pages a write will change, on top of the frames dirty already (never evicted) and
   * a margin for the pages its descent pins and for readers loading pages meanwhile. Fails up front,
   * so that the tree is never left half-changed by a frame it could not get; the owner writes its
   * dirty pages back and tries again.
   */
  reserveFrames(pageCount: number): void {
    if (this.#covered) return;
    const pool = this.pool;
    const dirty = pool.dirtyPageCount();
    const needed = pageCount + framesForPinsAndReaders;
    if (dirty + needed + this.#framesHeld > pool.framesMax) {
      const held = this.#framesHeld === 0 ? '' : ` and ${this.#framesHeld} are held for decided writes`;
      throw new FramesShortError(
        `buffer pool: the write may change ${pageCount} pages and needs ${needed} frames, but ${dirty} of ` +
          `its ${pool.framesMax} frames hold changes not yet written back${held}; write them back (checkpoint) or ` +
          'raise memoryMaxBytes',
        needed + this.#framesHeld <= pool.framesMax,
      );
    }
  }

  coverFrames(covered: boolean): void {
    this.#covered = covered;
  }

  holdFrames(delta: number): void {
    const held = this.#framesHeld + delta;
    if (!Number.isInteger(held) || held < 0) {
      throw new LightningError('ERR_INTERNAL', `buffer pool: ${held} frames held (${delta} added)`);
    }
    this.#framesHeld = held;
  }

  /**
   * Inside a group the pages it read stay pinned until it ends, clean or not: they are counted too
   * (a page both pinned and dirty twice, which errs on the safe side), so that a group deciding
   * write by write whether the next one fits (version cleanup) sees the frames it took so far.
   */
  framesAvailable(): number {
    const free = this.pool.framesMax - framesForPinsAndReaders - this.pool.dirtyPageCount();
    return Math.max(0, free - this.#pinned.length - this.#framesHeld);
  }

  /**
   * The pages pinned for good (a tree's meta page) are marked dirty after every write, reads
   * included: a page set leaves them dirty, so even a clean pool has them dirty.
   */
  framesAvailableWhenClean(): number {
    return Math.max(0, this.pool.framesMax - framesForPinsAndReaders - this.#pinnedForGood.size);
  }

  takeNewPage(): number {
    const pool = this.pool;
    const pageId = pool.allocate();
    pool.unlock(pageId, true);
    return pageId;
  }

  bytesReserved(): number {
    return this.pool.sab.byteLength;
  }

  releasePins(): void {
    const pool = this.pool;
    for (const pageId of this.#pinned) if (!this.#pinnedForGood.has(pageId)) pool.unpin(pageId);
    this.#pinned.length = 0;
    this.#lastPage = 0;
    for (const pageId of this.#pinnedForGood) pool.markDirty(pageId);
  }

  readerSpace(): PageSpace {
    if (!this.#owner) return this;
    this.#reader ??= new PooledPageSpace(this.pool, false);
    return this.#reader;
  }

  /** A copy of every page in an arena (see arena-image.ts): the check must not wait on evictions. */
  imageAtRest(): PageSpace {
    return copyToArena(this.pool);
  }
}
