/**
 * The puts of a group known to fit, every one, in the leaf its key goes into: then the group splits
 * nothing, and the pages it changes and pins are the pages of its descents, which are few and known,
 * where the worst case (`framesForWrites`) counts a split at every level for every put.
 *
 * Kept for a whole pass of the owner, shared by the tallies of its operations one after the other:
 * `mark` before an operation is counted, `rollBack` if it is refused, so a refused write leaves the
 * pass's count as it was and no operation copies what the earlier ones counted.
 */
export class PlacedPuts {
  /** Per leaf (page id), the bytes still free in it once the puts placed there are in. */
  readonly #roomLeft = new Map<number, number>();
  /** Every page on the puts' descents, leaves included. */
  readonly #pages = new Set<number>();
  /** Undo records: a page added to `#pages` (room undefined), or a leaf's room before a put. */
  readonly #journal: { pageId: number; room: number | undefined; added: boolean }[] = [];

  /** Pages on the descents of the puts placed so far. */
  get pageCount(): number {
    return this.#pages.size;
  }

  /**
   * Places a put of a `cellBytes`-byte cell (slot included) into the leaf at the end of `path` (root
   * first), whose free and fragmented bytes now are `leafRoomBytes`. Returns false, changing nothing,
   * if the cell may not fit beside the puts placed there before it.
   */
  place(path: ArrayLike<number>, pathLength: number, leafRoomBytes: number, cellBytes: number): boolean {
    const leaf = path[pathLength - 1]!;
    const room = this.#roomLeft.get(leaf);
    const left = (room ?? leafRoomBytes) - cellBytes;
    if (left < 0) return false;
    this.#journal.push({ pageId: leaf, room, added: false });
    this.#roomLeft.set(leaf, left);
    for (let i = 0; i < pathLength; i++) {
      const pageId = path[i]!;
      if (this.#pages.has(pageId)) continue;
      this.#pages.add(pageId);
      this.#journal.push({ pageId, room: undefined, added: true });
    }
    return true;
  }

  /** A point to roll back to. */
  mark(): number {
    return this.#journal.length;
  }

  /** Forgets every put placed since `mark`. */
  rollBack(mark: number): void {
    const journal = this.#journal;
    while (journal.length > mark) {
      const { pageId, room, added } = journal.pop()!;
      if (added) this.#pages.delete(pageId);
      else if (room === undefined) this.#roomLeft.delete(pageId);
      else this.#roomLeft.set(pageId, room);
    }
  }
}
