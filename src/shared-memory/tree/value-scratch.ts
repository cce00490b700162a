/**
 * Where `getUnsafe` copies values: one reused buffer per thread, and a view of it per value length,
 * made once, so a read that finds its value allocates nothing. What it returns is valid until the next
 * read into the scratch on the same thread (of any database), as lmdb-js documents `getBinaryFast`.
 */
export class ValueScratch {
  #buffer: Buffer;
  /** views[n]: the buffer's first n bytes, for n up to viewsCachedMax. */
  #views: Buffer[] = [];

  constructor(initialBytes = 4096) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** A view of `length` bytes to copy a value into; grows the buffer (dropping old views) if needed. */
  view(length: number): Buffer {
    if (length > this.#buffer.length) {
      // Doubling keeps regrowth rare for a thread that reads ever larger values.
      this.#buffer = Buffer.allocUnsafe(Math.max(length, this.#buffer.length * 2));
      this.#views = [];
    }
    if (length > viewsCachedMax) return this.#buffer.subarray(0, length);
    let view = this.#views[length];
    if (view === undefined) {
      view = this.#buffer.subarray(0, length);
      this.#views[length] = view;
    }
    return view;
  }
}

/** Lengths up to this get a cached view; longer values (rare, and slower to copy anyway) a new one. */
const viewsCachedMax = 16 * 1024;

/** This thread's scratch for `getUnsafe`. */
export const threadValueScratch = new ValueScratch();
