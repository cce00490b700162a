/**
 * The version word of a page, used for optimistic lock coupling (Leis et al., "The ART of practical
 * synchronization"). Bit 0 is the write lock, bit 1 marks a page that was freed (obsolete), and the
 * rest is a counter bumped by every unlock. Readers load the word, read the page, and load it again:
 * an unchanged, unlocked, non-obsolete word proves the read saw one consistent state.
 *
 * There is exactly one writer per arena, so locking needs no compare-and-swap: the lock bit exists to
 * tell readers to restart, not to exclude other writers.
 */
export const latchLockedBit = 1;
export const latchObsoleteBit = 2;
/** Locked or obsolete: a reader that sees either must restart. */
export const latchUnstableMask = latchLockedBit | latchObsoleteBit;
export const latchVersionStep = 4;

/** The word after an unlock: lock and obsolete bits cleared, counter bumped. */
export function latchUnlocked(word: number): number {
  return ((word & ~latchUnstableMask) + latchVersionStep) | 0;
}

/** The word of a page being freed: counter bumped and marked obsolete, so stale readers restart. */
export function latchFreed(word: number): number {
  return latchUnlocked(word) | latchObsoleteBit;
}
