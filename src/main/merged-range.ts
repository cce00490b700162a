import { compareBytes } from '../shared-memory/index.js';
import type { PartitionCursor } from '../shared-memory/mvcc/partition-cursor.js';
import { RestartBudget } from '../shared-memory/tree/optimistic-view.js';
import type { SnapshotHold, SnapshotRegistry } from './snapshot-registry.js';

/**
 * A k-way merge of per-partition cursors into one sorted scan, forward or reverse, with a global
 * limit. A binary heap orders the cursors by their heads, compared where they lie in shared memory:
 * O(log P) comparisons per entry, and only the entries returned are copied.
 *
 * Every comparison is checked afterwards (`holds()`): a cursor whose leaf changed finds its head
 * again and the comparison is redone. The cursors read at a registered snapshot, so a head found
 * again is the same key and the heap's order holds however the trees change meanwhile.
 *
 * A scan that owns its snapshot (db.range()) gives it back when it ends: run to the end or to its
 * limit, left with `return()` (a `break` out of for-of), or failed with an error.
 */
export class MergedRange implements IterableIterator<[Buffer, Buffer]> {
  readonly #heap: PartitionCursor[];
  #size: number;
  readonly #reverse: boolean;
  #remaining: number;
  #registry: SnapshotRegistry | null;
  readonly #hold: SnapshotHold | null;

  /** `registry` and `hold`: the scan's own snapshot, released when the scan ends; else null. */
  constructor(
    cursors: PartitionCursor[],
    reverse: boolean,
    limit: number,
    registry: SnapshotRegistry | null,
    hold: SnapshotHold | null,
  ) {
    this.#reverse = reverse;
    this.#remaining = limit;
    this.#registry = registry;
    this.#hold = hold;
    const heap = cursors.filter((cursor) => !cursor.exhausted);
    this.#heap = heap;
    this.#size = heap.length;
    for (let i = (heap.length >>> 1) - 1; i >= 0; i--) this.#siftDown(i);
    if (limit === 0 || this.#size === 0) this.#end();
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<[Buffer, Buffer]> {
    if (this.#size === 0) return { done: true, value: undefined };
    try {
      const top = this.#heap[0]!;
      const entry = top.take();
      if (--this.#remaining === 0) {
        this.#end();
      } else {
        top.advance();
        if (top.exhausted) {
          const last = --this.#size;
          this.#heap[0] = this.#heap[last]!;
          this.#heap.length = last;
        }
        if (this.#size > 0) this.#siftDown(0);
        else this.#end();
      }
      return { done: false, value: entry };
    } catch (error) {
      this.#end();
      throw error;
    }
  }

  return(): IteratorResult<[Buffer, Buffer]> {
    this.#end();
    return { done: true, value: undefined };
  }

  /** No more entries: drops the cursors and gives back the scan's own snapshot. Idempotent. */
  #end(): void {
    this.#size = 0;
    this.#heap.length = 0;
    const registry = this.#registry;
    if (registry === null) return;
    this.#registry = null;
    registry.releaseScan(this, this.#hold!);
  }

  /** True if cursor `a`'s head comes before `b`'s in scan order; both read in place, then checked. */
  #before(a: PartitionCursor, b: PartitionCursor): boolean {
    let budget: RestartBudget | null = null;
    for (;;) {
      const order = compareBytes(
        a.headBytes,
        a.headStart,
        a.headLength,
        b.headBytes,
        b.headStart,
        b.headLength,
      );
      const aHolds = a.holds();
      const bHolds = b.holds();
      if (aHolds && bHolds) return this.#reverse ? order > 0 : order < 0;
      if (!aHolds) a.reposition();
      if (!bHolds) b.reposition();
      budget ??= new RestartBudget();
      budget.spend();
    }
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    const size = this.#size;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) return;
      const right = left + 1;
      let first = left;
      if (right < size && this.#before(heap[right]!, heap[left]!)) first = right;
      if (!this.#before(heap[first]!, heap[i]!)) return;
      const moved = heap[i]!;
      heap[i] = heap[first]!;
      heap[first] = moved;
      i = first;
    }
  }
}
