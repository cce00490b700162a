import { threadId } from 'node:worker_threads';
import { checksumWords } from '../checksum.js';
import { LightningError } from '../errors.js';
import { pageCountMax, pageSizeBytesMax, pageSizeBytesMin, poolBytesMax } from '../limits.js';
import { pPageId } from '../page-layout.js';
import { FrameTable, StallClock, waitOn } from './frame-table.js';
import { HolderRecovery } from './holder-recovery.js';
import { ownOsThreadId } from './os-thread.js';
import type { PageLoader } from './page-loader.js';
import {
  initialisePageTable,
  kPoolDirtyFrames,
  kPoolEvictions,
  kPoolFormatVersion,
  kPoolFramesMax,
  kPoolFreeListHead,
  kPoolFreePageCount,
  kPoolHeaderChecksum,
  kPoolHoldersBase,
  kPoolHolderTidsBase,
  kPoolLatchRecoveries,
  kPoolMagic,
  kPoolMisses,
  kPoolPageSizeBytes,
  kPoolPagesAllocated,
  kPoolPagesMax,
  kPoolReadBuckets,
  kPoolWaiters,
  type PoolRegions,
  pageReadBoundsMicros,
  poolChecksummedFieldCount,
  poolFormatVersion,
  poolHoldersMax,
  poolMagic,
  poolRegions,
  stateEvicted,
  stateLockedBase,
  stateMarked,
  stateNext,
  stateTag,
  stateUnlocked,
  stateWithTag,
} from './pool-layout.js';

export interface BufferPoolOptions {
  /** Page size in bytes: a power of two from 4 KiB to 32 KiB. */
  pageSizeBytes: number;
  /** Page ids the page table covers (page 0 is reserved): the most pages the page file may hold. */
  pagesMax: number;
  /** Frames: the most pages resident at once. At least 8. */
  framesMax: number;
  /**
   * Page ids already in use, all of them in the page file (a pool over an existing file: its page
   * count). They start evicted and load on first use. Default 1: only the reserved page 0.
   */
  pagesAllocated?: number;
  /** A tree allocator's free-page list as the page file kept it (PageFileReader.spaceState). */
  freeListHead?: number;
  freePageCount?: number;
}

export interface BufferPoolStats {
  pageSizeBytes: number;
  framesMax: number;
  pagesAllocated: number;
  residentPages: number;
  dirtyPages: number;
  misses: number;
  evictions: number;
  latchRecoveries: number;
  /** Page reads by latency: counts at or below each bound of `readBoundsMicros`, then the rest. */
  readBuckets: number[];
  readBoundsMicros: readonly number[];
}

export const poolFramesMin = 8;

/**
 * A buffer pool in one SharedArrayBuffer, after vmcache: any thread attached to it resolves a page id
 * through the page table and reads the frame optimistically, validating the page's version after;
 * a thread that misses loads the page itself, synchronously, under the page's latch, and any thread
 * that needs a frame runs the clock. Only the pages' owner allocates and writes pages, and only a
 * checkpoint writes dirty ones back (see storage/page-file).
 *
 * Each attached thread is a holder with an index of its own: its latches carry the index, so when a
 * thread dies holding one, the page can be given back (holder-recovery.ts): by the thread reclaimer
 * when the death is reported, or by a thread that waits on such a latch once the holder's OS thread
 * is gone, since the report may be waiting for the very event loop the wait blocks.
 */
export class BufferPool {
  readonly sab: SharedArrayBuffer;
  readonly pageSizeBytes: number;
  readonly pagesMax: number;
  readonly framesMax: number;
  readonly holder: number;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  /** Output of `read()`: the version the page had when its frame was resolved. */
  version = 0;
  /** Reads through this thread's handle that found the page resident: a plain per-thread counter. */
  hits = 0;
  /** Where the tables are: for a tree's read path, which inlines a hit (pooled-page-space.ts). */
  readonly regions: PoolRegions;
  readonly #frames: FrameTable;
  readonly #recovery: HolderRecovery;
  readonly #loader: PageLoader;
  readonly #stateBase: number;
  readonly #frameOfBase: number;
  readonly #framesByteOffset: number;

  private constructor(sab: SharedArrayBuffer, loader: PageLoader) {
    const header = new Int32Array(sab, 0, poolChecksummedFieldCount + 1);
    this.sab = sab;
    this.pageSizeBytes = header[kPoolPageSizeBytes]!;
    this.pagesMax = header[kPoolPagesMax]!;
    this.framesMax = header[kPoolFramesMax]!;
    this.regions = poolRegions(this.pageSizeBytes, this.pagesMax, this.framesMax);
    this.u8 = new Uint8Array(sab);
    this.i32 = new Int32Array(sab);
    this.holder = claimHolder(this.i32);
    this.#frames = new FrameTable(this.i32, this.regions, this.framesMax, this.holder, (holder) =>
      this.#recovery.recoverIfEnded(holder),
    );
    this.#loader = loader;
    this.#stateBase = this.regions.pageState;
    this.#recovery = new HolderRecovery(this.i32, this.#frames, this.#stateBase, this.holder);
    this.#frameOfBase = this.regions.frameOf;
    this.#framesByteOffset = this.regions.framesByteOffset;
  }

  /** A new pool, every page id unallocated, every frame free; this thread attached to it. */
  static create(options: BufferPoolOptions, loader: PageLoader): BufferPool {
    const {
      pageSizeBytes,
      pagesMax,
      framesMax,
      pagesAllocated = 1,
      freeListHead = 0,
      freePageCount = 0,
    } = options;
    if (
      !Number.isInteger(pageSizeBytes) ||
      pageSizeBytes < pageSizeBytesMin ||
      pageSizeBytes > pageSizeBytesMax ||
      (pageSizeBytes & (pageSizeBytes - 1)) !== 0
    ) {
      throw badArgument(
        `pageSizeBytes must be a power of two from ${pageSizeBytesMin} to ${pageSizeBytesMax}`,
      );
    }
    if (!Number.isInteger(pagesMax) || pagesMax < 2 || pagesMax > pageCountMax) {
      throw badArgument(`pagesMax must be an integer from 2 to ${pageCountMax}, got ${String(pagesMax)}`);
    }
    if (!Number.isInteger(framesMax) || framesMax < poolFramesMin || framesMax > pagesMax) {
      throw badArgument(
        `framesMax must be an integer from ${poolFramesMin} to pagesMax, got ${String(framesMax)}`,
      );
    }
    if (!Number.isInteger(pagesAllocated) || pagesAllocated < 1 || pagesAllocated > pagesMax) {
      throw badArgument(
        `pagesAllocated must be an integer from 1 to pagesMax, got ${String(pagesAllocated)}`,
      );
    }
    if (
      !Number.isInteger(freeListHead) ||
      !Number.isInteger(freePageCount) ||
      freeListHead < 0 ||
      freeListHead >= pagesAllocated ||
      freePageCount < 0 ||
      freePageCount >= pagesAllocated ||
      (freeListHead === 0) !== (freePageCount === 0)
    ) {
      throw badArgument(
        `a free-page list of ${String(freePageCount)} pages from page ${String(freeListHead)} does not fit ` +
          `${pagesAllocated} allocated pages`,
      );
    }
    const regions = poolRegions(pageSizeBytes, pagesMax, framesMax);
    if (regions.totalBytes > poolBytesMax) {
      throw badArgument(
        `a pool of ${framesMax} frames of ${pageSizeBytes} bytes over ${pagesMax} page ids takes ` +
          `${regions.totalBytes} bytes; one pool holds at most ${poolBytesMax} (fewer frames, or a smaller pagesMax)`,
      );
    }
    const sab = new SharedArrayBuffer(regions.totalBytes);
    const i32 = new Int32Array(sab);
    i32[kPoolMagic] = poolMagic;
    i32[kPoolFormatVersion] = poolFormatVersion;
    i32[kPoolPageSizeBytes] = pageSizeBytes;
    i32[kPoolPagesMax] = pagesMax;
    i32[kPoolFramesMax] = framesMax;
    i32[kPoolHeaderChecksum] = checksumWords(i32.subarray(0, poolChecksummedFieldCount)) | 0;
    i32[kPoolPagesAllocated] = pagesAllocated;
    i32[kPoolFreeListHead] = freeListHead;
    i32[kPoolFreePageCount] = freePageCount;
    initialisePageTable(sab, regions.pageState, regions.frameOf, pagesMax);
    const pool = new BufferPool(sab, loader);
    pool.#frames.initialise();
    return pool;
  }

  /** Attaches this thread to a pool another thread created, verifying its header. */
  static attach(sab: unknown, loader: PageLoader): BufferPool {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < 4 * (poolChecksummedFieldCount + 1)) {
      throw badArgument('not a buffer pool: expected a SharedArrayBuffer');
    }
    const header = new Int32Array(sab, 0, poolChecksummedFieldCount + 1);
    if (header[kPoolMagic] !== poolMagic)
      throw new LightningError('ERR_CORRUPTION', 'buffer pool: bad magic number');
    if (header[kPoolFormatVersion] !== poolFormatVersion) {
      throw new LightningError(
        'ERR_FORMAT_VERSION',
        `buffer pool format version ${header[kPoolFormatVersion]}; this build reads version ${poolFormatVersion}`,
      );
    }
    if (header[kPoolHeaderChecksum] !== (checksumWords(header.subarray(0, poolChecksummedFieldCount)) | 0)) {
      throw new LightningError('ERR_CORRUPTION', 'buffer pool header: checksum mismatch');
    }
    return new BufferPool(sab, loader);
  }

  /** Gives this thread's holder index back. The thread must hold no latch. */
  detach(): void {
    Atomics.store(this.i32, kPoolHolderTidsBase + this.holder, 0);
    Atomics.store(this.i32, kPoolHoldersBase + this.holder, 0);
  }

  pagesAllocated(): number {
    return Atomics.load(this.i32, kPoolPagesAllocated);
  }

  /**
   * Resolves `pageId` for an optimistic read, loading it if it is not resident, and returns the byte
   * offset of its frame in `u8`; `version` is set. The caller reads, then calls `validate(pageId,
   * version)`: false means the page moved or changed meanwhile and what was read is void.
   */
  read(pageId: number): number {
    this.#checkPageId(pageId);
    const i32 = this.i32;
    const index = this.#stateBase + (pageId << 1);
    // Made on the first wait only: a hit allocates nothing.
    let stall: StallClock | null = null;
    for (;;) {
      const word = Atomics.load(i32, index);
      const tag = stateTag(word);
      if (tag === stateUnlocked || tag === stateMarked) {
        // A read is the second chance: the clock will pass this page over once more.
        if (tag === stateMarked) Atomics.compareExchange(i32, index, word, stateWithTag(word, stateUnlocked));
        const frame = Atomics.load(i32, this.#frameOfBase + (pageId << 1));
        // Evicted since the state was loaded: validate would fail anyway; look again instead.
        if (frame < 0) continue;
        this.version = word;
        this.hits++;
        return this.#frameByteOffset(frame);
      }
      if (tag === stateEvicted) {
        const locked = stateWithTag(word, stateLockedBase + this.holder);
        if (Atomics.compareExchange(i32, index, word, locked) !== word) continue;
        const offset = this.#load(pageId, locked);
        const unlocked = stateNext(locked, stateUnlocked);
        this.#publish(index, unlocked);
        this.version = unlocked;
        return offset;
      }
      stall ??= new StallClock();
      this.#waitForLatch(index, word, pageId, stall);
    }
  }

  /** True if the page still has the version `read()` returned: the read saw one state of it. */
  validate(pageId: number, version: number): boolean {
    const word = Atomics.load(this.i32, this.#stateBase + (pageId << 1));
    return (word ^ version) >>> 8 === 0 && stateTag(word) < stateEvicted;
  }

  /**
   * Latches `pageId` exclusively, loading it if needed, and returns its frame's byte offset. Readers
   * of the page wait or restart until `unlock`. A page is latched by one thread at a time.
   */
  lock(pageId: number): number {
    this.#checkPageId(pageId);
    const i32 = this.i32;
    const index = this.#stateBase + (pageId << 1);
    // Made on the first wait only: a hit allocates nothing.
    let stall: StallClock | null = null;
    for (;;) {
      const word = Atomics.load(i32, index);
      const tag = stateTag(word);
      if (tag < stateLockedBase) {
        const locked = stateWithTag(word, stateLockedBase + this.holder);
        if (Atomics.compareExchange(i32, index, word, locked) !== word) continue;
        if (tag === stateEvicted) return this.#load(pageId, locked);
        return this.#frameByteOffset(Atomics.load(i32, this.#frameOfBase + (pageId << 1)));
      }
      stall ??= new StallClock();
      this.#waitForLatch(index, word, pageId, stall);
    }
  }

  /** Releases `lock`; `dirty` records that the frame now differs from the page file. */
  unlock(pageId: number, dirty: boolean): void {
    const index = this.#stateBase + (pageId << 1);
    const word = Atomics.load(this.i32, index);
    if (stateTag(word) !== stateLockedBase + this.holder) {
      throw new LightningError(
        'ERR_INTERNAL',
        `buffer pool: unlock of page ${pageId}, which this thread does not hold`,
      );
    }
    if (dirty) this.#frames.setDirty(Atomics.load(this.i32, this.#frameOfBase + (pageId << 1)), true);
    this.#publish(index, stateNext(word, stateUnlocked));
  }

  /**
   * A new page id with a zeroed, dirty frame, latched by the caller (who fills it, then unlocks). Only
   * the pages' owner allocates. Throws ERR_PARTITION_FULL when the page table is full.
   */
  allocate(): number {
    const i32 = this.i32;
    const pageId = Atomics.load(i32, kPoolPagesAllocated);
    if (pageId >= this.pagesMax) {
      throw new LightningError(
        'ERR_PARTITION_FULL',
        `buffer pool: all ${this.pagesMax - 1} page ids are in use`,
      );
    }
    const index = this.#stateBase + (pageId << 1);
    const word = Atomics.load(i32, index);
    const locked = stateWithTag(word, stateLockedBase + this.holder);
    Atomics.store(i32, index, locked);
    this.#frames.lockMutex();
    let frame: number;
    try {
      frame = this.#frames.linkFrame(pageId);
    } catch (error) {
      Atomics.store(i32, index, word);
      throw error;
    } finally {
      this.#frames.unlockMutex();
    }
    Atomics.store(i32, kPoolPagesAllocated, pageId + 1);
    const offset = this.#frameByteOffset(frame);
    this.u8.fill(0, offset, offset + this.pageSizeBytes);
    this.#frames.setDirty(frame, true);
    return pageId;
  }

  /**
   * Pins `pageId` for the pages' owner (loading it if needed) and returns its frame's byte offset,
   * which stays good until `unpin`: the clock passes a pinned frame by. Readers still read the page and
   * the owner still latches it to change it. Owner only; a page latched by the owner may be pinned.
   */
  pin(pageId: number): number {
    this.#checkPageId(pageId);
    const i32 = this.i32;
    const frames = this.#frames;
    const index = this.#stateBase + (pageId << 1);
    const mine = stateLockedBase + this.holder;
    for (;;) {
      if (stateTag(Atomics.load(i32, index)) !== mine) this.read(pageId);
      const frame = frames.frameOf(pageId);
      if (frame < 0) continue;
      frames.setPinned(frame, true);
      // An evictor locks the page, then looks at the pin: seeing the page unlocked (or ours) after
      // setting the pin means any evictor to come will see the pin.
      const tag = stateTag(Atomics.load(i32, index));
      if (
        (tag === stateUnlocked || tag === stateMarked || tag === mine) &&
        frames.frameOf(pageId) === frame
      ) {
        return this.#frameByteOffset(frame);
      }
      frames.setPinned(frame, false);
    }
  }

  /** Ends `pin`. */
  unpin(pageId: number): void {
    const frame = this.#frames.frameOf(pageId);
    if (frame >= 0) this.#frames.setPinned(frame, false);
  }

  /** The byte offset of a page pinned by this thread, or -1 if it is not pinned. */
  pinnedOffset(pageId: number): number {
    const frame = this.#frames.frameOf(pageId);
    if (frame < 0 || !this.#frames.isPinned(frame) || this.#frames.pageOf(frame) !== pageId) return -1;
    return this.#frameByteOffset(frame);
  }

  /**
   * Where the page's frame is now, for a reader that resolved it with `read` and will `validate`; if
   * it was evicted since, the first frame's offset (any frame: the validation will fail).
   */
  residentOffset(pageId: number): number {
    const frame = this.#frames.frameOf(pageId);
    return this.#frameByteOffset(Math.max(frame, 0));
  }

  /** True if this thread holds the page's latch. */
  holdsLatch(pageId: number): boolean {
    return (
      stateTag(Atomics.load(this.i32, this.#stateBase + (pageId << 1))) === stateLockedBase + this.holder
    );
  }

  /** True if another thread or this one holds the page's latch. */
  isLatched(pageId: number): boolean {
    return stateTag(Atomics.load(this.i32, this.#stateBase + (pageId << 1))) >= stateLockedBase;
  }

  /**
   * Records that a pinned page was changed without its latch (the counters of a tree's meta page,
   * which readers read as single words). Owner only.
   */
  markDirty(pageId: number): void {
    const frame = this.#frames.frameOf(pageId);
    if (frame >= 0) this.#frames.setDirty(frame, true);
  }

  /** The tree allocator's words, as a page file keeps them beside its pages. */
  spaceState(): { pagesAllocated: number; freeListHead: number; freePageCount: number } {
    return {
      pagesAllocated: this.pagesAllocated(),
      freeListHead: Atomics.load(this.i32, kPoolFreeListHead),
      freePageCount: Atomics.load(this.i32, kPoolFreePageCount),
    };
  }

  /** Frames holding changes the page file does not have yet. */
  dirtyPageCount(): number {
    return Atomics.load(this.i32, kPoolDirtyFrames);
  }

  /** Byte offset of a page this thread holds latched. */
  lockedOffset(pageId: number): number {
    return this.#frameByteOffset(Atomics.load(this.i32, this.#frameOfBase + (pageId << 1)));
  }

  /**
   * Runs the clock until `freeTarget` frames are free (the owner's background eviction above its
   * high-water mark) or every resident page is dirty or latched. Returns the pages evicted.
   */
  evict(freeTarget: number): number {
    this.#frames.lockMutex();
    try {
      return this.#frames.evictUntilFree(Math.min(freeTarget, this.framesMax));
    } finally {
      this.#frames.unlockMutex();
    }
  }

  /** Calls `visit` with each dirty page and its frame's byte offset. Owner only (between its writes). */
  forEachDirty(visit: (pageId: number, offset: number) => void): void {
    for (let frame = 0; frame < this.framesMax; frame++) {
      if (!this.#frames.isDirty(frame)) continue;
      const pageId = this.#frames.pageOf(frame);
      if (pageId !== 0) visit(pageId, this.#frameByteOffset(frame));
    }
  }

  /** The page's current version word, for `markCleanIf`. */
  versionOf(pageId: number): number {
    return Atomics.load(this.i32, this.#stateBase + (pageId << 1));
  }

  /**
   * Marks a page clean once the page file holds the image copied at `version`: a page changed since
   * stays dirty, so the next checkpoint writes it again. Owner only.
   *
   * With `image` (the copy written), the frame's contents must also still equal it: a tree's meta
   * page takes its counters and root as words in place, without a latch and so without a version
   * bump, and a write between the copy and this call would otherwise be taken for written. The first
   * word (checksum on disk, latch in memory) and the page id the copy was sealed with are not compared.
   */
  markCleanIf(pageId: number, version: number, image: Uint8Array | null = null): boolean {
    const word = Atomics.load(this.i32, this.#stateBase + (pageId << 1));
    if ((word ^ version) >>> 8 !== 0 || stateTag(word) >= stateEvicted) return false;
    const frame = Atomics.load(this.i32, this.#frameOfBase + (pageId << 1));
    if (image !== null && !this.#frameEquals(frame, image)) return false;
    this.#frames.setDirty(frame, false);
    return true;
  }

  #frameEquals(frame: number, image: Uint8Array): boolean {
    const at = this.#frameByteOffset(frame);
    const u8 = this.u8;
    const size = this.pageSizeBytes;
    if (image.length !== size) return false;
    for (let i = 4; i < size; i++) {
      if (i === pPageId) i += 4;
      if (u8[at + i] !== image[i]) return false;
    }
    return true;
  }

  /**
   * Gives back every latch held by the thread `thread` (its threadId), which died holding them, and
   * its holder index; returns how many it gave back (holder-recovery.ts). Nothing happens if another
   * thread is recovering it already, or has.
   */
  recoverThread(thread: number): number {
    if (!Number.isInteger(thread) || thread < 0 || thread === threadId) {
      throw badArgument(`recoverThread: ${String(thread)} is not another thread's id`);
    }
    return this.#recovery.recoverThread(thread);
  }

  /** The holder index of the thread with this `threadId`, or -1. */
  holderOfThread(thread: number): number {
    for (let holder = 0; holder < poolHoldersMax; holder++) {
      if (Atomics.load(this.i32, kPoolHoldersBase + holder) === thread + 1) return holder;
    }
    return -1;
  }

  stats(): BufferPoolStats {
    const i32 = this.i32;
    return {
      pageSizeBytes: this.pageSizeBytes,
      framesMax: this.framesMax,
      pagesAllocated: this.pagesAllocated(),
      residentPages: this.framesMax - this.#frames.freeFrameCount(),
      dirtyPages: Atomics.load(i32, kPoolDirtyFrames),
      misses: Atomics.load(i32, kPoolMisses),
      evictions: Atomics.load(i32, kPoolEvictions),
      latchRecoveries: Atomics.load(i32, kPoolLatchRecoveries),
      readBuckets: Array.from({ length: pageReadBoundsMicros.length + 1 }, (_, bucket) =>
        Atomics.load(i32, kPoolReadBuckets + bucket),
      ),
      readBoundsMicros: pageReadBoundsMicros,
    };
  }

  /** Loads `pageId`, latched by this thread as `locked`, into a frame; returns the frame's offset. */
  #load(pageId: number, locked: number): number {
    const frames = this.#frames;
    const index = this.#stateBase + (pageId << 1);
    let frame: number;
    try {
      // Inside the try: a wait for the mutex that gives up (its holder died and nobody recovered
      // it within the budget) must leave the page evicted, not latched by this thread for good.
      frames.lockMutex();
    } catch (error) {
      this.#publish(index, stateNext(locked, stateEvicted));
      throw error;
    }
    try {
      frame = frames.linkFrame(pageId);
    } catch (error) {
      this.#publish(index, stateNext(locked, stateEvicted));
      throw error;
    } finally {
      frames.unlockMutex();
    }
    const offset = this.#frameByteOffset(frame);
    const started = performance.now();
    try {
      this.#loader.load(pageId, this.u8.subarray(offset, offset + this.pageSizeBytes));
    } catch (error) {
      frames.lockMutex();
      frames.unlinkFrame(pageId);
      frames.unlockMutex();
      this.#publish(index, stateNext(locked, stateEvicted));
      throw error;
    }
    this.#countRead((performance.now() - started) * 1000);
    return offset;
  }

  #countRead(micros: number): void {
    let bucket = 0;
    while (bucket < pageReadBoundsMicros.length && micros > pageReadBoundsMicros[bucket]!) bucket++;
    Atomics.add(this.i32, kPoolReadBuckets + bucket, 1);
    Atomics.add(this.i32, kPoolMisses, 1);
  }

  #publish(index: number, word: number): void {
    Atomics.store(this.i32, index, word);
    if (Atomics.load(this.i32, kPoolWaiters) > 0) Atomics.notify(this.i32, index);
  }

  #waitForLatch(index: number, word: number, pageId: number, stall: StallClock): void {
    if (stateTag(word) === stateLockedBase + this.holder) {
      throw new LightningError(
        'ERR_INTERNAL',
        `buffer pool: page ${pageId} is already latched by this thread`,
      );
    }
    waitOn(this.i32, index, word);
    if (stall.stuck(word)) {
      throw new LightningError(
        'ERR_INTERNAL',
        `buffer pool: page ${pageId} has been latched by holder ${stateTag(word) - stateLockedBase} for ` +
          '10 s; a thread that died holding it must be recovered (recoverThread)',
      );
    }
    if (stall.holderCheckDue()) this.#recovery.recoverIfEnded(stateTag(word) - stateLockedBase);
  }

  #frameByteOffset(frame: number): number {
    return this.#framesByteOffset + frame * this.pageSizeBytes;
  }

  #checkPageId(pageId: number): void {
    if (!Number.isInteger(pageId) || pageId < 1 || pageId >= Atomics.load(this.i32, kPoolPagesAllocated)) {
      throw badArgument(
        `page id ${String(pageId)} is not an allocated page (1..${this.pagesAllocated() - 1})`,
      );
    }
  }
}

function claimHolder(i32: Int32Array): number {
  for (let holder = 0; holder < poolHoldersMax; holder++) {
    if (Atomics.compareExchange(i32, kPoolHoldersBase + holder, 0, threadId + 1) === 0) {
      Atomics.store(i32, kPoolHolderTidsBase + holder, ownOsThreadId());
      return holder;
    }
  }
  throw badArgument(
    `buffer pool: all ${poolHoldersMax} holder slots are in use; detach threads that are done`,
  );
}

function badArgument(message: string): LightningError {
  return new LightningError('ERR_BAD_ARGUMENT', message);
}
