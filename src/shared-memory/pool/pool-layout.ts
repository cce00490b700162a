/**
 * Layout of a buffer pool's SharedArrayBuffer, format version 3, after vmcache (Leis et al., SIGMOD
 * 2023): a page id indexes a page table of state words; a fixed set of frames holds the resident
 * pages. Every field is an index into an Int32Array over the buffer.
 *
 *   header     the fields below, the holder table, the holders' OS thread ids, then the page-read
 *              latency histogram
 *   pageTable  per page id, two words: its state word (see below) and the frame holding it, or -1
 *              (`pageState + 2 * pageId` and `frameOf + 2 * pageId`)
 *   pageOf     per frame: the page it holds, or 0 (page 0 is the page file's header, never pooled)
 *   frameDirty per frame: 1 while the frame holds changes the page file does not have yet
 *   framePinned per frame: 1 while the pages' owner holds an offset into it (the clock passes it by)
 *   freeFrames a stack of frames holding no page; its depth is kPoolFreeFrames
 *   frames     framesMax pages, starting at a page-aligned byte offset
 */
export const poolMagic = 0x4c_42_50_4c; // "LBPL"
export const poolFormatVersion = 3;

export const kPoolMagic = 0;
export const kPoolFormatVersion = 1;
export const kPoolPageSizeBytes = 2;
export const kPoolPagesMax = 3;
export const kPoolFramesMax = 4;
/** FNV-1a over the static fields above; verified when another thread attaches. */
export const kPoolHeaderChecksum = 5;
export const poolChecksummedFieldCount = kPoolHeaderChecksum;
/**
 * The frame mutex: 0 when free, else the holding holder's index plus one. It guards the free-frame
 * stack, the clock hand and the frameOf / pageOf links, so that a frame is never both free and linked.
 */
export const kPoolFrameMutex = 6;
export const kPoolClockHand = 7;
/** Depth of the free-frame stack. */
export const kPoolFreeFrames = 8;
/** Page ids handed out so far (the next new page id); starts at 1. */
export const kPoolPagesAllocated = 9;
export const kPoolDirtyFrames = 10;
/** Threads inside Atomics.wait on a page's state word or the frame mutex: unlock notifies only if any. */
export const kPoolWaiters = 11;
export const kPoolMisses = 12;
export const kPoolEvictions = 13;
export const kPoolLatchRecoveries = 14;
/** The tree's page allocator, over a pool: the head of its free-page list and the list's length. */
export const kPoolFreeListHead = 15;
export const kPoolFreePageCount = 16;

/**
 * Holder table: one word per attached thread, 0 when free, else the thread's id plus one, or, while
 * a recovery gives back what a dead holder held, recoveringBy(the recovering thread's holder index).
 */
export const kPoolHoldersBase = 17;
/** Locked state tags are 3 + holder index, and the tag is one byte. */
export const poolHoldersMax = 252;

/** The holder word of a dead holder that holder `recoverer` is recovering (holder-recovery.ts). */
export function recoveringBy(recoverer: number): number {
  return -(recoverer + 1);
}

/** The recovering holder a negative holder word names. */
export function recovererOf(word: number): number {
  return -word - 1;
}

/**
 * The holder word of a dead holder that left changed pages latched (holder-recovery.ts): retired for
 * the pool's life, since those pages keep its tag. Below every recoveringBy() word.
 */
export const holderLost = -1000;
/**
 * Per holder, its thread's OS thread id (os-thread.ts), or 0 when unknown. Set after the holder word
 * is claimed and cleared before it is freed, so a waiter that reads the holder word, then this, then
 * the holder word unchanged has the id of that very thread, or 0.
 */
export const kPoolHolderTidsBase = kPoolHoldersBase + poolHoldersMax;

/** Page-read latency histogram: count of misses whose read took at most each bound, then the rest. */
export const pageReadBoundsMicros = [5, 10, 20, 50, 100, 250, 1000, 10_000] as const;
export const kPoolReadBuckets = kPoolHolderTidsBase + poolHoldersMax;
export const poolHeaderWords = kPoolReadBuckets + pageReadBoundsMicros.length + 1;

/**
 * The state word of a page: the low byte is a tag, the upper 24 bits a version bumped whenever the
 * page's frame or content may have changed (unlock after a write, load, eviction). A reader that read
 * a frame between two loads of the same version, neither of them locked or evicted, read one state of
 * that page. 24 bits wrap after 16 million changes of one page, which an optimistic read spanning
 * microseconds cannot see.
 */
export const stateUnlocked = 0;
/** Resident, and picked by the clock once: a read clears it; a second pass of the hand evicts. */
export const stateMarked = 1;
export const stateEvicted = 2;
/** Tags from here up are Locked, by holder (tag - stateLockedBase). */
export const stateLockedBase = 3;
export const stateTagMask = 0xff;
export const stateVersionStep = 0x100;

export function stateTag(word: number): number {
  return word & stateTagMask;
}

/** The word with `tag` and the version bumped. */
export function stateNext(word: number, tag: number): number {
  return ((word & ~stateTagMask) + stateVersionStep) | tag | 0;
}

/** The word with `tag` and the same version. */
export function stateWithTag(word: number, tag: number): number {
  return (word & ~stateTagMask) | tag | 0;
}

/** Word offsets of the tables inside the buffer, and the frames' first byte. */
export interface PoolRegions {
  pageState: number;
  frameOf: number;
  pageOf: number;
  frameDirty: number;
  framePinned: number;
  freeFrames: number;
  framesByteOffset: number;
  totalBytes: number;
}

export function poolRegions(pageSizeBytes: number, pagesMax: number, framesMax: number): PoolRegions {
  // A page's state word and its frame side by side (index base + 2 * pageId): one cache line per page
  // a descent visits, where two tables would cost two.
  const pageState = poolHeaderWords;
  const frameOf = pageState + 1;
  const pageOf = pageState + 2 * pagesMax;
  const frameDirty = pageOf + framesMax;
  const framePinned = frameDirty + framesMax;
  const freeFrames = framePinned + framesMax;
  const tableBytes = (freeFrames + framesMax) * 4;
  const framesByteOffset = Math.ceil(tableBytes / pageSizeBytes) * pageSizeBytes;
  return {
    pageState,
    frameOf,
    pageOf,
    frameDirty,
    framePinned,
    freeFrames,
    framesByteOffset,
    totalBytes: framesByteOffset + framesMax * pageSizeBytes,
  };
}

/**
 * Every page id evicted and in no frame: the state and frame words of each page, which lie side by
 * side, written as one 64-bit word each (a quarter of a million pages per partition by default, at
 * every open).
 */
export function initialisePageTable(
  sab: SharedArrayBuffer,
  pageState: number,
  frameOf: number,
  pagesMax: number,
): void {
  if (frameOf === pageState + 1 && pageState % 2 === 0) {
    const pair = BigInt.asIntN(64, (BigInt(-1 >>> 0) << 32n) | BigInt(stateEvicted >>> 0));
    new BigInt64Array(sab, pageState * 4, pagesMax).fill(pair);
    const i32 = new Int32Array(sab, pageState * 4, 2);
    // The word order of a 64-bit word is the machine's: on a big-endian one, the loop below.
    if (i32[0] === stateEvicted && i32[1] === -1) return;
  }
  const i32 = new Int32Array(sab);
  for (let pageId = 0; pageId < pagesMax; pageId++) {
    i32[pageState + (pageId << 1)] = stateEvicted;
    i32[frameOf + (pageId << 1)] = -1;
  }
}
