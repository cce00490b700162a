import type { PageAllocator } from '../page-allocator.js';
import type { PageSpace } from '../page-space.js';

/**
 * The latches one write holds and the pages it will free. A write takes the latch of every page it
 * changes and keeps them all until the whole change (splits and merges up the tree included) is in
 * place, so a reader sees each page before or after the write. Pages the write unlinks are freed only
 * after every latch is released: a freed page is marked obsolete and may be reused at once.
 */
export class WriteLatches {
  readonly #arena: PageSpace;
  /** Each held page, and the latch word it had before locking. */
  #pages = new Int32Array(64);
  #versions = new Int32Array(64);
  #held = 0;
  readonly #pagesToFree: number[] = [];

  constructor(arena: PageSpace) {
    this.#arena = arena;
  }

  /** Takes a page's latch for the rest of this write (no-op if this write holds it already). */
  lock(pageId: number): void {
    const version = this.#arena.lockForWrite(pageId);
    if (version === -1) return;
    if (this.#held === this.#pages.length) this.#grow();
    this.#pages[this.#held] = pageId;
    this.#versions[this.#held] = version;
    this.#held++;
  }

  /** Frees a page when the write ends. */
  freeLater(pageId: number): void {
    this.#pagesToFree.push(pageId);
  }

  /** Ends the write: releases every latch (bumping each version), then frees the unlinked pages. */
  release(allocator: PageAllocator): void {
    const arena = this.#arena;
    const pages = this.#pages;
    const versions = this.#versions;
    for (let i = this.#held - 1; i >= 0; i--) arena.unlockAfterWrite(pages[i]!, versions[i]!);
    this.#held = 0;
    if (this.#pagesToFree.length === 0) return;
    for (const page of this.#pagesToFree) allocator.free(page);
    this.#pagesToFree.length = 0;
  }

  /** A write of a large value latches one page per overflow chunk: make room for more. */
  #grow(): void {
    const pages = new Int32Array(this.#pages.length * 2);
    const versions = new Int32Array(this.#versions.length * 2);
    pages.set(this.#pages);
    versions.set(this.#versions);
    this.#pages = pages;
    this.#versions = versions;
  }
}
