import { compareBytes } from '../bytes.js';
import { cellFlagTimestamp, leafTimestampAt } from './node-format.js';
import { type OptimisticView, RestartBudget, restart } from './optimistic-view.js';
import type { RangeBounds } from './range-options.js';

const emptyKey = new Uint8Array(0);
/**
 * Bytes of keys and values one step copies before it stops mid-leaf: a leaf can point to hundreds of
 * large overflow values, and a step that had to copy them all at once would need gigabytes.
 */
const batchBytesMax = 1 << 20;
/**
 * Entries the first step copies; each later step doubles it. A short scan (or one partition's share of
 * a merged scan with a limit) then copies a few entries instead of a whole leaf it mostly throws away,
 * while a long scan reaches whole leaves after a few steps.
 */
const batchEntriesFirst = 8;

/**
 * A sorted scan over one tree, forward or reverse, read one leaf at a time.
 *
 * Each step descends from the root to the next leaf, copies the leaf's matching entries, and keeps
 * them only if the leaf's version validates. It resumes from the leaf's fence key (the separator above
 * it) rather than following sibling links: a link read from a page that is then freed and reused could
 * lead into an unrelated node whose own version validates. Every batch is a consistent state of one
 * leaf; the scan as a whole is not a snapshot (MVCC adds that).
 */
export class RangeIterator implements IterableIterator<[Buffer, Buffer]> {
  readonly #view: OptimisticView;
  readonly #bounds: RangeBounds;
  #remaining: number;
  #batchEntriesMax = batchEntriesFirst;
  /** Where the next leaf starts: a key and whether that key itself is excluded. */
  #cursor: Uint8Array | null;
  #cursorExclusive: boolean;
  #finished = false;
  #batch: [Buffer, Buffer][] = [];
  /** Flags and timestamps of the batch's cells, for the MVCC layer. */
  #batchFlags: number[] = [];
  #batchTimestamps: number[] = [];
  #batchIndex = 0;
  /** The flags of the cell `next()` returned last (see node-format.ts). */
  cellFlags = 0;
  /** Its timestamp or transaction reference, 0 if it has none. */
  cellTimestamp = 0;

  /**
   * `firstBatchEntries` sizes the first step: a merge of many partitions that wants a few rows from
   * each passes its share, so each partition copies about what it will return.
   */
  constructor(view: OptimisticView, bounds: RangeBounds, firstBatchEntries = batchEntriesFirst) {
    this.#view = view;
    this.#bounds = bounds;
    this.#remaining = bounds.limit;
    this.#batchEntriesMax = Math.max(1, firstBatchEntries);
    if (bounds.reverse) {
      this.#cursor = bounds.upper;
      this.#cursorExclusive = bounds.upper !== null && !bounds.upperInclusive;
    } else {
      this.#cursor = bounds.lower ?? emptyKey;
      this.#cursorExclusive = bounds.lower !== null && !bounds.lowerInclusive;
    }
    if (this.#remaining === 0 || this.#boundsEmpty()) this.#finished = true;
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<[Buffer, Buffer]> {
    while (this.#batchIndex >= this.#batch.length) {
      if (this.#finished) return { done: true, value: undefined };
      this.#batch = [];
      this.#batchFlags = [];
      this.#batchTimestamps = [];
      this.#batchIndex = 0;
      this.#readNextLeaf();
    }
    const index = this.#batchIndex++;
    const entry = this.#batch[index]!;
    this.#batch[index] = undefined as unknown as [Buffer, Buffer];
    this.cellFlags = this.#batchFlags[index]!;
    this.cellTimestamp = this.#batchTimestamps[index]!;
    return { done: false, value: entry };
  }

  #boundsEmpty(): boolean {
    const { lower, upper } = this.#bounds;
    if (lower === null || upper === null) return false;
    const order = compareBytes(lower, 0, lower.length, upper, 0, upper.length);
    return order > 0 || (order === 0 && !(this.#bounds.lowerInclusive && this.#bounds.upperInclusive));
  }

  #readNextLeaf(): void {
    let budget: RestartBudget | null = null;
    for (;;) {
      const batch = this.#bounds.reverse ? this.#tryLeafReverse() : this.#tryLeafForward();
      if (batch !== null) {
        this.#batch = batch;
        this.#remaining -= batch.length;
        if (this.#remaining <= 0) this.#finished = true;
        this.#batchEntriesMax *= 2;
        return;
      }
      this.#view.restarts++;
      budget ??= new RestartBudget();
      budget.spend();
    }
  }

  /** Reads the next leaf forward; returns its entries, or null to restart. */
  #tryLeafForward(): [Buffer, Buffer][] | null {
    const view = this.#view;
    const cursor = this.#cursor!;
    const page = view.descend(cursor, this.#cursorExclusive, true, false);
    if (page === restart) return null;
    const version = view.leafVersion;
    const count = view.leafCount(page);
    if (count === restart) return null;
    let index = view.leafSearch(page, count, cursor, this.#cursorExclusive);
    if (index === restart) return null;
    const { upper, upperInclusive } = this.#bounds;
    const batch: [Buffer, Buffer][] = [];
    const flagsOut: number[] = [];
    const timestampsOut: number[] = [];
    let batchBytes = 0;
    let reachedEnd = false;
    let lastCopied = -1;
    const entriesMax = Math.min(this.#remaining, this.#batchEntriesMax);
    for (; index < count && batch.length < entriesMax; index++) {
      const cell = view.leafCell(page, count, index);
      if (cell === restart) return null;
      const key = view.copyLeafKey(page, cell);
      if (key === null) return null;
      if (upper !== null) {
        const order = compareBytes(key, 0, key.length, upper, 0, upper.length);
        if (order > 0 || (order === 0 && !upperInclusive)) {
          reachedEnd = true;
          break;
        }
      }
      const value = view.copyLeafValue(page, version, cell);
      if (value === null) return null;
      batch.push([key, value]);
      const flags = view.arena.u8[cell]!;
      flagsOut.push(flags);
      timestampsOut.push((flags & cellFlagTimestamp) !== 0 ? leafTimestampAt(view.arena.u8, cell) : 0);
      lastCopied = index;
      batchBytes += key.length + value.length;
      if (batchBytes >= batchBytesMax) break;
    }
    const stoppedEarly = batchBytes >= batchBytesMax || batch.length === entriesMax;
    const { fencePage, fenceVersion, fenceCell } = view;
    if (!view.validate(page, version)) return null;
    if (!reachedEnd && stoppedEarly && lastCopied + 1 < count) {
      // Stopped mid-leaf: resume just after the last key returned.
      this.#cursor = batch[batch.length - 1]![0];
      this.#cursorExclusive = true;
    } else if (reachedEnd || fencePage === 0) {
      this.#finished = true;
    } else {
      const fence = view.copyFence(fencePage, fenceVersion, fenceCell);
      if (fence !== null) {
        this.#cursor = fence;
        this.#cursorExclusive = true;
      } else if (batch.length > 0) {
        // The fence's page changed (in a buffer pool: was evicted while values were copied). The
        // entries are sound, the leaf validated: resume after the last of them, one descent more.
        this.#cursor = batch[batch.length - 1]![0];
        this.#cursorExclusive = true;
      } else {
        return null;
      }
    }
    this.#batchFlags = flagsOut;
    this.#batchTimestamps = timestampsOut;
    return batch;
  }

  /** Reads the next leaf backward; returns its entries, or null to restart. */
  #tryLeafReverse(): [Buffer, Buffer][] | null {
    const view = this.#view;
    const cursor = this.#cursor;
    const page = view.descend(cursor, false, true, true);
    if (page === restart) return null;
    const version = view.leafVersion;
    const count = view.leafCount(page);
    if (count === restart) return null;
    // The last key <= cursor (< cursor when exclusive) sits just before the first key beyond it.
    let index = cursor === null ? count : view.leafSearch(page, count, cursor, !this.#cursorExclusive);
    if (index === restart) return null;
    index--;
    const { lower, lowerInclusive } = this.#bounds;
    const batch: [Buffer, Buffer][] = [];
    const flagsOut: number[] = [];
    const timestampsOut: number[] = [];
    let batchBytes = 0;
    let reachedEnd = false;
    let lastCopied = -1;
    const entriesMax = Math.min(this.#remaining, this.#batchEntriesMax);
    for (; index >= 0 && batch.length < entriesMax; index--) {
      const cell = view.leafCell(page, count, index);
      if (cell === restart) return null;
      const key = view.copyLeafKey(page, cell);
      if (key === null) return null;
      if (lower !== null) {
        const order = compareBytes(key, 0, key.length, lower, 0, lower.length);
        if (order < 0 || (order === 0 && !lowerInclusive)) {
          reachedEnd = true;
          break;
        }
      }
      const value = view.copyLeafValue(page, version, cell);
      if (value === null) return null;
      batch.push([key, value]);
      const flags = view.arena.u8[cell]!;
      flagsOut.push(flags);
      timestampsOut.push((flags & cellFlagTimestamp) !== 0 ? leafTimestampAt(view.arena.u8, cell) : 0);
      lastCopied = index;
      batchBytes += key.length + value.length;
      if (batchBytes >= batchBytesMax) break;
    }
    const stoppedEarly = batchBytes >= batchBytesMax || batch.length === entriesMax;
    const { fencePage, fenceVersion, fenceCell } = view;
    if (!view.validate(page, version)) return null;
    if (!reachedEnd && stoppedEarly && lastCopied > 0) {
      // Stopped mid-leaf: resume just before the last key returned.
      this.#cursor = batch[batch.length - 1]![0];
      this.#cursorExclusive = true;
    } else if (reachedEnd || fencePage === 0) {
      this.#finished = true;
    } else {
      const fence = view.copyFence(fencePage, fenceVersion, fenceCell);
      if (fence !== null) {
        this.#cursor = fence;
        this.#cursorExclusive = false;
      } else if (batch.length > 0) {
        // The fence's page changed (in a buffer pool: was evicted while values were copied). The
        // entries are sound, the leaf validated: resume after the last of them, one descent more.
        this.#cursor = batch[batch.length - 1]![0];
        this.#cursorExclusive = true;
      } else {
        return null;
      }
    }
    this.#batchFlags = flagsOut;
    this.#batchTimestamps = timestampsOut;
    return batch;
  }
}
