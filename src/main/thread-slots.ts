import { threadId } from 'node:worker_threads';
import {
  kDatabaseDeaths,
  kDatabaseGenerations,
  kSlotClaim,
  kSlotDead,
  kSlotThread,
  LightningError,
  slotReclaiming,
  slotWord,
} from '../shared-memory/index.js';

/**
 * Thread slots: each thread using a database (the opener and every attached worker) claims one, and
 * with it one command ring per owner worker, so every ring has a single producer. A claim carries a
 * generation, so whoever releases or reclaims a slot acts only on the claim it means: a thread whose
 * slot was reclaimed can never free the slot of the thread that holds it next.
 */
export interface ThreadSlotClaim {
  slot: number;
  generation: number;
}

export function claimThreadSlot(databaseControl: Int32Array, threadsMax: number): ThreadSlotClaim {
  // Generations are positive: 0 means free and slotReclaiming is negative.
  const generation = (Atomics.add(databaseControl, kDatabaseGenerations, 1) & 0x7fff_ffff) + 1;
  for (let slot = 0; slot < threadsMax; slot++) {
    if (Atomics.compareExchange(databaseControl, slotWord(slot, kSlotClaim), 0, generation) !== 0) continue;
    Atomics.store(databaseControl, slotWord(slot, kSlotDead), 0);
    // Stored plus one: 0 is "no thread", and the main thread's id is 0.
    Atomics.store(databaseControl, slotWord(slot, kSlotThread), threadId + 1);
    return { slot, generation };
  }
  const reclaiming = countReclaiming(databaseControl, threadsMax);
  throw new LightningError(
    'ERR_BAD_ARGUMENT',
    `all ${threadsMax} thread slots are in use${
      reclaiming > 0 ? ` (${reclaiming} being reclaimed from threads that died: retry shortly)` : ''
    }: close a thread's database, or open with a larger threadsMax`,
  );
}

/** Frees the slot if `claim` still holds it; false if it was reclaimed (its holder was declared dead). */
export function releaseThreadSlot(databaseControl: Int32Array, claim: ThreadSlotClaim): boolean {
  const word = slotWord(claim.slot, kSlotClaim);
  if (Atomics.compareExchange(databaseControl, word, claim.generation, slotReclaiming) !== claim.generation)
    return false;
  freeThreadSlot(databaseControl, claim.slot);
  return true;
}

/**
 * Frees a slot its caller has marked slotReclaiming. The holder's thread id goes first, so a late
 * report of that thread's exit can never name the slot's next holder.
 */
export function freeThreadSlot(databaseControl: Int32Array, slot: number): void {
  Atomics.store(databaseControl, slotWord(slot, kSlotThread), 0);
  Atomics.store(databaseControl, slotWord(slot, kSlotDead), 0);
  Atomics.store(databaseControl, slotWord(slot, kSlotClaim), 0);
}

/** True while `claim` holds its slot. */
export function holdsThreadSlot(databaseControl: Int32Array, claim: ThreadSlotClaim): boolean {
  return Atomics.load(databaseControl, slotWord(claim.slot, kSlotClaim)) === claim.generation;
}

/** Reports that the holder of `claim` died: the opener's reclaimer undoes what it held. */
export function reportThreadDead(databaseControl: Int32Array, claim: ThreadSlotClaim): void {
  if (!holdsThreadSlot(databaseControl, claim)) return;
  Atomics.store(databaseControl, slotWord(claim.slot, kSlotDead), claim.generation);
  Atomics.add(databaseControl, kDatabaseDeaths, 1);
  Atomics.notify(databaseControl, kDatabaseDeaths);
}

/** Reports every slot held by thread `deadThreadId` (it exited) as dead. */
export function reportThreadExited(
  databaseControl: Int32Array,
  threadsMax: number,
  deadThreadId: number,
): void {
  for (let slot = 0; slot < threadsMax; slot++) {
    const generation = Atomics.load(databaseControl, slotWord(slot, kSlotClaim));
    const holder = Atomics.load(databaseControl, slotWord(slot, kSlotThread));
    if (generation <= 0 || holder !== deadThreadId + 1) continue;
    reportThreadDead(databaseControl, { slot, generation });
  }
}

function countReclaiming(databaseControl: Int32Array, threadsMax: number): number {
  let count = 0;
  for (let slot = 0; slot < threadsMax; slot++) {
    const claim = Atomics.load(databaseControl, slotWord(slot, kSlotClaim));
    if (
      claim === slotReclaiming ||
      (claim > 0 && Atomics.load(databaseControl, slotWord(slot, kSlotDead)) === claim)
    )
      count++;
  }
  return count;
}
