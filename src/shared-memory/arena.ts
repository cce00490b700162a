import {
  arenaChecksummedFieldCount,
  arenaFormatVersion,
  arenaMagic,
  kArenaFormatVersion,
  kArenaFreeListHead,
  kArenaFreePageCount,
  kArenaHeaderChecksum,
  kArenaMagic,
  kArenaPageSizeBytes,
  kArenaPagesAllocated,
  kArenaPagesMax,
} from './arena-layout.js';
import { assert } from './assert.js';
import { checksumWords } from './checksum.js';
import { LightningError } from './errors.js';
import { latchFreed, latchLockedBit, latchObsoleteBit, latchUnlocked } from './latch.js';
import {
  assertLimitsConsistent,
  pageSizeBytesDefault,
  pageSizeBytesMax,
  pageSizeBytesMin,
  partitionBytesDefault,
  partitionBytesInitial,
  partitionBytesMax,
  partitionPagesMin,
} from './limits.js';
import type { PageSpace } from './page-space.js';

export interface ArenaOptions {
  /** Page size in bytes: a power of two from 4 KiB to 32 KiB. Default 4 KiB. */
  pageSizeBytes?: number;
  /** Most bytes the arena may grow to; reaching it is ERR_PARTITION_FULL. Default 1 GiB. */
  maxBytes?: number;
}

/**
 * A growable SharedArrayBuffer carved into fixed-size pages, readable from any thread.
 *
 * Views are fixed-length and recreated when the buffer has grown: on Node 20, typed arrays that track
 * a growable buffer's length are an order of magnitude slower to index than fixed-length ones. A
 * thread that meets a page id beyond its views calls `covers()`, which rebuilds them from the buffer's
 * current length; no message is needed because the buffer object itself is shared.
 *
 * The tree reaches pages only through the methods below, so that a buffer pool, where a page may live
 * in any frame or on disk only, can stand in for the arena without touching the tree: `pageOffset`
 * and `pageWordIndex` (where the page's contents are), `readLatch` and `validate` (a reader's
 * optimistic check, which a pool would first bring the page in for), and the writer's latches
 * (`lockForWrite`, `lockForFree` and their unlocks). Here the latch is the page's first word.
 */
export class PageArena implements PageSpace {
  readonly sab: SharedArrayBuffer;
  readonly pageSizeBytes: number;
  readonly pagesMax: number;
  /** Int32 words per page: an Int32Array index of a page's first word is pageId * pageWords. */
  readonly pageWords: number;
  u8: Uint8Array;
  u16: Uint16Array;
  u32: Uint32Array;
  i32: Int32Array;
  /** Pages covered by the current views. */
  viewPages: number;
  readonly freeListHeadIndex = kArenaFreeListHead;
  readonly freePageCountIndex = kArenaFreePageCount;

  private constructor(sab: SharedArrayBuffer, pageSizeBytes: number, pagesMax: number) {
    this.sab = sab;
    this.pageSizeBytes = pageSizeBytes;
    this.pagesMax = pagesMax;
    this.pageWords = pageSizeBytes >>> 2;
    this.u8 = new Uint8Array(0);
    this.u16 = new Uint16Array(0);
    this.u32 = new Uint32Array(0);
    this.i32 = new Int32Array(0);
    this.viewPages = 0;
    this.refreshViews();
  }

  /** Creates an arena with its header page (page 0) written and checksummed. */
  static create(options: ArenaOptions = {}): PageArena {
    const pageSizeBytes = options.pageSizeBytes ?? pageSizeBytesDefault;
    if (
      !Number.isInteger(pageSizeBytes) ||
      pageSizeBytes < pageSizeBytesMin ||
      pageSizeBytes > pageSizeBytesMax ||
      (pageSizeBytes & (pageSizeBytes - 1)) !== 0
    ) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `pageSizeBytes must be a power of two from ${pageSizeBytesMin} to ${pageSizeBytesMax}, got ${String(pageSizeBytes)}`,
      );
    }
    assertLimitsConsistent(pageSizeBytes);
    const maxBytesWanted = options.maxBytes ?? partitionBytesDefault;
    if (
      typeof maxBytesWanted !== 'number' ||
      !Number.isInteger(maxBytesWanted) ||
      maxBytesWanted < partitionPagesMin * pageSizeBytes ||
      maxBytesWanted > partitionBytesMax
    ) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `maxBytes must be an integer from ${partitionPagesMin * pageSizeBytes} to ${partitionBytesMax}, got ${String(maxBytesWanted)}`,
      );
    }
    const pagesMax = Math.floor(maxBytesWanted / pageSizeBytes);
    const maxBytes = pagesMax * pageSizeBytes;
    const initialBytes = Math.min(maxBytes, partitionBytesInitial);
    const sab = new SharedArrayBuffer(initialBytes, { maxByteLength: maxBytes });
    const header = new Int32Array(sab, 0, arenaChecksummedFieldCount);
    header[kArenaMagic] = arenaMagic;
    header[kArenaFormatVersion] = arenaFormatVersion;
    header[kArenaPageSizeBytes] = pageSizeBytes;
    header[kArenaPagesMax] = pagesMax;
    const arena = new PageArena(sab, pageSizeBytes, pagesMax);
    Atomics.store(arena.i32, kArenaHeaderChecksum, checksumWords(header) | 0);
    // Page 0 is this header; it is never handed out, which is why page id 0 can mean "no page".
    Atomics.store(arena.i32, kArenaPagesAllocated, 1);
    return arena;
  }

  /** Attaches to an arena created by another thread, verifying its header. */
  static attach(sab: unknown): PageArena {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < pageSizeBytesMin) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'not an arena: expected a SharedArrayBuffer');
    }
    const header = new Int32Array(sab, 0, arenaChecksummedFieldCount + 1);
    if (header[kArenaMagic] !== arenaMagic) {
      throw new LightningError('ERR_CORRUPTION', 'arena header: bad magic number');
    }
    if (header[kArenaFormatVersion] !== arenaFormatVersion) {
      throw new LightningError(
        'ERR_FORMAT_VERSION',
        `arena format version ${header[kArenaFormatVersion]}; this build reads version ${arenaFormatVersion}`,
      );
    }
    const expected = checksumWords(header.subarray(0, arenaChecksummedFieldCount)) | 0;
    if (Atomics.load(header, kArenaHeaderChecksum) !== expected) {
      throw new LightningError('ERR_CORRUPTION', 'arena header: checksum mismatch');
    }
    const pageSizeBytes = header[kArenaPageSizeBytes]!;
    const pagesMax = header[kArenaPagesMax]!;
    if (pagesMax * pageSizeBytes !== sab.maxByteLength) {
      throw new LightningError('ERR_CORRUPTION', 'arena header: size does not match its buffer');
    }
    return new PageArena(sab, pageSizeBytes, pagesMax);
  }

  /** Byte offset of a page's contents in `u8`. */
  pageOffset(pageId: number): number {
    return pageId * this.pageSizeBytes;
  }

  /** Int32Array index of a page's first word in `i32`. */
  pageWordIndex(pageId: number): number {
    return pageId * this.pageWords;
  }

  /**
   * The page's latch word as a reader sees it now. A reader checks it for the unstable bits, reads the
   * page, then compares the word again (`validate`); the caller must have checked `covers(pageId)`.
   */
  readLatch(pageId: number): number {
    return Atomics.load(this.i32, pageId * this.pageWords);
  }

  /** True if the page's latch word is still `version`: what was read from the page since is consistent. */
  validate(pageId: number, version: number): boolean {
    return Atomics.load(this.i32, pageId * this.pageWords) === version;
  }

  /**
   * The single writer latches a page it is about to change: readers of it restart until
   * `unlockAfterWrite`. Returns the word to hand back to `unlockAfterWrite`, or -1 (never a word of
   * an unlocked page) if the writer holds the page already.
   */
  lockForWrite(pageId: number): number {
    const index = pageId * this.pageWords;
    const word = Atomics.load(this.i32, index);
    if ((word & latchLockedBit) !== 0) return -1;
    Atomics.store(this.i32, index, word | latchLockedBit);
    return word;
  }

  /** Ends `lockForWrite`: the version moves on, so every read that overlapped the change restarts. */
  unlockAfterWrite(pageId: number, wordBefore: number): void {
    Atomics.store(this.i32, pageId * this.pageWords, latchUnlocked(wordBefore));
  }

  /**
   * Latches a page that is being freed (it may be latched by the writer already) and returns its word;
   * `unlockFreed` then marks it obsolete with the version moved on, so a stale reader restarts.
   */
  lockForFree(pageId: number): number {
    const index = pageId * this.pageWords;
    const word = Atomics.load(this.i32, index);
    Atomics.store(this.i32, index, word | latchLockedBit);
    return word;
  }

  unlockFreed(pageId: number, wordBefore: number): void {
    Atomics.store(this.i32, pageId * this.pageWords, latchFreed(wordBefore));
  }

  /** For checks at rest (checkTree): the page is latched. */
  isLatched(pageId: number): boolean {
    return (Atomics.load(this.i32, pageId * this.pageWords) & latchLockedBit) !== 0;
  }

  /** For checks at rest (checkTree): the page was freed and not reused since. */
  isFreed(pageId: number): boolean {
    return (Atomics.load(this.i32, pageId * this.pageWords) & latchObsoleteBit) !== 0;
  }

  /**
   * True if `pageId` names a page inside the buffer, rebuilding the views if the buffer has grown
   * since they were made. Callers holding a view in a local must reload it after a true answer.
   */
  covers(pageId: number): boolean {
    if (pageId < this.viewPages) return true;
    this.refreshViews();
    return pageId < this.viewPages;
  }

  /** Pages ever handed out, including page 0 and the pages now on the free list. */
  pagesAllocated(): number {
    return Atomics.load(this.i32, kArenaPagesAllocated);
  }

  /**
   * Grows the buffer (doubling, capped at the maximum) so that `pageId` lies inside it. The operating
   * system refusing the memory is reported as a full partition, before anything has changed.
   */
  growToHold(pageId: number): void {
    const neededBytes = this.pageOffset(pageId + 1);
    const sab = this.sab;
    if (neededBytes > sab.byteLength) {
      const maxBytes = this.pagesMax * this.pageSizeBytes;
      try {
        sab.grow(Math.min(maxBytes, Math.max(neededBytes, sab.byteLength * 2)));
      } catch (error) {
        throw new LightningError(
          'ERR_PARTITION_FULL',
          `could not grow the partition's buffer to ${neededBytes} bytes: ${String(error)}`,
          { cause: error },
        );
      }
    }
    this.refreshViews();
  }

  /** Every page of an arena is in memory: growToHold made the room. */
  reserveFrames(_pageCount: number): void {}

  framesAvailable(): number {
    return Number.MAX_SAFE_INTEGER;
  }

  /** An arena holds every page: nothing to hold. */
  holdFrames(_delta: number): void {}

  /** An arena reserves no frames. */
  coverFrames(_covered: boolean): void {}

  framesAvailableWhenClean(): number {
    return Number.MAX_SAFE_INTEGER;
  }

  /** The next page id never handed out; `growToHold` must have made room for it. */
  takeNewPage(): number {
    const pageId = this.pagesAllocated();
    assert(
      pageId < this.pagesMax && this.pageOffset(pageId + 1) <= this.sab.byteLength,
      'a new page without room made for it',
    );
    this.refreshViews();
    Atomics.store(this.i32, kArenaPagesAllocated, pageId + 1);
    return pageId;
  }

  bytesReserved(): number {
    return this.sab.byteLength;
  }

  /** Pages never move in an arena: nothing is pinned. */
  releasePins(): void {}

  readerSpace(): PageArena {
    return this;
  }

  imageAtRest(): PageArena {
    PageArena.attach(this.sab);
    return this;
  }

  /** Rebuilds the fixed-length views over the buffer's current length. */
  refreshViews(): void {
    const bytes = this.sab.byteLength;
    if (bytes === this.u8.length) return;
    this.u8 = new Uint8Array(this.sab, 0, bytes);
    this.u16 = new Uint16Array(this.sab, 0, bytes >>> 1);
    this.u32 = new Uint32Array(this.sab, 0, bytes >>> 2);
    this.i32 = new Int32Array(this.sab, 0, bytes >>> 2);
    this.viewPages = Math.floor(bytes / this.pageSizeBytes);
  }
}
