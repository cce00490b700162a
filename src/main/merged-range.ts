import { compareBytes } from '../shared-memory/index.js';

/**
 * A k-way merge of per-partition sorted iterators into one sorted iterator, forward or reverse, with a
 * global limit. A binary heap holds the current entry of each partition: O(log P) per entry.
 */
export class MergedRange implements IterableIterator<[Buffer, Buffer]> {
  readonly #sources: Iterator<[Buffer, Buffer]>[];
  readonly #direction: number;
  /** Heap of source indexes, ordered by their current entry. */
  readonly #heap: number[] = [];
  readonly #current: ([Buffer, Buffer] | null)[];
  #remaining: number;

  constructor(sources: Iterator<[Buffer, Buffer]>[], reverse: boolean, limit: number) {
    this.#sources = sources;
    this.#direction = reverse ? -1 : 1;
    this.#remaining = limit;
    this.#current = sources.map(() => null);
    if (limit === 0) return;
    for (let i = 0; i < sources.length; i++) {
      const first = sources[i]!.next();
      if (first.done === true) continue;
      this.#current[i] = first.value;
      this.#push(i);
    }
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<[Buffer, Buffer]> {
    if (this.#remaining <= 0 || this.#heap.length === 0) return { done: true, value: undefined };
    this.#remaining--;
    const source = this.#heap[0]!;
    const entry = this.#current[source]!;
    const following = this.#sources[source]!.next();
    if (following.done === true) {
      this.#current[source] = null;
      const last = this.#heap.pop()!;
      if (this.#heap.length > 0) {
        this.#heap[0] = last;
        this.#siftDown(0);
      }
    } else {
      this.#current[source] = following.value;
      this.#siftDown(0);
    }
    return { done: false, value: entry };
  }

  #before(a: number, b: number): boolean {
    const x = this.#current[a]![0];
    const y = this.#current[b]![0];
    return compareBytes(x, 0, x.length, y, 0, y.length) * this.#direction < 0;
  }

  #push(source: number): void {
    const heap = this.#heap;
    heap.push(source);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (!this.#before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.#before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.#before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}
