import { PageArena } from '../arena.js';
import { kArenaFreeListHead, kArenaFreePageCount, kArenaPagesAllocated } from '../arena-layout.js';
import { latchLockedBit, latchObsoleteBit } from '../latch.js';
import { partitionPagesMin } from '../limits.js';
import { pageTypeFree, pType } from '../page-layout.js';
import type { BufferPool } from './buffer-pool.js';
import { kPoolFreeListHead, kPoolFreePageCount } from './pool-layout.js';

/**
 * Copies every allocated page of a pool into a new arena, page for page, with the allocator's words
 * and each page's latch in the arena's terms: locked if the pool has the page latched, obsolete if the
 * page is free. checkTree runs on the copy, so that it can hold offsets to any number of pages while a
 * pool holds only a fraction of them. Call it at rest (no write in progress); each page is copied
 * under the pool's optimistic read, loading it if needed.
 */
export function copyToArena(pool: BufferPool): PageArena {
  const pageSizeBytes = pool.pageSizeBytes;
  const pages = pool.pagesAllocated();
  const arena = PageArena.create({
    pageSizeBytes,
    maxBytes: Math.max(pages, partitionPagesMin) * pageSizeBytes,
  });
  arena.growToHold(pages - 1);
  for (let pageId = 1; pageId < pages; pageId++) {
    const target = arena.pageOffset(pageId);
    for (;;) {
      const offset = pool.read(pageId);
      arena.u8.set(pool.u8.subarray(offset, offset + pageSizeBytes), target);
      if (pool.validate(pageId, pool.version)) break;
    }
    const latched = pool.isLatched(pageId) ? latchLockedBit : 0;
    const freed = arena.u8[target + pType] === pageTypeFree ? latchObsoleteBit : 0;
    Atomics.store(arena.i32, arena.pageWordIndex(pageId), latched | freed);
  }
  Atomics.store(arena.i32, kArenaPagesAllocated, pages);
  Atomics.store(arena.i32, kArenaFreeListHead, Atomics.load(pool.i32, kPoolFreeListHead));
  Atomics.store(arena.i32, kArenaFreePageCount, Atomics.load(pool.i32, kPoolFreePageCount));
  return arena;
}
