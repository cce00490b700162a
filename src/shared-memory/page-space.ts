/**
 * What the B+Tree and its page allocator need from the memory their pages live in. Two kinds provide
 * it: a `PageArena`, where every page is resident at `pageId * pageSizeBytes` of one growable buffer,
 * and a space over a buffer pool, where a page lives in whichever frame holds it, or only in the page
 * file. The tree never computes where a page is: it asks, so that either can stand behind it.
 *
 * Readers follow optimistic lock coupling: `readLatch`, check the unstable bits (latch.ts), read the
 * page at `pageOffset`, then `validate`. The single writer latches what it changes (`lockForWrite`)
 * and reads the rest without latches.
 */
export interface PageSpace {
  readonly pageSizeBytes: number;
  /** Page ids below this exist at most; reaching it is ERR_PARTITION_FULL. */
  readonly pagesMax: number;
  /** Views of the memory the offsets below point into. */
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;

  /** True if `pageId` names an allocated page this thread can reach (refreshing its views if needed). */
  covers(pageId: number): boolean;
  /** Page ids handed out so far, page 0 included. */
  pagesAllocated(): number;

  /**
   * Byte offset of the page's contents in `u8`. A reader calls it after `readLatch` and believes what
   * it read only after `validate`; the writer may use it for any page, and the offset stays good until
   * its write ends (`releasePins`).
   */
  pageOffset(pageId: number): number;
  /** `pageOffset` as an index into `i32`, for the tree's meta fields. */
  pageWordIndex(pageId: number): number;
  /** The page's latch word for an optimistic read, bringing the page in first if it must. */
  readLatch(pageId: number): number;
  /** True if the page's latch word is still `version`: what was read from it since is consistent. */
  validate(pageId: number, version: number): boolean;

  /** The writer latches a page it changes; returns the word for `unlockAfterWrite`, or -1 if held. */
  lockForWrite(pageId: number): number;
  unlockAfterWrite(pageId: number, wordBefore: number): void;
  /** The writer latches a page it frees (held already or not); `unlockFreed` marks it freed. */
  lockForFree(pageId: number): number;
  unlockFreed(pageId: number, wordBefore: number): void;
  /** For checks at rest: the page is latched. */
  isLatched(pageId: number): boolean;
  /** For checks at rest: the page was freed and not reused since. */
  isFreed(pageId: number): boolean;

  /** `i32` indexes of the allocator's free-list head and free-page count. */
  readonly freeListHeadIndex: number;
  readonly freePageCountIndex: number;
  /** Makes sure page ids up to `pageId` can be taken by `takeNewPage`, or throws ERR_PARTITION_FULL. */
  growToHold(pageId: number): void;
  /**
   * Throws ERR_PARTITION_FULL, before anything changes, unless memory can hold `pageCount` more
   * changed pages for the write about to start (a pool holds changed pages until they are written
   * back). An arena always can.
   */
  reserveFrames(pageCount: number): void;
  /**
   * Changed pages memory can still take for a write about to start (what `reserveFrames` allows);
   * Number.MAX_SAFE_INTEGER for an arena, which holds every page.
   */
  framesAvailable(): number;
  /** `framesAvailable` once every changed page is written back. */
  framesAvailableWhenClean(): number;
  /**
   * Holds `delta` more frames (or gives them back, negative) for writes decided on already and applied
   * later (a prepared transaction's decision): `framesAvailable` and `reserveFrames` leave them out
   * until they are given back, just before the write that needs them.
   */
  holdFrames(delta: number): void;
  /**
   * While `covered`, `reserveFrames` checks nothing: the writes about to run were counted as a group
   * when they were staged (`framesForWrites`), a bound each write's own worst case may exceed.
   */
  coverFrames(covered: boolean): void;
  /** A page id never handed out before, resident and ready for the writer to latch and fill. */
  takeNewPage(): number;
  /** Memory held for pages now, in bytes. */
  bytesReserved(): number;

  /** The writer's write has ended: offsets it got from `pageOffset` may move from now on. */
  releasePins(): void;
  /** The space a reader on the writer's own thread uses (a writer's space may pin what it reads). */
  readerSpace(): PageSpace;
  /**
   * For checks at rest (checkTree): a space where every page stays where it is while the check holds
   * offsets to it. An arena verifies its header and is its own; a pool's is a copy of its pages.
   */
  imageAtRest(): PageSpace;
}
