import { compareBytes } from '../bytes.js';
import { LightningError } from '../errors.js';
import { latchUnstableMask } from '../latch.js';
import { pageHeaderBytes, slotBytes, valueBytesMax } from '../limits.js';
import {
  pageTypeInterior,
  pageTypeLeaf,
  pageTypeOverflow,
  pChunkBytes,
  pCount,
  pLink,
  pType,
} from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import { kTreeRootPageId, treeHeightMax } from './meta-layout.js';
import {
  cellFlagOverflow,
  compareAfterEqualHeads,
  get16,
  get32,
  interiorKeyOffset,
  keyHead,
  leafKeyLengthOffset,
  leafMvccBytes,
  leafValueLengthOffset,
  slotHeadAt,
} from './node-format.js';
import type { ValueScratch } from './value-scratch.js';

/** Returned by every step of an optimistic read that saw an inconsistent page: start again. */
export const restart = -1;

/** A reader that cannot get a consistent view for this long is looking at corruption or a dead writer. */
const restartBudgetMs = 10_000;
const restartsBetweenClockChecks = 1024;

/**
 * The optimistic read path shared by point reads and range scans, on any thread.
 *
 * Nothing read from shared memory is trusted: every offset, length and page id is bounds-checked
 * before use, and a failed check returns `restart` instead of throwing. Only after the page's version
 * word is re-validated is what was read believed. Readers never write shared memory.
 */
export class OptimisticView {
  readonly arena: PageSpace;
  readonly metaPageId: number;
  readonly #pageSizeBytes: number;
  readonly #slotsMax: number;

  /** Outputs of `descend()`: the leaf reached and the version it had. */
  leafPage = 0;
  leafVersion = 0;
  /**
   * With a fence requested: where the tightest separator on the scan's side of the leaf is (above it
   * forward, below it in reverse): the interior page (0 at the tree's edge), the version that page had
   * when the descent passed it, and the cell's absolute offset. Only the location is kept: a scan
   * needs the fence only when it leaves the leaf, and most short scans never do; `copyFence` reads it.
   */
  fencePage = 0;
  fenceVersion = 0;
  fenceCell = 0;
  /** Output of `leafSearch()`: whether the key at the returned index equals the search key. */
  found = false;
  /**
   * Reads through this view that started over because the writer changed what they read: a plain
   * counter of this thread, counted only on the restart path, so tests can see readers race the writer.
   */
  restarts = 0;

  constructor(arena: PageSpace, metaPageId: number) {
    this.arena = arena;
    this.metaPageId = metaPageId;
    this.#pageSizeBytes = arena.pageSizeBytes;
    this.#slotsMax = Math.floor((arena.pageSizeBytes - pageHeaderBytes) / slotBytes);
  }

  /**
   * Descends from the root to the leaf that may hold `key` (or the rightmost leaf for a null key),
   * validating each parent after reading its child's version (lock coupling). `strict` picks the child
   * for keys strictly above `key`, which a forward scan resuming after a fence needs. `wantFence`
   * locates the leaf's upper fence (or its lower one, with `reverse`) for `copyFence`.
   * Returns the leaf page id, or `restart`.
   */
  descend(key: Uint8Array | null, strict: boolean, wantFence: boolean, reverse = false): number {
    const arena = this.arena;
    const metaPageId = this.metaPageId;
    const metaVersion = arena.readLatch(metaPageId);
    if ((metaVersion & latchUnstableMask) !== 0) return restart;
    let node = Atomics.load(arena.i32, arena.pageWordIndex(metaPageId) + kTreeRootPageId);
    if (node <= 0 || !arena.covers(node)) return restart;
    let version = arena.readLatch(node);
    if ((version & latchUnstableMask) !== 0 || !arena.validate(metaPageId, metaVersion)) return restart;
    if (wantFence) this.fencePage = 0;
    const head = key === null ? 0 : keyHead(key, 0, key.length);
    for (let depth = 0; depth < treeHeightMax; depth++) {
      const u8 = arena.u8;
      const base = arena.pageOffset(node);
      const type = u8[base + pType];
      if (type === pageTypeLeaf) {
        this.leafPage = node;
        this.leafVersion = version;
        return node;
      }
      if (type !== pageTypeInterior) return restart;
      const count = get16(u8, base + pCount);
      const index = key === null ? count : this.#interiorSearch(u8, base, count, key, head, strict);
      if (index < 0) return restart;
      let child: number;
      if (index < count) {
        const cell = this.#interiorCell(u8, base, count, index);
        if (cell < 0) return restart;
        child = get32(u8, cell + 2);
        if (wantFence && !reverse) this.#locateFence(node, version, cell);
      } else {
        child = get32(u8, base + pLink);
      }
      if (wantFence && reverse && index > 0) {
        const cell = this.#interiorCell(u8, base, count, index - 1);
        if (cell < 0) return restart;
        this.#locateFence(node, version, cell);
      }
      if (child === 0 || !arena.covers(child)) return restart;
      const childVersion = arena.readLatch(child);
      if ((childVersion & latchUnstableMask) !== 0) return restart;
      if (!arena.validate(node, version)) return restart;
      node = child;
      version = childVersion;
    }
    return restart;
  }

  /**
   * Copies the separator a descent located (`fencePage`, `fenceVersion`, `fenceCell`; the page must
   * not be 0), or returns null if that interior page changed since: the caller restarts. While the
   * page keeps its version it still points to the leaf below with this separator, so the copy is the
   * fence of a leaf whose own version the caller validates.
   */
  copyFence(page: number, version: number, cell: number): Uint8Array | null {
    const u8 = this.arena.u8;
    const start = cell + interiorKeyOffset;
    const end = start + get16(u8, cell);
    if (end > this.arena.pageOffset(page) + this.#pageSizeBytes) return null;
    const fence = u8.slice(start, end);
    return this.validate(page, version) ? fence : null;
  }

  /** True if `page` still has `version`: everything read from it since is a consistent state. */
  validate(page: number, version: number): boolean {
    return this.arena.validate(page, version);
  }

  /** Number of cells in the leaf, or `restart` if the count is impossible. */
  leafCount(page: number): number {
    const count = get16(this.arena.u8, this.arena.pageOffset(page) + pCount);
    return count > this.#slotsMax ? restart : count;
  }

  /**
   * First index in the leaf whose key is >= `key` (> with `strict`), setting `found` if that key equals
   * `key`; or `restart`.
   */
  leafSearch(page: number, count: number, key: Uint8Array, strict: boolean): number {
    const u8 = this.arena.u8;
    const base = this.arena.pageOffset(page);
    const head = keyHead(key, 0, key.length);
    let low = 0;
    let high = count;
    let equal = false;
    while (low < high) {
      const mid = (low + high) >>> 1;
      let order = slotHeadAt(u8, base, mid) - head;
      if (order === 0) {
        const cell = this.leafCell(page, count, mid);
        if (cell < 0) return restart;
        const keyLength = get16(u8, cell + leafKeyLengthOffset);
        const keyStart = cell + 7 + leafMvccBytes(u8[cell]!);
        if (keyStart + keyLength > base + this.#pageSizeBytes) return restart;
        order = compareAfterEqualHeads(u8, keyStart, keyLength, key);
      }
      if (order < 0 || (strict && order === 0)) {
        low = mid + 1;
      } else {
        high = mid;
        equal = order === 0;
      }
    }
    this.found = equal && low < count;
    return low;
  }

  /** Absolute offset of leaf cell `index`, its fixed header bounds-checked; or `restart`. */
  leafCell(page: number, count: number, index: number): number {
    const u8 = this.arena.u8;
    const base = this.arena.pageOffset(page);
    const offset = get16(u8, base + pageHeaderBytes + index * slotBytes);
    if (offset < pageHeaderBytes + count * slotBytes || offset + 7 > this.#pageSizeBytes) return restart;
    return base + offset;
  }

  /** Copies the key of a leaf cell found by `leafCell`; or null if it runs off the page. */
  copyLeafKey(page: number, cell: number): Buffer | null {
    const u8 = this.arena.u8;
    const keyLength = get16(u8, cell + leafKeyLengthOffset);
    const keyStart = cell + 7 + leafMvccBytes(u8[cell]!);
    if (keyStart + keyLength > this.arena.pageOffset(page) + this.#pageSizeBytes) return null;
    const out = Buffer.allocUnsafe(keyLength);
    out.set(u8.subarray(keyStart, keyStart + keyLength));
    return out;
  }

  /** Compares a leaf cell's key with `key` (the cell must have passed `copyLeafKey`-style checks). */
  compareLeafKey(cell: number, key: Uint8Array): number {
    const u8 = this.arena.u8;
    return compareBytes(
      u8,
      cell + 7 + leafMvccBytes(u8[cell]!),
      get16(u8, cell + leafKeyLengthOffset),
      key,
      0,
      key.length,
    );
  }

  /**
   * Copies the value of a leaf cell, following its overflow chain if it has one; null if anything
   * read is impossible (the caller restarts after validating the leaf).
   */
  copyLeafValue(page: number, version: number, cell: number): Buffer | null {
    return this.copyLeafValueInto(page, version, cell, null);
  }

  /**
   * `copyLeafValue` into a view of `scratch` (null: a new buffer). The view is overwritten by the
   * scratch's next use.
   */
  copyLeafValueInto(
    page: number,
    version: number,
    cell: number,
    scratch: ValueScratch | null,
  ): Buffer | null {
    const arena = this.arena;
    let u8 = arena.u8;
    const flags = u8[cell]!;
    const valueLength = get32(u8, cell + leafValueLengthOffset);
    const valueStart = cell + 7 + leafMvccBytes(flags) + get16(u8, cell + leafKeyLengthOffset);
    const pageEnd = arena.pageOffset(page) + this.#pageSizeBytes;
    if ((flags & cellFlagOverflow) === 0) {
      if (valueStart + valueLength > pageEnd) return null;
      const out = scratch === null ? Buffer.allocUnsafe(valueLength) : scratch.view(valueLength);
      out.set(u8.subarray(valueStart, valueStart + valueLength));
      return out;
    }
    if (valueStart + 4 > pageEnd || valueLength > valueBytesMax) return null;
    // A length read from a page that has since changed may be garbage: check before allocating it.
    if (!this.validate(page, version)) return null;
    const chunkMax = this.#pageSizeBytes - pageHeaderBytes;
    const hopsMax = Math.ceil(valueLength / chunkMax);
    const out = scratch === null ? Buffer.allocUnsafe(valueLength) : scratch.view(valueLength);
    let next = get32(u8, valueStart);
    let copied = 0;
    for (let hops = 0; copied < valueLength; hops++) {
      if (hops >= hopsMax || next === 0 || !arena.covers(next)) return null;
      // An overflow page does not change while its leaf keeps its version, but in a buffer pool its
      // frame may be given to another page meanwhile: its own latch says whether it stayed.
      const overflowVersion = arena.readLatch(next);
      if ((overflowVersion & latchUnstableMask) !== 0) return null;
      u8 = arena.u8;
      const base = arena.pageOffset(next);
      const chunk = get32(u8, base + pChunkBytes);
      if (
        u8[base + pType] !== pageTypeOverflow ||
        chunk === 0 ||
        chunk > chunkMax ||
        copied + chunk > valueLength
      ) {
        return null;
      }
      out.set(u8.subarray(base + pageHeaderBytes, base + pageHeaderBytes + chunk), copied);
      copied += chunk;
      const chunkPage = next;
      next = get32(u8, base + pLink);
      // Reading the leaf's latch again, not only comparing it, keeps the leaf warm in a buffer pool: a
      // chain longer than the pool's frames would otherwise push it out before the copy ends, forever.
      if (!arena.validate(chunkPage, overflowVersion) || arena.readLatch(page) !== version) return null;
    }
    return out;
  }

  /** First cell index whose separator is >= key (> with `strict`); `count` means the upper child. */
  #interiorSearch(
    u8: Uint8Array,
    base: number,
    count: number,
    key: Uint8Array,
    head: number,
    strict: boolean,
  ): number {
    if (count > this.#slotsMax) return restart;
    let low = 0;
    let high = count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      let order = slotHeadAt(u8, base, mid) - head;
      if (order === 0) {
        const cell = this.#interiorCell(u8, base, count, mid);
        if (cell < 0) return restart;
        order = compareAfterEqualHeads(u8, cell + interiorKeyOffset, get16(u8, cell), key);
      }
      if (order < 0 || (strict && order === 0)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  #locateFence(page: number, version: number, cell: number): void {
    this.fencePage = page;
    this.fenceVersion = version;
    this.fenceCell = cell;
  }

  #interiorCell(u8: Uint8Array, base: number, count: number, index: number): number {
    const offset = get16(u8, base + pageHeaderBytes + index * slotBytes);
    if (offset < pageHeaderBytes + count * slotBytes || offset + interiorKeyOffset > this.#pageSizeBytes) {
      return restart;
    }
    const cell = base + offset;
    if (cell + interiorKeyOffset + get16(u8, cell) > base + this.#pageSizeBytes) return restart;
    return cell;
  }
}

/**
 * Counts restarts of one read and gives up with ERR_CORRUPTION after `restartBudgetMs`: a page that
 * never validates is corrupt, or its writer died holding the latch. Never loop forever.
 */
export class RestartBudget {
  #restarts = 0;
  #startedMs = 0;

  spend(): void {
    const restarts = ++this.#restarts;
    if (restarts % restartsBetweenClockChecks !== 0) return;
    const now = performance.now();
    if (this.#startedMs === 0) {
      this.#startedMs = now;
    } else if (now - this.#startedMs > restartBudgetMs) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `no consistent read after ${restarts} restarts in ${restartBudgetMs} ms: the tree is corrupt or its writer died holding a latch`,
      );
    }
  }
}
