import { compareBytes } from '../bytes.js';
import { LightningError } from '../errors.js';
import { cellBytesMax, pageHeaderBytes, slotBytes } from '../limits.js';
import {
  pageTypeFree,
  pageTypeInterior,
  pageTypeLeaf,
  pageTypeName,
  pageTypeOverflow,
  pCellStart,
  pChunkBytes,
  pFragmented,
  pLink,
  pType,
} from '../page-layout.js';
import {
  kTreeEntryCount,
  kTreeHeight,
  kTreeOverflowPageCount,
  kTreeRootPageId,
  kTreeTombstoneCount,
} from './meta-layout.js';
import {
  cellAt,
  cellFlagIntent,
  cellFlagOverflow,
  cellFlagsKnown,
  cellFlagTimestamp,
  cellFlagTombstone,
  get16,
  get32,
  interiorCellSizeAt,
  interiorKeyOffset,
  keyHead,
  leafCellSizeAt,
  leafKeyAt,
  leafKeyLengthOffset,
  leafValueLengthOffset,
  nodeCount,
  nodeUsedBytes,
  slotHeadAt,
} from './node-format.js';
import { overflowChunkBytesMax, overflowPagesFor } from './overflow-chain.js';
import { verifyTreeMeta } from './tree-handle.js';
import type { TreeReader } from './tree-reader.js';

export interface TreeCheckReport {
  entries: number;
  height: number;
  leafPages: number;
  interiorPages: number;
  overflowPages: number;
  freePages: number;
  pagesAllocated: number;
  /** Average fraction of node bytes in use, over leaves and interior nodes. */
  fillAverage: number;
}

interface KeyRef {
  u8: Uint8Array;
  start: number;
  length: number;
}

/**
 * Verifies every invariant of a tree and its arena, throwing ERR_CORRUPTION that names the page:
 * headers and checksums; each node's slots, cells and free-space accounting; keys strictly ordered
 * within each node and inside the bounds its parent gives it; all leaves at the same depth; no empty
 * leaf that could have been merged; overflow chains complete; the free list well-formed; and every
 * allocated page either in the tree or on the free list, exactly once.
 *
 * Call it only while no write is in progress. O(pages).
 */
export function checkTree(tree: TreeReader): TreeCheckReport {
  const arena = tree.view.arena.imageAtRest();
  const metaPageId = tree.view.metaPageId;
  verifyTreeMeta(arena, metaPageId);
  // Views over every allocated page, however far the buffer has grown.
  arena.covers(arena.pagesAllocated() - 1);
  const u8 = arena.u8;
  const i32 = arena.i32;
  const pageSizeBytes = arena.pageSizeBytes;
  const pagesAllocated = arena.pagesAllocated();
  const metaWord = arena.pageWordIndex(metaPageId);
  const seen = new Uint8Array(pagesAllocated);
  const fail = (page: number, message: string): never => {
    throw new LightningError('ERR_CORRUPTION', `checkTree: page ${page}: ${message}`);
  };
  const claim = (page: number, what: string): void => {
    if (!Number.isInteger(page) || page <= 0 || page >= pagesAllocated)
      fail(page, `${what} page id out of range`);
    if (seen[page] !== 0) fail(page, `${what} page reached twice`);
    seen[page] = 1;
    if (arena.isLatched(page)) fail(page, `${what} page is locked`);
    if (what !== 'free' && arena.isFreed(page)) fail(page, `${what} page is marked obsolete`);
  };
  seen[0] = 1;
  claim(metaPageId, 'meta');

  const height = Atomics.load(i32, metaWord + kTreeHeight);
  const root = Atomics.load(i32, metaWord + kTreeRootPageId);
  const report: TreeCheckReport = {
    entries: 0,
    height,
    leafPages: 0,
    interiorPages: 0,
    overflowPages: 0,
    freePages: 0,
    pagesAllocated,
    fillAverage: 0,
  };
  let fillSum = 0;

  const checkOverflow = (leaf: number, first: number, valueLength: number): void => {
    const chunkMax = overflowChunkBytesMax(pageSizeBytes);
    let total = 0;
    let pages = 0;
    for (let page = first; page !== 0; page = get32(u8, arena.pageOffset(page) + pLink)) {
      claim(page, 'overflow');
      const base = arena.pageOffset(page);
      if (u8[base + pType] !== pageTypeOverflow)
        fail(page, `overflow chain of leaf ${leaf} reaches a ${pageTypeName(u8[base + pType]!)} page`);
      const chunk = get32(u8, base + pChunkBytes);
      if (chunk === 0 || chunk > chunkMax) fail(page, `overflow chunk of ${chunk} bytes`);
      total += chunk;
      pages++;
    }
    if (total !== valueLength)
      fail(leaf, `overflow chain holds ${total} bytes, the cell says ${valueLength}`);
    if (pages !== overflowPagesFor(valueLength, pageSizeBytes))
      fail(leaf, `overflow chain of ${pages} pages is not packed`);
    report.overflowPages += pages;
  };

  const walk = (
    page: number,
    depth: number,
    lower: KeyRef | null,
    upper: KeyRef | null,
    parentCount: number,
  ): void => {
    claim(page, 'node');
    const base = arena.pageOffset(page);
    const type = u8[base + pType]!;
    const isLeaf = depth === height - 1;
    if (type !== (isLeaf ? pageTypeLeaf : pageTypeInterior)) {
      fail(page, `${pageTypeName(type)} page at depth ${depth} of a tree of height ${height}`);
    }
    const count = nodeCount(u8, base);
    const cellStart = get16(u8, base + pCellStart);
    if (cellStart < pageHeaderBytes + count * slotBytes || cellStart > pageSizeBytes)
      fail(page, 'slots overlap cells');
    const spans: [number, number][] = [];
    let cellBytes = 0;
    let previous: KeyRef | null = null;
    const keys: KeyRef[] = [];
    for (let i = 0; i < count; i++) {
      const cell = cellAt(u8, base, i);
      const offset = cell - base;
      if (offset < cellStart || offset >= pageSizeBytes) fail(page, `slot ${i} points outside the cell area`);
      const size = isLeaf ? leafCellSizeAt(u8, cell) : interiorCellSizeAt(u8, cell);
      if (offset + size > pageSizeBytes) fail(page, `cell ${i} runs off the page`);
      if (size + slotBytes > cellBytesMax(pageSizeBytes) + slotBytes)
        fail(page, `cell ${i} is larger than a cell may be`);
      spans.push([offset, offset + size]);
      cellBytes += size;
      const key: KeyRef = isLeaf
        ? { u8, start: leafKeyAt(u8, cell), length: get16(u8, cell + leafKeyLengthOffset) }
        : { u8, start: cell + interiorKeyOffset, length: get16(u8, cell) };
      if (slotHeadAt(u8, base, i) !== keyHead(u8, key.start, key.length))
        fail(page, `slot ${i} head does not match its key`);
      if (previous !== null && compareKeys(previous, key) >= 0)
        fail(page, `keys ${i - 1} and ${i} out of order`);
      if (lower !== null && compareKeys(key, lower) <= 0)
        fail(page, `key ${i} is not above the parent's lower bound`);
      if (upper !== null && compareKeys(key, upper) > 0)
        fail(page, `key ${i} is above the parent's upper bound`);
      previous = key;
      keys.push(key);
      if (isLeaf) {
        const flags = u8[cell]!;
        if ((flags & ~cellFlagsKnown) !== 0) fail(page, `cell ${i} has unknown flags ${flags}`);
        if ((flags & cellFlagTombstone) !== 0) tombstonesSeen++;
        if (
          (flags & cellFlagTombstone) !== 0 &&
          ((flags & cellFlagOverflow) !== 0 || get32(u8, cell + leafValueLengthOffset) !== 0)
        )
          fail(page, `tombstone cell ${i} has a value`);
        if ((flags & cellFlagIntent) !== 0 && (flags & cellFlagTimestamp) === 0)
          fail(page, `intent cell ${i} has no transaction reference`);
        if ((flags & cellFlagOverflow) !== 0) {
          checkOverflow(page, get32(u8, key.start + key.length), get32(u8, cell + leafValueLengthOffset));
        }
      }
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i]![0] < spans[i - 1]![1]) fail(page, 'two cells overlap');
    }
    if (cellBytes + get16(u8, base + pFragmented) !== pageSizeBytes - cellStart) {
      fail(page, 'cell bytes and fragmented bytes do not add up to the cell area');
    }
    fillSum += nodeUsedBytes(u8, base, pageSizeBytes) / (pageSizeBytes - pageHeaderBytes);
    if (isLeaf) {
      report.leafPages++;
      report.entries += count;
      if (count === 0 && depth > 0 && parentCount > 0)
        fail(page, 'an empty leaf that should have been merged');
      return;
    }
    report.interiorPages++;
    if (depth === 0 && count === 0) fail(page, 'an interior root without separators');
    for (let i = 0; i < count; i++) {
      const cell = cellAt(u8, base, i);
      walk(get32(u8, cell + 2), depth + 1, i === 0 ? lower : keys[i - 1]!, keys[i]!, count);
    }
    walk(get32(u8, base + pLink), depth + 1, count === 0 ? lower : keys[count - 1]!, upper, count);
  };

  if (height < 1 || height > 32) fail(metaPageId, `tree height ${height}`);
  let tombstonesSeen = 0;
  walk(root, 0, null, null, 0);

  const entries = Atomics.load(i32, metaWord + kTreeEntryCount) >>> 0;
  if (entries !== report.entries)
    fail(metaPageId, `entry count says ${entries}, the leaves hold ${report.entries}`);
  const tombstones = Atomics.load(i32, metaWord + kTreeTombstoneCount) >>> 0;
  if (tombstones !== tombstonesSeen)
    fail(metaPageId, `tombstone count says ${tombstones}, the leaves hold ${tombstonesSeen}`);
  const overflowPages = Atomics.load(i32, metaWord + kTreeOverflowPageCount);
  if (overflowPages !== report.overflowPages) {
    fail(metaPageId, `overflow page count says ${overflowPages}, the chains hold ${report.overflowPages}`);
  }

  const freeCount = Atomics.load(i32, arena.freePageCountIndex);
  for (
    let page = Atomics.load(i32, arena.freeListHeadIndex);
    page !== 0;
    page = get32(u8, arena.pageOffset(page) + pLink)
  ) {
    claim(page, 'free');
    const base = arena.pageOffset(page);
    if (u8[base + pType] !== pageTypeFree)
      fail(page, `${pageTypeName(u8[base + pType]!)} page on the free list`);
    if (!arena.isFreed(page)) fail(page, 'free page not marked obsolete');
    report.freePages++;
  }
  if (report.freePages !== freeCount)
    fail(0, `free count says ${freeCount}, the list holds ${report.freePages}`);
  for (let page = 0; page < pagesAllocated; page++) {
    if (seen[page] === 0) fail(page, 'allocated but neither in the tree nor on the free list (leaked)');
  }
  const nodes = report.leafPages + report.interiorPages;
  report.fillAverage = nodes === 0 ? 0 : fillSum / nodes;
  return report;
}

function compareKeys(a: KeyRef, b: KeyRef): number {
  return compareBytes(a.u8, a.start, a.length, b.u8, b.start, b.length);
}
