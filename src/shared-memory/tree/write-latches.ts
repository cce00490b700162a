import type { PageArena } from '../arena.js';
import { latchLockedBit, latchUnlocked } from '../latch.js';
import type { PageAllocator } from '../page-allocator.js';

/**
 * The latches one write holds and the pages it will free. A write takes the latch of every page it
 * changes and keeps them all until the whole change (splits and merges up the tree included) is in
 * place, so a reader sees each page before or after the write. Pages the write unlinks are freed only
 * after every latch is released: a freed page is marked obsolete and may be reused at once.
 */
export class WriteLatches {
  readonly #arena: PageArena;
  /** Int32Array word index of each held latch, and the version word it had before locking. */
  #words = new Int32Array(64);
  #versions = new Int32Array(64);
  #held = 0;
  readonly #pagesToFree: number[] = [];

  constructor(arena: PageArena) {
    this.#arena = arena;
  }

  /** Takes a page's latch for the rest of this write (no-op if this write holds it already). */
  lock(pageId: number): void {
    const arena = this.#arena;
    const word = arena.latchIndex(pageId);
    const version = Atomics.load(arena.i32, word);
    if ((version & latchLockedBit) !== 0) return;
    Atomics.store(arena.i32, word, version | latchLockedBit);
    if (this.#held === this.#words.length) this.#grow();
    this.#words[this.#held] = word;
    this.#versions[this.#held] = version;
    this.#held++;
  }

  /** Frees a page when the write ends. */
  freeLater(pageId: number): void {
    this.#pagesToFree.push(pageId);
  }

  /** Ends the write: releases every latch (bumping each version), then frees the unlinked pages. */
  release(allocator: PageAllocator): void {
    const i32 = this.#arena.i32;
    const words = this.#words;
    const versions = this.#versions;
    for (let i = this.#held - 1; i >= 0; i--) Atomics.store(i32, words[i]!, latchUnlocked(versions[i]!));
    this.#held = 0;
    if (this.#pagesToFree.length === 0) return;
    for (const page of this.#pagesToFree) allocator.free(page);
    this.#pagesToFree.length = 0;
  }

  /** A write of a large value latches one page per overflow chunk: make room for more. */
  #grow(): void {
    const words = new Int32Array(this.#words.length * 2);
    const versions = new Int32Array(this.#versions.length * 2);
    words.set(this.#words);
    versions.set(this.#versions);
    this.#words = words;
    this.#versions = versions;
  }
}
