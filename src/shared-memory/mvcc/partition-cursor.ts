import { compareBytes } from '../bytes.js';
import { LightningError } from '../errors.js';
import {
  cellFlagsMvcc,
  cellFlagTimestamp,
  cellFlagTombstone,
  get16,
  leafKeyAt,
  leafKeyLengthOffset,
  leafTimestampAt,
} from '../tree/node-format.js';
import { type OptimisticView, RestartBudget, restart } from '../tree/optimistic-view.js';
import type { RangeBounds } from '../tree/range-options.js';
import { type VersionedReader, verdictAgain, verdictHead } from './versioned-reader.js';

const noBytes = new Uint8Array(0);
const noKey = Buffer.alloc(0);
/** Keys up to this long are copied byte by byte: cheaper than making a subarray view to copy from. */
const shortCopyBytesMax = 32;

function copyBytes(bytes: Uint8Array, start: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  if (length <= shortCopyBytesMax) {
    for (let i = 0; i < length; i++) out[i] = bytes[start + i]!;
  } else {
    out.set(bytes.subarray(start, start + length));
  }
  return out;
}

/**
 * One partition's place in a merged scan at a registered snapshot: the leaf, the version it had and
 * the index of the partition's head, the next entry the snapshot sees. The head is read where it lies
 * in shared memory (`headBytes`, `headStart`, `headLength`), so a merge compares heads without copying
 * them, and `take()` copies the key and value of only the heads it returns.
 *
 * Nothing read is trusted until the leaf's version validates: a head is validated when the cursor
 * settles on it, and whoever reads its bytes later (a comparison) calls `holds()` afterwards; when the
 * leaf changed, `reposition()` descends again from where the cursor resumes (the key it returned last,
 * exclusive, or the fence it crossed last). At a registered snapshot the entries a scan sees never
 * change, so the head found again is the same key: a merge's order stays valid through any number of
 * concurrent writes. A cursor leaves a leaf by descending from its fence key, never by a sibling link
 * (see RangeIterator for why).
 *
 * A head with MVCC flags is judged by VersionedReader's rule: it is the visible version, a tombstone
 * to skip, or newer than the snapshot, when the version store holds what the snapshot sees (copied
 * then, as the version tree is another arena).
 */
export class PartitionCursor {
  readonly #reader: VersionedReader;
  readonly #view: OptimisticView;
  readonly #readTimestamp: number;
  readonly #reverse: boolean;
  readonly #step: number;
  readonly #pageSizeBytes: number;
  /** The bound the scan runs toward: the upper one forward, the lower one in reverse. */
  readonly #end: Uint8Array | null;
  readonly #endInclusive: boolean;
  /** Where a descent resumes: everything before it in scan order was returned or skipped. */
  #resume: Uint8Array | null;
  #resumeExclusive: boolean;
  #page = 0;
  #version = 0;
  #count = 0;
  #index = 0;
  #cell = 0;
  #fencePage = 0;
  #fenceVersion = 0;
  #fenceCell = 0;
  /** Set when the head's value comes from the version store: then its key is a copy too. */
  #olderValue: Buffer | null = null;
  #olderKey: Buffer = noKey;
  /** True once no head is left within the bounds. */
  exhausted = false;
  /** The head's key: in the arena, or in a copy when the version store decided its value. */
  headBytes: Uint8Array = noBytes;
  headStart = 0;
  headLength = 0;

  constructor(reader: VersionedReader, bounds: RangeBounds, readTimestamp: number) {
    this.#reader = reader;
    this.#view = reader.main.view;
    this.#readTimestamp = readTimestamp;
    this.#reverse = bounds.reverse;
    this.#step = bounds.reverse ? -1 : 1;
    this.#pageSizeBytes = this.#view.arena.pageSizeBytes;
    if (bounds.reverse) {
      this.#end = bounds.lower;
      this.#endInclusive = bounds.lowerInclusive;
      this.#resume = bounds.upper;
      this.#resumeExclusive = bounds.upper !== null && !bounds.upperInclusive;
    } else {
      this.#end = bounds.upper;
      this.#endInclusive = bounds.upperInclusive;
      this.#resume = bounds.lower ?? noBytes;
      this.#resumeExclusive = bounds.lower !== null && !bounds.lowerInclusive;
    }
    this.#seek();
  }

  /**
   * True if the head read so far is still what the leaf holds: call after reading `headBytes`, and
   * `reposition()` if not. A head copied from the version store always holds.
   */
  holds(): boolean {
    return this.#olderValue !== null || this.#view.validate(this.#page, this.#version);
  }

  /** Finds the head again after its leaf changed; at a snapshot it is the same key. */
  reposition(): void {
    this.#seek();
    if (this.exhausted) {
      throw new LightningError('ERR_INTERNAL', 'a scan lost an entry of its snapshot while the tree changed');
    }
  }

  /**
   * Copies the head's key and value and moves past it; the caller then calls `advance()` for the
   * next head, or stops. Only for a cursor that is not exhausted.
   */
  take(): [Buffer, Buffer] {
    let budget: RestartBudget | null = null;
    for (;;) {
      const older = this.#olderValue;
      if (older !== null) {
        const key = this.#olderKey;
        this.#passed(key);
        return [key, older];
      }
      const view = this.#view;
      const key = copyBytes(this.headBytes, this.headStart, this.headLength);
      const value = view.copyLeafValue(this.#page, this.#version, this.#cell);
      if (value !== null && view.validate(this.#page, this.#version)) {
        this.#passed(key);
        return [key, value];
      }
      view.restarts++;
      budget ??= new RestartBudget();
      budget.spend();
      this.reposition();
    }
  }

  /**
   * Like `take()`, for a scan of keys: copies the head's key only (it is also where the cursor
   * resumes) and moves past it.
   */
  takeKey(): Buffer {
    let budget: RestartBudget | null = null;
    for (;;) {
      if (this.#olderValue !== null) {
        const key = this.#olderKey;
        this.#passed(key);
        return key;
      }
      const key = copyBytes(this.headBytes, this.headStart, this.headLength);
      if (this.#view.validate(this.#page, this.#version)) {
        this.#passed(key);
        return key;
      }
      this.#view.restarts++;
      budget ??= new RestartBudget();
      budget.spend();
      this.reposition();
    }
  }

  /** Settles on the next head after the one `take()` returned (or finds the cursor exhausted). */
  advance(): void {
    this.#index += this.#step;
    if (!this.#settle()) this.#seek();
  }

  #passed(key: Buffer): void {
    this.#resume = key;
    this.#resumeExclusive = true;
    this.#olderValue = null;
  }

  /** Descends to the resume point and settles on the first head from there, restarting as needed. */
  #seek(): void {
    let budget: RestartBudget | null = null;
    this.exhausted = false;
    this.#olderValue = null;
    if (this.#boundsEmpty()) {
      this.exhausted = true;
      return;
    }
    while (!(this.#descend() && this.#settle())) {
      this.#view.restarts++;
      budget ??= new RestartBudget();
      budget.spend();
    }
  }

  /** Positions at the first index at or after the resume point in scan order; false to restart. */
  #descend(): boolean {
    const view = this.#view;
    const resume = this.#resume;
    const exclusive = this.#resumeExclusive;
    const reverse = this.#reverse;
    const page = view.descend(resume, reverse ? false : exclusive, true, reverse);
    if (page === restart) return false;
    const count = view.leafCount(page);
    if (count === restart) return false;
    let index: number;
    if (reverse) {
      // The last key <= resume (< resume when exclusive) sits just before the first key beyond it.
      index = resume === null ? count : view.leafSearch(page, count, resume, !exclusive);
      if (index === restart) return false;
      index--;
    } else {
      index = view.leafSearch(page, count, resume!, exclusive);
      if (index === restart) return false;
    }
    this.#page = page;
    this.#version = view.leafVersion;
    this.#count = count;
    this.#index = index;
    this.#fencePage = view.fencePage;
    this.#fenceVersion = view.fenceVersion;
    this.#fenceCell = view.fenceCell;
    return true;
  }

  /**
   * From the current index on, skips what the snapshot does not see and settles on the first head it
   * does, crossing leaves as needed; sets `exhausted` past the bounds. False to restart.
   */
  #settle(): boolean {
    const view = this.#view;
    const reader = this.#reader;
    const end = this.#end;
    for (;;) {
      const page = this.#page;
      const version = this.#version;
      const index = this.#index;
      if (index < 0 || index >= this.#count) {
        if (!this.#crossFence()) return false;
        if (this.exhausted) return true;
        continue;
      }
      const cell = view.leafCell(page, this.#count, index);
      if (cell === restart) return false;
      const u8 = view.arena.u8;
      const flags = u8[cell]!;
      const keyStart = leafKeyAt(u8, cell);
      const keyLength = get16(u8, cell + leafKeyLengthOffset);
      if (keyStart + keyLength > view.arena.pageOffset(page) + this.#pageSizeBytes) return false;
      if (end !== null) {
        const order = compareBytes(u8, keyStart, keyLength, end, 0, end.length) * this.#step;
        if (order > 0 || (order === 0 && !this.#endInclusive)) {
          if (!view.validate(page, version)) return false;
          this.exhausted = true;
          return true;
        }
      }
      if ((flags & cellFlagsMvcc) === 0) {
        if (!view.validate(page, version)) return false;
        this.#setHead(u8, keyStart, keyLength, cell);
        return true;
      }
      const timestamp = (flags & cellFlagTimestamp) !== 0 ? leafTimestampAt(u8, cell) : 0;
      if (!view.validate(page, version)) return false;
      const verdict = reader.judgeHead(flags, timestamp, this.#readTimestamp);
      if (verdict === verdictAgain) return false;
      if (verdict === verdictHead) {
        if ((flags & cellFlagTombstone) === 0) {
          this.#setHead(u8, keyStart, keyLength, cell);
          return true;
        }
      } else {
        // Newer than the snapshot: the version store holds what it sees. The leaf is checked again
        // afterwards: if the head changed meanwhile, the version read may have raced with cleanup.
        const key = copyBytes(u8, keyStart, keyLength);
        const older = reader.olderVersion(key, this.#readTimestamp);
        if (!view.validate(page, version)) return false;
        if (older !== null) {
          this.#olderValue = older;
          this.#olderKey = key;
          this.#setHead(key, 0, keyLength, cell);
          return true;
        }
      }
      this.#index = index + this.#step;
    }
  }

  #setHead(bytes: Uint8Array, start: number, length: number, cell: number): void {
    this.headBytes = bytes;
    this.headStart = start;
    this.headLength = length;
    this.#cell = cell;
  }

  /**
   * Leaves a leaf read to its end: the next one is found by descending from its fence (strictly above
   * it forward; at or below it in reverse). False to restart.
   */
  #crossFence(): boolean {
    const view = this.#view;
    if (!view.validate(this.#page, this.#version)) return false;
    if (this.#fencePage === 0) {
      this.exhausted = true;
      return true;
    }
    const fence = view.copyFence(this.#fencePage, this.#fenceVersion, this.#fenceCell);
    if (fence === null) return false;
    this.#resume = fence;
    this.#resumeExclusive = !this.#reverse;
    if (this.#boundsEmpty()) {
      this.exhausted = true;
      return true;
    }
    return this.#descend();
  }

  /** True if nothing lies between the resume point and the end bound. */
  #boundsEmpty(): boolean {
    const resume = this.#resume;
    const end = this.#end;
    if (resume === null || end === null) return false;
    const order = compareBytes(resume, 0, resume.length, end, 0, end.length) * this.#step;
    return order > 0 || (order === 0 && (this.#resumeExclusive || !this.#endInclusive));
  }
}
