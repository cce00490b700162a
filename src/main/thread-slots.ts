import { kDatabaseSlots, LightningError } from '../shared-memory/index.js';

/**
 * Thread slots: each thread using a database (the opener and every attached worker) claims one, and
 * with it one command ring per owner worker, so every ring has a single producer.
 */
export function claimThreadSlot(databaseControl: Int32Array, threadsMax: number): number {
  for (let slot = 0; slot < threadsMax; slot++) {
    if (Atomics.compareExchange(databaseControl, kDatabaseSlots + slot, 0, 1) === 0) return slot;
  }
  throw new LightningError(
    'ERR_BAD_ARGUMENT',
    `all ${threadsMax} thread slots are in use: close a thread's database, or open with a larger threadsMax`,
  );
}

export function releaseThreadSlot(databaseControl: Int32Array, slot: number): void {
  Atomics.store(databaseControl, kDatabaseSlots + slot, 0);
}
