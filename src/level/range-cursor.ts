import type { Database, RangeOptions, Snapshot } from '../index.js';

/** What the Level layer hands the store: Buffers, or strings where the encoding is 'utf8'. */
export type StoreData = Buffer | string;

/** The range options abstract-level passes to `_iterator`, `_keys`, `_values` and `_clear`. */
export interface LevelRangeOptions {
  gt?: StoreData;
  gte?: StoreData;
  lt?: StoreData;
  lte?: StoreData;
  reverse: boolean;
  /** -1 for no limit. */
  limit: number;
}

/**
 * Entries of one range of a lightning-db database read at one snapshot, with `seek()`: lightning-db's
 * scans cannot move, so a seek ends the current scan and starts a new one, at the same snapshot, from
 * the target (kept within the original bounds). The snapshot is the caller's (an explicit Level
 * snapshot) or one taken here when the cursor is made, and released when it is closed: that is the
 * iterator's implicit snapshot.
 */
export class RangeCursor {
  readonly #snapshot: Snapshot;
  readonly #ownsSnapshot: boolean;
  readonly #bounds: RangeOptions;
  /** The scan, started on the first read: see the constructor. */
  #entries: IterableIterator<[Buffer, Buffer]> | null = null;
  #closed = false;

  /**
   * `snapshot` null: the cursor reads at a snapshot of its own, taken now. The scan itself starts on
   * the first read, so a cursor made on an explicit snapshot that is closed already fails when it is
   * read, where abstract-level reports that snapshot's state with its own error code.
   */
  constructor(database: Database, snapshot: Snapshot | null, options: LevelRangeOptions) {
    this.#bounds = boundsOf(options);
    if (options.limit >= 0) this.#bounds.limit = options.limit;
    this.#ownsSnapshot = snapshot === null;
    this.#snapshot = snapshot ?? database.snapshot();
  }

  /** The next entry in the range's order, or undefined at its end. */
  next(): [Buffer, Buffer] | undefined {
    this.#entries ??= this.#snapshot.range(this.#bounds);
    const step = this.#entries.next();
    return step.done === true ? undefined : step.value;
  }

  /**
   * Moves to the first entry at or after `target` (at or before it, in reverse), never outside the
   * original bounds; `remaining` is how many more entries the iterator may yield (its limit).
   */
  seek(target: StoreData, remaining: number): void {
    this.#entries?.return?.();
    const bounds = seekBounds(this.#bounds, bytesOf(target));
    bounds.limit = Number.isFinite(remaining) ? remaining : undefined;
    this.#entries = this.#snapshot.range(bounds);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#entries?.return?.();
    if (this.#ownsSnapshot) this.#snapshot.release();
  }
}

/** lightning-db range bounds from Level's range options (absent bounds are left out). */
function boundsOf(options: LevelRangeOptions): RangeOptions {
  // Level lets gte win over gt, and lte over lt, where both are given; lightning-db takes one.
  const bounds: RangeOptions = { reverse: options.reverse };
  if (options.gte !== undefined) bounds.gte = options.gte;
  else if (options.gt !== undefined) bounds.gt = options.gt;
  if (options.lte !== undefined) bounds.lte = options.lte;
  else if (options.lt !== undefined) bounds.lt = options.lt;
  return bounds;
}

/**
 * The bounds of a scan from `target`: forward, the target becomes the lower bound unless the original
 * one is tighter; in reverse, the upper bound likewise. The other bound is kept.
 */
function seekBounds(bounds: RangeOptions, target: Buffer): RangeOptions {
  const { gt, gte, lt, lte, reverse, ...rest } = bounds;
  if (reverse !== true) {
    const upper = lt !== undefined ? { lt } : lte !== undefined ? { lte } : {};
    const lower = gt ?? gte;
    const tighter = lower !== undefined && Buffer.compare(bytesOf(lower), target) >= 0;
    return { ...rest, ...upper, ...(tighter ? (gt !== undefined ? { gt } : { gte }) : { gte: target }) };
  }
  const lower = gt !== undefined ? { gt } : gte !== undefined ? { gte } : {};
  const upper = lt ?? lte;
  const tighter = upper !== undefined && Buffer.compare(bytesOf(upper), target) <= 0;
  return {
    ...rest,
    reverse,
    ...lower,
    ...(tighter ? (lt !== undefined ? { lt } : { lte }) : { lte: target }),
  };
}

/** Key bytes as lightning-db orders them: strings as UTF-8. */
function bytesOf(key: Uint8Array | string): Buffer {
  if (typeof key === 'string') return Buffer.from(key, 'utf8');
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}
