/**
 * The fixed 32-byte header at the start of every page after page 0. Byte offsets from the page start.
 * The version word is first so that it is 4-byte aligned for Atomics on an Int32Array.
 *
 *   0  i32  latch (version word, see latch.ts)
 *   4  u8   page type
 *   5  u8   reserved
 *   6  u16  slot count (nodes)
 *   8  u16  cell start: lowest byte offset used by cells (cells grow down from the page end)
 *  10  u16  fragmented bytes: freed cell bytes inside the cell area, reclaimed by compaction
 *  12  u32  link: upper child (interior), next page (overflow chain, free list)
 *  16  u32  chunk bytes (overflow pages)
 *  20  u32  page id, and 24 u64 page LSN: the page file's (storage/page-file), zero in the arena
 *
 * On disk, in the page file, the latch word holds the page's checksum instead.
 */
export const pLatch = 0;
export const pType = 4;
export const pCount = 6;
export const pCellStart = 8;
export const pFragmented = 10;
export const pLink = 12;
export const pChunkBytes = 16;
/** The page file's page id (storage/page-file), stamped on the copy a checkpoint writes. */
export const pPageId = 20;

export const pageTypeFree = 1;
export const pageTypeLeaf = 2;
export const pageTypeInterior = 3;
export const pageTypeOverflow = 4;
export const pageTypeTreeMeta = 5;

export function pageTypeName(type: number): string {
  switch (type) {
    case pageTypeFree:
      return 'free';
    case pageTypeLeaf:
      return 'leaf';
    case pageTypeInterior:
      return 'interior';
    case pageTypeOverflow:
      return 'overflow';
    case pageTypeTreeMeta:
      return 'tree-meta';
    default:
      return `unknown(${type})`;
  }
}
