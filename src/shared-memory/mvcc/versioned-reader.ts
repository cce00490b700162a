import { cellFlagIntent, cellFlagsMvcc, cellFlagTombstone } from '../tree/node-format.js';
import { RestartBudget } from '../tree/optimistic-view.js';
import type { RangeIterator } from '../tree/range-iterator.js';
import { parseRangeOptions, type RangeBounds, type RangeOptions } from '../tree/range-options.js';
import type { TreeReader } from '../tree/tree-reader.js';
import type { ValueScratch } from '../tree/value-scratch.js';
import { type MvccState, transactionEnded, txCommitted, txFree } from './mvcc-state.js';
import { seekOlderVersion } from './version-seek.js';

/** Read timestamp of a read that wants the newest committed state, not a snapshot. */
export const readLatest = Number.POSITIVE_INFINITY;

const absent = 0;
const older = 1;
const again = 2;

/** Verdicts of `judgeHead`: the head decides (value or tombstone), an older version does, read again. */
export { absent as verdictHead, again as verdictAgain, older as verdictOlder };

/**
 * Reads one partition at a read timestamp: the head a key has in the main tree if it is visible at
 * that timestamp, else the newest older version in the version store.
 *
 * A head is visible if it has no timestamp (written when no snapshot could tell its age), if its
 * commit timestamp is at or below the read timestamp, or if it is an intent whose transaction the
 * status table says committed at or below it. Reading the version store after the head is two reads
 * of two trees, so the head is read again afterwards: if it changed, the version read may have raced
 * with the owner's cleanup, and the whole read starts again.
 */
export class VersionedReader {
  readonly main: TreeReader;
  readonly versions: TreeReader;
  readonly #mvcc: MvccState;

  constructor(main: TreeReader, versions: TreeReader, mvcc: MvccState) {
    this.main = main;
    this.versions = versions;
    this.#mvcc = mvcc;
  }

  /**
   * The value of `key` at `readTimestamp` (readLatest: newest committed), or undefined. With a
   * `scratch`, a value read from the head is a view of it (valid until its next use); one read from
   * the version store is a copy either way.
   */
  get(key: Uint8Array, readTimestamp: number, scratch: ValueScratch | null = null): Buffer | undefined {
    const main = this.main;
    let budget: RestartBudget | null = null;
    for (;;) {
      const head = main.getEntryInto(key, scratch);
      if (head === undefined) return undefined;
      const flags = main.cellFlags;
      if ((flags & cellFlagsMvcc) === 0) return head;
      const timestamp = main.cellTimestamp;
      const verdict = this.#judge(flags, timestamp, readTimestamp);
      if (verdict === absent) return (flags & cellFlagTombstone) !== 0 ? undefined : head;
      if (verdict === older) {
        const found = this.olderVersion(key, readTimestamp);
        main.getEntry(key);
        if (main.cellFlags === flags && main.cellTimestamp === timestamp) return found ?? undefined;
      }
      budget ??= new RestartBudget();
      budget.spend();
    }
  }

  /**
   * Entries within the bounds at `readTimestamp`, sorted. The read timestamp must belong to a
   * registered snapshot (the versions it reads are then kept until it is released).
   */
  range(options: RangeOptions | undefined, readTimestamp: number): IterableIterator<[Buffer, Buffer]> {
    return this.rangeWithin(parseRangeOptions(options), readTimestamp);
  }

  /** `range` for bounds parsed already; `firstBatchEntries` sizes the tree scan's first step. */
  rangeWithin(
    bounds: RangeBounds,
    readTimestamp: number,
    firstBatchEntries?: number,
  ): IterableIterator<[Buffer, Buffer]> {
    // The limit counts visible entries: tombstones and versions from after the snapshot don't count.
    const heads = this.main.rangeWithin({ ...bounds, limit: Number.POSITIVE_INFINITY }, firstBatchEntries);
    return new VisibleEntries(this, heads, readTimestamp, bounds.limit);
  }

  /**
   * What a read at `readTimestamp` makes of a head with these MVCC flags: its value (or undefined
   * for a deleted key), decided by the head or by an older version.
   */
  resolve(
    entry: [Buffer, Buffer],
    flags: number,
    timestamp: number,
    readTimestamp: number,
  ): Buffer | undefined {
    const verdict = this.#judge(flags, timestamp, readTimestamp);
    if (verdict === absent) return (flags & cellFlagTombstone) !== 0 ? undefined : entry[1];
    // Older than the head, or the head changed meanwhile: a point read at the snapshot decides.
    return this.get(entry[0], readTimestamp);
  }

  /** `#judge`, for a scan that reads heads in place (see PartitionCursor): one rule for every read. */
  judgeHead(flags: number, timestamp: number, readTimestamp: number): number {
    return this.#judge(flags, timestamp, readTimestamp);
  }

  /**
   * Whether a head with these flags and timestamp is what a read at `readTimestamp` sees (`absent`,
   * meaning: the head decides, value or tombstone), must look further back (`older`), or must read
   * again (`again`: its transaction ended while we looked).
   */
  #judge(flags: number, timestamp: number, readTimestamp: number): number {
    if ((flags & cellFlagIntent) !== 0) {
      const state = this.#mvcc.transactionState(timestamp);
      if (state === txFree) return again;
      if (state !== txCommitted) return older;
      const committedAt = this.#mvcc.commitTimestamp(timestamp);
      // The entry was freed (and claimed again) after its state was read: every participant had
      // applied the decision by then, so the head read is no longer this intent. Whether the commit
      // was before or after the read timestamp is now told by the head, which must be read again.
      if (committedAt === transactionEnded) return again;
      return committedAt <= readTimestamp ? absent : older;
    }
    return timestamp <= readTimestamp ? absent : older;
  }

  /**
   * The newest version of `key` in the version store at or before `readTimestamp`, or null (none, or
   * a tombstone): one seek in the version tree.
   */
  olderVersion(key: Uint8Array, readTimestamp: number): Buffer | null {
    return seekOlderVersion(this.versions.view, key, readTimestamp);
  }
}

/** The visible entries of a scan of heads: heads without MVCC flags pass as they are. */
class VisibleEntries implements IterableIterator<[Buffer, Buffer]> {
  readonly #reader: VersionedReader;
  readonly #heads: RangeIterator;
  readonly #readTimestamp: number;
  #remaining: number;

  constructor(reader: VersionedReader, heads: RangeIterator, readTimestamp: number, limit: number) {
    this.#reader = reader;
    this.#heads = heads;
    this.#readTimestamp = readTimestamp;
    this.#remaining = limit;
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<[Buffer, Buffer]> {
    const heads = this.#heads;
    while (this.#remaining > 0) {
      const step = heads.next();
      if (step.done === true) break;
      const entry = step.value;
      const flags = heads.cellFlags;
      if ((flags & cellFlagsMvcc) !== 0) {
        const value = this.#reader.resolve(entry, flags, heads.cellTimestamp, this.#readTimestamp);
        if (value === undefined) continue;
        entry[1] = value;
      }
      this.#remaining--;
      return step;
    }
    this.#remaining = 0;
    return { done: true, value: undefined };
  }
}
