import { LightningError } from '../errors.js';
import {
  kPoolClockHand,
  kPoolDirtyFrames,
  kPoolEvictions,
  kPoolFrameMutex,
  kPoolFreeFrames,
  kPoolWaiters,
  type PoolRegions,
  stateEvicted,
  stateLockedBase,
  stateMarked,
  stateNext,
  stateTag,
  stateUnlocked,
  stateWithTag,
} from './pool-layout.js';

/** How long one Atomics.wait on a latch lasts before the waiter looks again. */
export const latchWaitSliceMs = 1;
/** A latch held this long is held by a dead thread nobody recovered, or the pool is corrupt. */
export const latchWaitBudgetMs = 10_000;
/**
 * How often a waiter on one unchanged latch word asks whether the holder's thread has ended. A
 * live holder keeps a latch for one page read (microseconds to milliseconds), so most waits end
 * before the first check; each check costs one stat of /proc.
 */
export const latchHolderCheckMs = 5;

/**
 * The frames of a buffer pool: the frame mutex, the free-frame stack, the clock hand and the links
 * between pages and frames. Every change to a link or to the stack happens under the frame mutex, so a
 * frame is always exactly one of: on the stack, or linked both ways to one page (which a recovery
 * after a thread's death relies on to rebuild the stack).
 *
 * Eviction is clock with a second chance (vmcache): the hand marks an unlocked resident page; a page
 * still marked when the hand comes round again, and clean, is locked, unlinked and evicted. A read
 * clears the mark. Dirty pages are never evicted: only a checkpoint writes them, after the log.
 */
export class FrameTable {
  readonly i32: Int32Array;
  readonly framesMax: number;
  readonly #regions: PoolRegions;
  /** This thread's holder index: its locks carry it, so a recovery knows whose they were. */
  readonly #holder: number;
  /** Gives back what `holder` held if its thread has ended (BufferPool's check of a wedged wait). */
  readonly #recoverIfEnded: (holder: number) => void;

  constructor(
    i32: Int32Array,
    regions: PoolRegions,
    framesMax: number,
    holder: number,
    recoverIfEnded: (holder: number) => void,
  ) {
    this.i32 = i32;
    this.#regions = regions;
    this.framesMax = framesMax;
    this.#holder = holder;
    this.#recoverIfEnded = recoverIfEnded;
  }

  lockMutex(): void {
    const i32 = this.i32;
    const mine = this.#holder + 1;
    const stall = new StallClock();
    for (;;) {
      const seen = Atomics.compareExchange(i32, kPoolFrameMutex, 0, mine);
      if (seen === 0) return;
      waitOn(i32, kPoolFrameMutex, seen);
      if (stall.stuck(seen)) {
        throw new LightningError(
          'ERR_INTERNAL',
          `buffer pool: the frame mutex has been held by holder ${seen - 1} for ${latchWaitBudgetMs} ms`,
        );
      }
      if (stall.holderCheckDue()) this.#recoverIfEnded(seen - 1);
    }
  }

  unlockMutex(): void {
    Atomics.store(this.i32, kPoolFrameMutex, 0);
    if (Atomics.load(this.i32, kPoolWaiters) > 0) Atomics.notify(this.i32, kPoolFrameMutex);
  }

  frameOf(pageId: number): number {
    return Atomics.load(this.i32, this.#regions.frameOf + (pageId << 1));
  }

  pageOf(frame: number): number {
    return Atomics.load(this.i32, this.#regions.pageOf + frame);
  }

  isDirty(frame: number): boolean {
    return Atomics.load(this.i32, this.#regions.frameDirty + frame) !== 0;
  }

  setDirty(frame: number, dirty: boolean): void {
    const index = this.#regions.frameDirty + frame;
    const was = Atomics.exchange(this.i32, index, dirty ? 1 : 0);
    if (was !== (dirty ? 1 : 0)) Atomics.add(this.i32, kPoolDirtyFrames, dirty ? 1 : -1);
  }

  isPinned(frame: number): boolean {
    return Atomics.load(this.i32, this.#regions.framePinned + frame) !== 0;
  }

  /** Owner only. A pin is made safe against a concurrent evictor by BufferPool.pin's re-check. */
  setPinned(frame: number, pinned: boolean): void {
    Atomics.store(this.i32, this.#regions.framePinned + frame, pinned ? 1 : 0);
  }

  freeFrameCount(): number {
    return Atomics.load(this.i32, kPoolFreeFrames);
  }

  /**
   * Gives `pageId` (locked by the caller) a frame: a free one, or one the clock evicts. Under the
   * mutex. Throws ERR_PARTITION_FULL if two turns of the hand find every frame dirty or latched.
   */
  linkFrame(pageId: number): number {
    const frame = this.#popFree() ?? this.#evictOne();
    if (frame === undefined) {
      throw new LightningError(
        'ERR_PARTITION_FULL',
        `buffer pool: all ${this.framesMax} frames hold dirty, pinned or latched pages; a checkpoint must write ` +
          'them before another page can be loaded (raise memoryMaxBytes or checkpoint more often)',
      );
    }
    Atomics.store(this.i32, this.#regions.pageOf + frame, pageId);
    Atomics.store(this.i32, this.#regions.frameOf + (pageId << 1), frame);
    return frame;
  }

  /** Unlinks `pageId` (locked by the caller) from its frame and frees the frame. Under the mutex. */
  unlinkFrame(pageId: number): void {
    const frame = this.frameOf(pageId);
    if (frame < 0) return;
    this.setDirty(frame, false);
    this.setPinned(frame, false);
    Atomics.store(this.i32, this.#regions.frameOf + (pageId << 1), -1);
    Atomics.store(this.i32, this.#regions.pageOf + frame, 0);
    this.#pushFree(frame);
  }

  /**
   * Evicts until `freeTarget` frames are free or the hand has gone twice round; returns the number
   * evicted. Under the mutex.
   */
  evictUntilFree(freeTarget: number): number {
    let evicted = 0;
    while (this.freeFrameCount() < freeTarget) {
      const frame = this.#evictOne();
      if (frame === undefined) break;
      this.#pushFree(frame);
      evicted++;
    }
    return evicted;
  }

  /**
   * Rebuilds the free stack from the links: a frame is free unless a page links to it and it links
   * back. Under the mutex, after a thread died inside it.
   */
  rebuildFreeStack(): void {
    const i32 = this.i32;
    const regions = this.#regions;
    let depth = 0;
    for (let frame = 0; frame < this.framesMax; frame++) {
      const pageId = this.pageOf(frame);
      if (pageId !== 0 && this.frameOf(pageId) === frame) continue;
      Atomics.store(i32, regions.pageOf + frame, 0);
      this.setDirty(frame, false);
      this.setPinned(frame, false);
      Atomics.store(i32, regions.freeFrames + depth, frame);
      depth++;
    }
    Atomics.store(i32, kPoolFreeFrames, depth);
  }

  /** Puts every frame on the free stack: a new pool. */
  initialise(): void {
    for (let frame = 0; frame < this.framesMax; frame++) {
      Atomics.store(this.i32, this.#regions.pageOf + frame, 0);
      // Popped from the top: frame 0 first.
      Atomics.store(this.i32, this.#regions.freeFrames + frame, this.framesMax - 1 - frame);
    }
    Atomics.store(this.i32, kPoolFreeFrames, this.framesMax);
  }

  #popFree(): number | undefined {
    const depth = this.freeFrameCount();
    if (depth === 0) return undefined;
    const frame = Atomics.load(this.i32, this.#regions.freeFrames + depth - 1);
    Atomics.store(this.i32, kPoolFreeFrames, depth - 1);
    return frame;
  }

  #pushFree(frame: number): void {
    const depth = this.freeFrameCount();
    Atomics.store(this.i32, this.#regions.freeFrames + depth, frame);
    Atomics.store(this.i32, kPoolFreeFrames, depth + 1);
  }

  /** One step of the clock at a time until a frame is evicted, for at most two turns. */
  #evictOne(): number | undefined {
    const i32 = this.i32;
    const stateBase = this.#regions.pageState;
    const framesMax = this.framesMax;
    let hand = Atomics.load(i32, kPoolClockHand);
    for (let step = 0; step < 2 * framesMax + 1; step++) {
      const frame = hand;
      hand = hand + 1 === framesMax ? 0 : hand + 1;
      const pageId = this.pageOf(frame);
      if (pageId === 0 || this.isDirty(frame) || this.isPinned(frame)) continue;
      const index = stateBase + (pageId << 1);
      const word = Atomics.load(i32, index);
      const tag = stateTag(word);
      if (tag === stateUnlocked) {
        Atomics.compareExchange(i32, index, word, stateWithTag(word, stateMarked));
        continue;
      }
      if (tag !== stateMarked) continue;
      const locked = stateWithTag(word, stateLockedBase + this.#holder);
      if (Atomics.compareExchange(i32, index, word, locked) !== word) continue;
      // Locked now: no writer can dirty it, and the link cannot move while this thread has the mutex.
      // A pin set before the lock is seen here; one set after it sees the lock (BufferPool.pin).
      if (this.isDirty(frame) || this.isPinned(frame) || this.frameOf(pageId) !== frame) {
        Atomics.store(i32, index, word);
        continue;
      }
      Atomics.store(i32, this.#regions.frameOf + (pageId << 1), -1);
      Atomics.store(i32, this.#regions.pageOf + frame, 0);
      Atomics.store(i32, index, stateNext(word, stateEvicted));
      if (Atomics.load(i32, kPoolWaiters) > 0) Atomics.notify(i32, index);
      Atomics.add(i32, kPoolEvictions, 1);
      Atomics.store(i32, kPoolClockHand, hand);
      return frame;
    }
    Atomics.store(i32, kPoolClockHand, hand);
    return undefined;
  }
}

/** Waits up to one slice for `i32[index]` to leave `seen`, counted in kPoolWaiters so unlockers notify. */
export function waitOn(i32: Int32Array, index: number, seen: number): void {
  Atomics.add(i32, kPoolWaiters, 1);
  try {
    Atomics.wait(i32, index, seen, latchWaitSliceMs);
  } finally {
    Atomics.sub(i32, kPoolWaiters, 1);
  }
}

/**
 * Tells a waiter when the same latch word has stood unchanged for latchWaitBudgetMs: a latch that
 * keeps changing hands is busy, one that keeps its holder and version that long is wedged.
 */
export class StallClock {
  #word = 0;
  #since = -1;
  /** When the word last changed or its holder was last checked. */
  #checked = -1;
  #now = 0;

  stuck(word: number): boolean {
    const now = performance.now();
    this.#now = now;
    if (this.#since < 0 || word !== this.#word) {
      this.#word = word;
      this.#since = now;
      this.#checked = now;
      return false;
    }
    return now - this.#since > latchWaitBudgetMs;
  }

  /**
   * After `stuck`: true once every latchHolderCheckMs that the same word stands, when the waiter
   * should ask whether the holder's thread still exists.
   */
  holderCheckDue(): boolean {
    if (this.#now - this.#checked < latchHolderCheckMs) return false;
    this.#checked = this.#now;
    return true;
  }
}
