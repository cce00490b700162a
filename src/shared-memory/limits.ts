import { assert } from './assert.js';

/**
 * Every limit of the shared-memory layer, in one place. Their relations are asserted when this module
 * loads, so a change that breaks one fails at start-up instead of corrupting a page at run time.
 */

/** Bytes of the fixed header at the start of every page (version word, type, counts, links). */
export const pageHeaderBytes = 32;
/**
 * Bytes of one slot in a node's slot array: the cell's offset (u16) and the key's first four bytes
 * (u32, big-endian, zero-padded). Binary search compares the heads in the compact slot array and reads
 * a cell only when heads tie, which saves most of the cache misses of a search.
 */
export const slotBytes = 6;

export const pageSizeBytesMin = 4096;
export const pageSizeBytesMax = 32768;
export const pageSizeBytesDefault = 4096;

/** Largest key, in bytes. Keys are stored inline in leaves and as separators in interior nodes. */
export const keyBytesMax = 1024;
/** Largest value, in bytes. Values that do not fit inline go to chained overflow pages. */
export const valueBytesMax = 64 * 1024 * 1024;

/** Default and hard limits on one partition's SharedArrayBuffer. */
export const partitionBytesDefault = 1024 * 1024 * 1024;
/** Byte offsets stay below 2^31 so index arithmetic stays in small integers. */
export const partitionBytesMax = 2 * 1024 * 1024 * 1024 - pageSizeBytesMax;
/** One buffer pool's SharedArrayBuffer (page table, frame table, frames), for the same reason. */
export const poolBytesMax = partitionBytesMax;
/** The first reservation of a partition; it doubles on demand up to the partition's maximum. */
export const partitionBytesInitial = 1024 * 1024;
/** The smallest arena: header, tree meta, root and a few pages to split into. */
export const partitionPagesMin = 8;

/** Page ids are u32 in cells and headers; page id 0 is the arena header and means "no page". */
export const pageCountMax = 0xffff_ffff;

/** Leaf cell header: flags u8, key length u16, value length u32. */
export const leafCellHeaderBytes = 7;
/** Optional MVCC field a leaf cell may carry (commit timestamp or transaction reference, u64). */
export const leafCellMvccBytesMax = 8;
/**
 * Keys of the version store: the user key plus its length (u16) and an inverted timestamp (u64), so
 * one key's versions sort together, newest first.
 */
export const versionKeyBytesMax = keyBytesMax + 10;
/** Interior cell header: key length u16, child page id u32. */
export const interiorCellHeaderBytes = 6;
/** Bytes an overflowed value leaves in its leaf cell: the first overflow page id. */
export const overflowRefBytes = 4;

/** Bytes of cells and slots one page can hold. */
export function usableBytes(pageSizeBytes: number): number {
  return pageSizeBytes - pageHeaderBytes;
}

/**
 * Largest cell (plus its slot) a node accepts. A third of the page guarantees that any node with one
 * cell too many can be split into two halves that both fit.
 */
export function cellBytesMax(pageSizeBytes: number): number {
  return Math.floor(usableBytes(pageSizeBytes) / 3) - slotBytes;
}

/** A node below this many used bytes tries to merge with a sibling after a delete. */
export function underflowBytes(pageSizeBytes: number): number {
  return Math.floor(usableBytes(pageSizeBytes) / 4);
}

/** Throws at load time if the limits contradict each other. */
export function assertLimitsConsistent(pageSizeBytes: number): void {
  assert(
    pageSizeBytes >= pageSizeBytesMin &&
      pageSizeBytes <= pageSizeBytesMax &&
      (pageSizeBytes & (pageSizeBytes - 1)) === 0,
    'page size is a power of two within limits',
  );
  const cellMax = cellBytesMax(pageSizeBytes);
  const leafCellWorst = leafCellHeaderBytes + leafCellMvccBytesMax + keyBytesMax + overflowRefBytes;
  assert(leafCellWorst <= cellMax, 'a max-size key with an overflow ref fits a leaf cell');
  assert(interiorCellHeaderBytes + keyBytesMax <= cellMax, 'a max-size separator fits an interior cell');
  const versionCellWorst = leafCellHeaderBytes + leafCellMvccBytesMax + versionKeyBytesMax + overflowRefBytes;
  assert(versionCellWorst <= cellMax, 'a max-size version key with an overflow ref fits a leaf cell');
  assert(interiorCellHeaderBytes + versionKeyBytesMax <= cellMax, 'a max-size version key fits as separator');
  assert(pageSizeBytes <= 65536, 'slot offsets are u16');
  assert(partitionBytesInitial % pageSizeBytesMax === 0, 'initial reservation is whole pages');
  assert(partitionBytesMax / pageSizeBytesMin <= pageCountMax, 'page ids fit u32');
  assert(underflowBytes(pageSizeBytes) * 2 < usableBytes(pageSizeBytes), 'merge threshold below half');
}

assertLimitsConsistent(pageSizeBytesMin);
assertLimitsConsistent(pageSizeBytesMax);
