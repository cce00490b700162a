/** A replaced version to remove once no snapshot older than its replacement is open. */
export interface ReplacedVersion {
  key: Uint8Array;
  versionTimestamp: number;
  supersededAt: number;
  /** The replacement was a tombstone: remove it from the main tree too. */
  tombstone: boolean;
  /** Bytes of the replaced value (0 for a tombstone): its overflow pages change when it is removed. */
  versionBytes: number;
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

  /**
   * The item at the front if it was replaced at or before `oldestSnapshot`, else undefined. It stays
   * queued until `dropFirst`: cleanup may stop before removing it (a buffer pool out of frames).
   */
  firstUpTo(oldestSnapshot: number): ReplacedVersion | undefined {
    const item = this.#items[this.#head];
    return item !== undefined && item.supersededAt <= oldestSnapshot ? item : undefined;
  }

  /** Removes the item at the front. */
  dropFirst(): void {
    this.#head++;
    // Compacted once the dropped items are half the array, so each item is copied O(1) times.
    if (this.#head === this.#items.length || (this.#head > 4096 && this.#head * 2 > this.#items.length)) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
