import { assert } from './assert.js';
import { LightningError } from './errors.js';
import { pageTypeFree, pLink, pType } from './page-layout.js';
import type { PageSpace } from './page-space.js';

/**
 * Hands out and takes back the pages of one page space. Owner thread only: it has a single writer.
 *
 * A freed page goes on a free list linked through its header, with its version word marked obsolete:
 * a reader still inside it fails validation and restarts. The version counter is never reset, so a
 * page that is reused also looks changed to a reader that saw it before it was freed.
 */
export class PageAllocator {
  readonly #arena: PageSpace;

  constructor(arena: PageSpace) {
    this.#arena = arena;
  }

  /** Pages that can still be allocated: the free list plus the room left below the maximum. */
  pagesAvailable(): number {
    const arena = this.#arena;
    return this.freePageCount() + arena.pagesMax - arena.pagesAllocated();
  }

  freePageCount(): number {
    return Atomics.load(this.#arena.i32, this.#arena.freePageCountIndex);
  }

  freeListHead(): number {
    return Atomics.load(this.#arena.i32, this.#arena.freeListHeadIndex);
  }

  /**
   * Throws ERR_PARTITION_FULL unless `pageCount` pages can be allocated. Writers call this before they
   * change anything, so that a full partition fails an operation whole instead of half-way.
   */
  reserve(pageCount: number): void {
    const arena = this.#arena;
    const available = this.pagesAvailable();
    if (pageCount > available) {
      throw new LightningError(
        'ERR_PARTITION_FULL',
        `partition is full: the operation needs up to ${pageCount} pages, ${available} of ${arena.pagesMax} ` +
          `(${arena.pagesMax * arena.pageSizeBytes} bytes) are left; raise maxBytes or delete data`,
      );
    }
    // Grow the buffer now, so that allocate() cannot fail half-way through a change.
    const newPages = Math.max(0, pageCount - this.freePageCount());
    if (newPages > 0) arena.growToHold(arena.pagesAllocated() + newPages - 1);
    arena.reserveFrames(pageCount);
  }

  /**
   * Returns a page id for the caller to initialise under its latch. The caller must have reserved it.
   * The page's content is whatever it held before; its version word is kept.
   */
  allocate(): number {
    const arena = this.#arena;
    const head = this.freeListHead();
    if (head !== 0) {
      const next = arena.u32[(arena.pageOffset(head) + pLink) >>> 2]!;
      Atomics.store(arena.i32, arena.freeListHeadIndex, next);
      Atomics.sub(arena.i32, arena.freePageCountIndex, 1);
      return head;
    }
    return arena.takeNewPage();
  }

  /** Puts a page on the free list and marks it obsolete. The page may be locked by the caller. */
  free(pageId: number): void {
    const arena = this.#arena;
    assert(pageId > 0 && pageId < arena.pagesAllocated(), `free of page ${pageId} outside the arena`);
    const word = arena.lockForFree(pageId);
    const base = arena.pageOffset(pageId);
    assert(arena.u8[base + pType] !== pageTypeFree, `double free of page ${pageId}`);
    arena.u8[base + pType] = pageTypeFree;
    arena.u32[(base + pLink) >>> 2] = this.freeListHead();
    arena.unlockFreed(pageId, word);
    Atomics.store(arena.i32, arena.freeListHeadIndex, pageId);
    Atomics.add(arena.i32, arena.freePageCountIndex, 1);
  }
}
