import { compareBytes } from '../shared-memory/index.js';
import type { PartitionCursor } from '../shared-memory/mvcc/partition-cursor.js';
import { RestartBudget } from '../shared-memory/tree/optimistic-view.js';
import { AsyncScan, abortError } from './api/async-scan.js';
import { type Codec, type Encodings, noEncodings } from './api/encodings.js';
import type { SnapshotHold, SnapshotRegistry } from './snapshot-registry.js';

/** What a scan returns for each entry: [key, value], the key alone, or the value alone. */
export const scanEntries = 0;
export const scanKeys = 1;
export const scanValues = 2;
export type ScanMode = typeof scanEntries | typeof scanKeys | typeof scanValues;

/** How a scan returns what it finds, and what can stop it. */
export interface ScanShape {
  mode: ScanMode;
  /** Ends the scan (releasing its snapshot) when aborted; the next step throws an AbortError. */
  signal: AbortSignal | null;
  /** How the keys and values returned are decoded (none: Buffers). */
  encodings: Encodings;
}

export const entriesShape: ScanShape = { mode: scanEntries, signal: null, encodings: noEncodings };

/**
 * A k-way merge of per-partition cursors into one sorted scan, forward or reverse, with a global
 * limit. A tournament tree of losers orders the cursors by their heads, compared where they lie in
 * shared memory: one comparison per level, log2(P) per entry (a binary heap needs about twice as
 * many), and only the entries returned are copied.
 *
 * Every comparison is checked afterwards (`holds()`): a cursor whose leaf changed finds its head
 * again and the comparison is redone. The cursors read at a registered snapshot, so a head found
 * again is the same key and the tree's past comparisons hold however the trees change meanwhile.
 *
 * A scan that owns its snapshot (db.range()) gives it back when it ends: run to the end or to its
 * limit, left with `return()` (a `break` out of for-of), failed with an error, or aborted by its
 * signal. It can be iterated with for-of or, yielding to the event loop now and then, for-await.
 */
export class MergedRange<T = [Buffer, Buffer]> implements IterableIterator<T>, AsyncIterable<T> {
  readonly #cursors: PartitionCursor[];
  /**
   * The tournament: node 0 holds the winner's cursor index, nodes 1 to P-1 the loser of the match
   * played there; cursor i plays from leaf node P + i, and node n's children are 2n and 2n + 1.
   */
  readonly #tree: Int32Array;
  readonly #reverse: boolean;
  #remaining: number;
  #done = false;
  #registry: SnapshotRegistry | null;
  readonly #hold: SnapshotHold | null;
  readonly #mode: ScanMode;
  readonly #signal: AbortSignal | null;
  readonly #keyCodec: Codec | null;
  readonly #valueCodec: Codec | null;
  /** Set when the signal ended the scan: every later step throws the AbortError. */
  #aborted = false;
  readonly #onAbort = (): void => {
    this.#aborted = true;
    this.#end();
  };

  /** `registry` and `hold`: the scan's own snapshot, released when the scan ends; else null. */
  constructor(
    cursors: PartitionCursor[],
    reverse: boolean,
    limit: number,
    registry: SnapshotRegistry | null,
    hold: SnapshotHold | null,
    shape: ScanShape = entriesShape,
  ) {
    this.#mode = shape.mode;
    this.#signal = shape.signal;
    this.#keyCodec = shape.encodings.keys;
    this.#valueCodec = shape.encodings.values;
    this.#cursors = cursors;
    this.#reverse = reverse;
    this.#remaining = limit;
    this.#registry = registry;
    this.#hold = hold;
    this.#tree = new Int32Array(Math.max(1, cursors.length));
    try {
      if (cursors.length > 0) this.#tree[0] = this.#play(1);
    } catch (error) {
      this.#end();
      throw error;
    }
    if (this.#signal?.aborted === true) this.#onAbort();
    else if (limit === 0 || cursors.length === 0 || cursors[this.#tree[0]!]!.exhausted) this.#end();
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  [Symbol.iterator](): this {
    return this;
  }

  /** Iterates with for-await, letting timers and I/O run between groups of entries. */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return new AsyncScan(this);
  }

  next(): IteratorResult<T> {
    if (this.#aborted) throw abortError(this.#signal!);
    if (this.#done) return { done: true, value: undefined };
    try {
      const winner = this.#tree[0]!;
      const top = this.#cursors[winner]!;
      const entry = this.#shape(top);
      if (--this.#remaining === 0) {
        this.#end();
      } else {
        top.advance();
        this.#replay(winner);
        if (this.#cursors[this.#tree[0]!]!.exhausted) this.#end();
      }
      return { done: false, value: entry };
    } catch (error) {
      this.#end();
      throw error;
    }
  }

  return(): IteratorResult<T> {
    this.#end();
    return { done: true, value: undefined };
  }

  /** The head of `top`, taken and shaped as the scan returns it. */
  #shape(top: PartitionCursor): T {
    const keys = this.#keyCodec;
    const values = this.#valueCodec;
    if (this.#mode === scanKeys) {
      const key = top.takeKey();
      return (keys === null ? key : keys.decode(key)) as T;
    }
    const entry = top.take();
    if (this.#mode === scanValues) return (values === null ? entry[1] : values.decode(entry[1])) as T;
    if (keys === null && values === null) return entry as T;
    return [
      keys === null ? entry[0] : keys.decode(entry[0]),
      values === null ? entry[1] : values.decode(entry[1]),
    ] as T;
  }

  /** No more entries: drops the cursors and gives back the scan's own snapshot. Idempotent. */
  #end(): void {
    if (!this.#done) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#done = true;
    this.#cursors.length = 0;
    const registry = this.#registry;
    if (registry === null) return;
    this.#registry = null;
    registry.releaseScan(this, this.#hold!);
  }

  /** Plays the matches below `node`, recording each loser; returns the winner's cursor index. */
  #play(node: number): number {
    const count = this.#cursors.length;
    if (node >= count) return node - count;
    const left = this.#play(2 * node);
    const right = this.#play(2 * node + 1);
    if (this.#before(right, left)) {
      this.#tree[node] = left;
      return right;
    }
    this.#tree[node] = right;
    return left;
  }

  /** Cursor `from` has a new head (or none): replays its matches up to the root. */
  #replay(from: number): void {
    const tree = this.#tree;
    let winner = from;
    for (let node = (this.#cursors.length + from) >>> 1; node >= 1; node >>>= 1) {
      const loser = tree[node]!;
      if (this.#before(loser, winner)) {
        tree[node] = winner;
        winner = loser;
      }
    }
    tree[0] = winner;
  }

  /**
   * True if cursor `a`'s head comes before cursor `b`'s in scan order (an exhausted cursor comes
   * last); both heads read in place, then checked.
   */
  #before(a: number, b: number): boolean {
    const x = this.#cursors[a]!;
    const y = this.#cursors[b]!;
    if (x.exhausted) return false;
    if (y.exhausted) return true;
    let budget: RestartBudget | null = null;
    for (;;) {
      const order = compareBytes(
        x.headBytes,
        x.headStart,
        x.headLength,
        y.headBytes,
        y.headStart,
        y.headLength,
      );
      const xHolds = x.holds();
      const yHolds = y.holds();
      if (xHolds && yHolds) return this.#reverse ? order > 0 : order < 0;
      if (!xHolds) x.reposition();
      if (!yHolds) y.reposition();
      budget ??= new RestartBudget();
      budget.spend();
    }
  }
}
