import { assert } from '../assert.js';
import { pageTypeLeaf, pLink, pType } from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import { kTreeHeight, kTreeRootPageId, treeHeightMax } from './meta-layout.js';
import {
  cellAt,
  compareAfterEqualHeads,
  get16,
  get32,
  interiorKeyOffset,
  keyHead,
  leafKeyAt,
  leafKeyLengthOffset,
  nodeCount,
  slotHeadAt,
} from './node-format.js';

/**
 * The owner's descent through its own tree: trusted and latch-blind (only the owner writes the tree,
 * so what it reads is what it wrote), recording the path so a write can split and merge back up it.
 * The optimistic, bounds-checked descent of readers on other threads is in optimistic-view.ts.
 */
export class OwnerPath {
  /** The pages and child indexes of the last descent, root first. */
  readonly pages = new Int32Array(treeHeightMax);
  readonly indexes = new Int32Array(treeHeightMax);
  /** Output of `leafSearch`: whether the key at the returned index equals the search key. */
  found = false;
  readonly #arena: PageSpace;
  readonly #metaWord: number;

  constructor(arena: PageSpace, metaWord: number) {
    this.#arena = arena;
    this.#metaWord = metaWord;
  }

  /** Walks from the root to the leaf for `key`, recording the path. Returns the leaf's depth. */
  descend(key: Uint8Array): number {
    const arena = this.#arena;
    const u8 = arena.u8;
    const height = Atomics.load(arena.i32, this.#metaWord + kTreeHeight);
    const head = keyHead(key, 0, key.length);
    let node = Atomics.load(arena.i32, this.#metaWord + kTreeRootPageId);
    for (let depth = 0; depth < height - 1; depth++) {
      const base = arena.pageOffset(node);
      const count = nodeCount(u8, base);
      let low = 0;
      let high = count;
      while (low < high) {
        const mid = (low + high) >>> 1;
        const slotHead = slotHeadAt(u8, base, mid);
        let order = slotHead - head;
        if (order === 0) {
          const cell = cellAt(u8, base, mid);
          order = compareAfterEqualHeads(u8, cell + interiorKeyOffset, get16(u8, cell), key);
        }
        if (order < 0) low = mid + 1;
        else high = mid;
      }
      this.pages[depth] = node;
      this.indexes[depth] = low;
      node = this.#childAt(base, low);
    }
    assert(arena.u8[arena.pageOffset(node) + pType] === pageTypeLeaf, 'descent ends at a leaf');
    this.pages[height - 1] = node;
    return height - 1;
  }

  /** First index whose key is >= `key`; sets `found` if it is equal. */
  leafSearch(base: number, key: Uint8Array): number {
    const u8 = this.#arena.u8;
    const count = nodeCount(u8, base);
    const head = keyHead(key, 0, key.length);
    let low = 0;
    let high = count;
    let equal = false;
    while (low < high) {
      const mid = (low + high) >>> 1;
      let order = slotHeadAt(u8, base, mid) - head;
      if (order === 0) {
        const cell = cellAt(u8, base, mid);
        order = compareAfterEqualHeads(u8, leafKeyAt(u8, cell), get16(u8, cell + leafKeyLengthOffset), key);
      }
      if (order < 0) {
        low = mid + 1;
      } else {
        high = mid;
        equal = order === 0;
      }
    }
    this.found = equal && low < count;
    return low;
  }

  /**
   * The leaf after the one the last descent reached (at `depth`), or 0 at the tree's end: climb to
   * the first ancestor with a child to the right, then go down its leftmost path.
   */
  nextLeaf(depth: number): number {
    const arena = this.#arena;
    let level = depth - 1;
    while (level >= 0 && this.indexes[level]! >= nodeCount(arena.u8, arena.pageOffset(this.pages[level]!)))
      level--;
    if (level < 0) return 0;
    let node = this.#childAt(arena.pageOffset(this.pages[level]!), this.indexes[level]! + 1);
    for (let d = level + 1; d < depth; d++) node = this.#childAt(arena.pageOffset(node), 0);
    return node;
  }

  #childAt(base: number, index: number): number {
    const u8 = this.#arena.u8;
    return index < nodeCount(u8, base) ? get32(u8, cellAt(u8, base, index) + 2) : get32(u8, base + pLink);
  }
}
