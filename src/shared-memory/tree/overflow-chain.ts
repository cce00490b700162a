import { pageHeaderBytes } from '../limits.js';
import type { PageAllocator } from '../page-allocator.js';
import { pageTypeOverflow, pChunkBytes, pLink } from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import { initNode } from './node-edit.js';
import { get32, set32 } from './node-format.js';

/**
 * Values too large for a leaf cell live in a chain of overflow pages, each holding one chunk. A chain
 * is written in full before the leaf cell that points to it is published, and freed only after the
 * leaf no longer points to it, so a reader that validates the leaf never follows a half-written chain.
 */

export function overflowChunkBytesMax(pageSizeBytes: number): number {
  return pageSizeBytes - pageHeaderBytes;
}

export function overflowPagesFor(valueBytes: number, pageSizeBytes: number): number {
  return Math.ceil(valueBytes / overflowChunkBytesMax(pageSizeBytes));
}

/**
 * Writes `value` into newly allocated pages and returns the first page id. `lock` is called on each
 * page before it is written (the caller releases them when its operation ends).
 */
export function writeOverflowChain(
  arena: PageSpace,
  allocator: PageAllocator,
  value: Uint8Array,
  lock: (pageId: number) => void,
): { firstPageId: number; pageCount: number } {
  const pageSizeBytes = arena.pageSizeBytes;
  const chunkMax = overflowChunkBytesMax(pageSizeBytes);
  const pageCount = overflowPagesFor(value.length, pageSizeBytes);
  const pageIds: number[] = [];
  for (let i = 0; i < pageCount; i++) pageIds.push(allocator.allocate());
  for (let i = 0; i < pageCount; i++) {
    const pageId = pageIds[i]!;
    lock(pageId);
    const u8 = arena.u8;
    const base = arena.pageOffset(pageId);
    const start = i * chunkMax;
    const chunk = Math.min(chunkMax, value.length - start);
    initNode(u8, base, pageSizeBytes, pageTypeOverflow, pageIds[i + 1] ?? 0);
    set32(u8, base + pChunkBytes, chunk);
    u8.set(value.subarray(start, start + chunk), base + pageHeaderBytes);
  }
  return { firstPageId: pageIds[0]!, pageCount };
}

/** Page ids of a chain, first to last. Trusted: owner thread only. */
export function overflowChainPages(arena: PageSpace, firstPageId: number): number[] {
  const pages: number[] = [];
  for (let page = firstPageId; page !== 0; page = get32(arena.u8, arena.pageOffset(page) + pLink)) {
    pages.push(page);
  }
  return pages;
}
