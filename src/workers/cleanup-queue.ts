/** A replaced version to remove once no snapshot older than its replacement is open. */
export interface ReplacedVersion {
  key: Uint8Array;
  versionTimestamp: number;
  supersededAt: number;
  /** The replacement was a tombstone: remove it from the main tree too. */
  tombstone: boolean;
}

/**
 * The versions a partition's owner will remove, in the order they were replaced: commit order, but
 * for decisions of two-phase commits applied late. Cleanup takes items from the front while no open
 * snapshot is older than their replacement and stops at the first one still needed, so a late item
 * may wait a little longer than it must; it is never removed too early.
 */
export class CleanupQueue {
  #items: ReplacedVersion[] = [];
  /** Items before this index were taken; the array is compacted now and then. */
  #head = 0;

  get empty(): boolean {
    return this.#head === this.#items.length;
  }

  push(item: ReplacedVersion): void {
    this.#items.push(item);
  }

  /** Removes and returns the items at the front replaced at or before `oldestSnapshot`. */
  takeUpTo(oldestSnapshot: number): ReplacedVersion[] {
    const items = this.#items;
    let end = this.#head;
    while (end < items.length && items[end]!.supersededAt <= oldestSnapshot) end++;
    const taken = items.slice(this.#head, end);
    this.#head = end;
    if (end === items.length || end > 4096) {
      this.#items = items.slice(end);
      this.#head = 0;
    }
    return taken;
  }
}
