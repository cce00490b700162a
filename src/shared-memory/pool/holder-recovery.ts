import { LightningError } from '../errors.js';
import type { FrameTable } from './frame-table.js';
import { osThreadEnded } from './os-thread.js';
import {
  holderLost,
  kPoolFrameMutex,
  kPoolHoldersBase,
  kPoolHolderTidsBase,
  kPoolLatchRecoveries,
  kPoolPagesAllocated,
  poolHoldersMax,
  recovererOf,
  recoveringBy,
  stateEvicted,
  stateLockedBase,
  stateNext,
  stateTag,
} from './pool-layout.js';

/**
 * Gives back what a thread that died held in a buffer pool: its page latches, the frame mutex, its
 * holder index. Two kinds of caller learn of a death: the thread reclaimer, when the death is
 * reported (`recoverThread`), and a thread waiting on a latch that does not move, which asks whether
 * the holder's OS thread still exists (`recoverIfEnded`; the report may wait for the very event loop
 * that thread blocks).
 *
 * A recovery takes the dead holder's word to recoveringBy(its own holder) by compare-and-swap first:
 * each death is recovered once, and the index goes to no new thread before its latches are back. A
 * recoverer that dies in the middle leaves words that name it; whoever recovers it adopts them and
 * finishes their recovery too.
 *
 * A page latched clean (being loaded or evicted) goes back to evicted. A page latched dirty was being
 * changed, by the partition's owner (no other thread writes pages), and may be half changed: it stays
 * latched, its holder's index is retired (holderLost), and a thread that waits on it is told at once
 * (ERR_WORKER_CRASHED) rather than reading it. The log still has every change acknowledged: a reopen
 * rebuilds the page.
 */
export class HolderRecovery {
  readonly #i32: Int32Array;
  readonly #frames: FrameTable;
  readonly #stateBase: number;
  /** This thread's holder index. */
  readonly #holder: number;

  constructor(i32: Int32Array, frames: FrameTable, stateBase: number, holder: number) {
    this.#i32 = i32;
    this.#frames = frames;
    this.#stateBase = stateBase;
    this.#holder = holder;
  }

  /** Recovers the holder of thread `thread` (its threadId), if it has one; returns latches given back. */
  recoverThread(thread: number): number {
    for (let holder = 0; holder < poolHoldersMax; holder++) {
      if (holder !== this.#holder && Atomics.load(this.#i32, kPoolHoldersBase + holder) === thread + 1)
        return this.#recover(holder, thread + 1);
    }
    return 0;
  }

  /**
   * Recovers `holder` if its OS thread has ended. If a recovery of it is under way, the question is
   * the recoverer's: one that died in the middle is recovered, and its unfinished work with it.
   */
  recoverIfEnded(holder: number): void {
    const i32 = this.#i32;
    for (let hops = 0; hops < poolHoldersMax; hops++) {
      if (holder === this.#holder || holder < 0 || holder >= poolHoldersMax) return;
      const claim = Atomics.load(i32, kPoolHoldersBase + holder);
      if (claim === 0) return;
      if (claim === holderLost) throw lostPageError();
      if (claim < 0) {
        holder = recovererOf(claim);
        continue;
      }
      const tid = Atomics.load(i32, kPoolHolderTidsBase + holder);
      // The holder word unchanged around the id: the id is that thread's (pool-layout.ts).
      if (Atomics.load(i32, kPoolHoldersBase + holder) !== claim || !osThreadEnded(tid)) return;
      this.#recover(holder, claim);
      return;
    }
  }

  /** Recovers `holder` while its word is still `claim`; returns the latches given back. */
  #recover(holder: number, claim: number): number {
    const i32 = this.#i32;
    const mine = recoveringBy(this.#holder);
    if (Atomics.compareExchange(i32, kPoolHoldersBase + holder, claim, mine) !== claim) return 0;
    const dead = this.#adoptOrphans(holder);
    let recovered = 0;
    const lost = new Set<number>();
    try {
      recovered += this.#takeMutex(dead);
      try {
        recovered += this.#releasePages(dead, lost);
        this.#frames.rebuildFreeStack();
      } finally {
        this.#frames.unlockMutex();
      }
    } catch (error) {
      // Given up (a live mutex holder wedged): put the words back for another attempt.
      Atomics.store(i32, kPoolHoldersBase + holder, claim);
      for (const orphan of dead) {
        if (orphan !== holder) Atomics.store(i32, kPoolHoldersBase + orphan, recoveringBy(holder));
      }
      throw error;
    }
    for (const gone of dead) {
      Atomics.store(i32, kPoolHolderTidsBase + gone, 0);
      Atomics.store(i32, kPoolHoldersBase + gone, lost.has(gone) ? holderLost : 0);
    }
    Atomics.add(i32, kPoolLatchRecoveries, recovered);
    return recovered;
  }

  /** `holder`, and every holder whose recovery it (or, in turn, one of those) left unfinished. */
  #adoptOrphans(holder: number): number[] {
    const i32 = this.#i32;
    const mine = recoveringBy(this.#holder);
    const dead = [holder];
    for (let next = 0; next < dead.length; next++) {
      const theirs = recoveringBy(dead[next]!);
      for (let orphan = 0; orphan < poolHoldersMax; orphan++) {
        if (Atomics.compareExchange(i32, kPoolHoldersBase + orphan, theirs, mine) === theirs)
          dead.push(orphan);
      }
    }
    return dead;
  }

  /** Takes the frame mutex from a dead holder, or waits for a live one; 1 if it was a dead one's. */
  #takeMutex(dead: readonly number[]): number {
    for (const holder of dead) {
      if (Atomics.compareExchange(this.#i32, kPoolFrameMutex, holder + 1, this.#holder + 1) === holder + 1)
        return 1;
    }
    this.#frames.lockMutex();
    return 0;
  }

  /**
   * Under the mutex: a page a dead holder was loading or evicting (clean) goes back to evicted, its
   * frame to the free stack. A dirty page it had latched stays latched, and its holder goes in `lost`.
   */
  #releasePages(dead: readonly number[], lost: Set<number>): number {
    const i32 = this.#i32;
    const tags = new Set(dead.map((holder) => stateLockedBase + holder));
    const frames = this.#frames;
    const end = Atomics.load(i32, kPoolPagesAllocated);
    let released = 0;
    for (let pageId = 1; pageId < end; pageId++) {
      const index = this.#stateBase + (pageId << 1);
      const word = Atomics.load(i32, index);
      if (!tags.has(stateTag(word))) continue;
      const frame = frames.frameOf(pageId);
      if (frame >= 0 && frames.isDirty(frame) && frames.pageOf(frame) === pageId) {
        lost.add(stateTag(word) - stateLockedBase);
        // Waiters look at the holder word again now, and are told.
        Atomics.notify(i32, index);
        continue;
      }
      frames.unlinkFrame(pageId);
      Atomics.store(i32, index, stateNext(word, stateEvicted));
      Atomics.notify(i32, index);
      released++;
    }
    return released;
  }
}

function lostPageError(): LightningError {
  return new LightningError(
    'ERR_WORKER_CRASHED',
    "buffer pool: the page was being changed by its partition's owner when that thread died, and may " +
      'be half changed; the partition cannot be read past it until the database is opened again ' +
      '(the log rebuilds the page)',
  );
}
