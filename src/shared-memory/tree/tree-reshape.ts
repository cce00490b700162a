import { assert } from '../assert.js';
import { isLightningError, type LightningError } from '../errors.js';
import { slotBytes, underflowBytes, usableBytes } from '../limits.js';
import type { PageAllocator } from '../page-allocator.js';
import { pageTypeInterior, pageTypeLeaf, pLink, pType } from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import { kTreeHeight, kTreeRootPageId, treeHeightMax } from './meta-layout.js';
import {
  buildNode,
  CellList,
  contiguousFreeBytes,
  copyPageBody,
  fragmentedBytes,
  initNode,
  insertCell,
  removeCell,
} from './node-edit.js';
import {
  cellAt,
  get16,
  get32,
  interiorCellSizeAt,
  interiorKeyOffset,
  keyHead,
  leafCellSizeAt,
  leafKeyAt,
  leafKeyLengthOffset,
  nodeCount,
  nodeUsedBytes,
  set16,
  set32,
  slotHeadAt,
} from './node-format.js';
import type { WriteLatches } from './write-latches.js';

/**
 * Changes to the shape of a tree, on the path the writer last descended: inserting a cell with the
 * splits it causes up to a new root, and after a delete the merges, unlinking of emptied subtrees and
 * root collapse. Owner thread only; every page changed is latched through the write's `WriteLatches`.
 */
export class TreeReshape {
  readonly #arena: PageSpace;
  readonly #allocator: PageAllocator;
  readonly #latches: WriteLatches;
  readonly #metaPageId: number;
  readonly #metaWord: number;
  readonly #pageSizeBytes: number;
  readonly #usableBytes: number;
  readonly #underflowBytes: number;
  /** The writer's path, root first: page ids and the child index taken at each interior node. */
  readonly #pathPages: Int32Array;
  readonly #pathIndexes: Int32Array;
  readonly #cells = new CellList();
  readonly #scratchLeft: Uint8Array;
  readonly #scratchRight: Uint8Array;
  /** Told of a sibling that failed verification as it loaded, so its merge was left undone. */
  readonly #onDamagedSibling: (error: LightningError) => void;

  constructor(
    arena: PageSpace,
    allocator: PageAllocator,
    latches: WriteLatches,
    metaPageId: number,
    pathPages: Int32Array,
    pathIndexes: Int32Array,
    onDamagedSibling: (error: LightningError) => void,
  ) {
    this.#onDamagedSibling = onDamagedSibling;
    this.#arena = arena;
    this.#allocator = allocator;
    this.#latches = latches;
    this.#metaPageId = metaPageId;
    this.#metaWord = arena.pageWordIndex(metaPageId);
    this.#pageSizeBytes = arena.pageSizeBytes;
    this.#usableBytes = usableBytes(arena.pageSizeBytes);
    this.#underflowBytes = underflowBytes(arena.pageSizeBytes);
    this.#pathPages = pathPages;
    this.#pathIndexes = pathIndexes;
    this.#scratchLeft = new Uint8Array(arena.pageSizeBytes);
    this.#scratchRight = new Uint8Array(arena.pageSizeBytes);
  }

  #height(): number {
    return Atomics.load(this.#arena.i32, this.#metaWord + kTreeHeight);
  }

  #childAt(base: number, index: number): number {
    const u8 = this.#arena.u8;
    return index < nodeCount(u8, base) ? get32(u8, cellAt(u8, base, index) + 2) : get32(u8, base + pLink);
  }

  /** Inserts a cell at `index` of the node at `depth` of the path, splitting it if it is full. */
  insertCell(
    depth: number,
    index: number,
    source: Uint8Array,
    offset: number,
    length: number,
    head: number,
  ): void {
    const page = this.#pathPages[depth]!;
    const base = this.#arena.pageOffset(page);
    this.#latches.lock(page);
    const u8 = this.#arena.u8;
    const needed = length + slotBytes;
    const free = contiguousFreeBytes(u8, base);
    if (free < needed && free + fragmentedBytes(u8, base) >= needed) this.#compact(base);
    if (contiguousFreeBytes(u8, base) >= needed) {
      insertCell(u8, base, index, source, offset, length, head);
      return;
    }
    this.#split(depth, index, source, offset, length, head);
  }

  /** Rewrites a locked node with its cells packed, reclaiming fragmented space. */
  #compact(base: number): void {
    const u8 = this.#arena.u8;
    const cells = this.#gatherCells(base);
    buildNode(
      this.#scratchLeft,
      0,
      this.#pageSizeBytes,
      u8[base + pType]!,
      get32(u8, base + pLink),
      cells,
      0,
      cells.size,
    );
    copyPageBody(this.#scratchLeft, u8, base, this.#pageSizeBytes);
  }

  #gatherCells(base: number, into: CellList = this.#cells, clear = true): CellList {
    const u8 = this.#arena.u8;
    if (clear) into.clear();
    const leaf = u8[base + pType] === pageTypeLeaf;
    const count = nodeCount(u8, base);
    for (let i = 0; i < count; i++) {
      const cell = cellAt(u8, base, i);
      into.push(
        u8,
        cell,
        leaf ? leafCellSizeAt(u8, cell) : interiorCellSizeAt(u8, cell),
        slotHeadAt(u8, base, i),
      );
    }
    return into;
  }

  /**
   * Splits the locked node at `depth`, with the new cell inserted at `index`. The left half moves to a
   * new page and the node keeps the right half, so the parent's pointer to it stays valid and the
   * parent only gains one cell: (separator, new page).
   */
  #split(
    depth: number,
    index: number,
    source: Uint8Array,
    offset: number,
    length: number,
    head: number,
  ): void {
    const arena = this.#arena;
    const page = this.#pathPages[depth]!;
    const base = arena.pageOffset(page);
    const u8 = arena.u8;
    const leaf = u8[base + pType] === pageTypeLeaf;
    const upper = get32(u8, base + pLink);
    const cells = this.#gatherCells(base);
    cells.insert(index, source, offset, length, head);
    const count = cells.size;
    assert(count >= 4, 'a full node has at least four cells');
    let split = this.#edgeSplit(depth, index, count, leaf);
    if (split === 0) {
      const half = cells.bytes() / 2;
      let leftBytes = 0;
      while (split < count - 2 && leftBytes + cells.lengths[split]! + slotBytes <= half) {
        leftBytes += cells.lengths[split]! + slotBytes;
        split++;
      }
      if (split === 0) split = 1;
    }
    let separator: Uint8Array;
    if (leaf) {
      const lastLeft = split - 1;
      const lastSource = cells.sources[lastLeft]!;
      const lastCell = cells.offsets[lastLeft]!;
      const keyStart = leafKeyAt(lastSource, lastCell);
      separator = lastSource.slice(keyStart, keyStart + get16(lastSource, lastCell + leafKeyLengthOffset));
      buildNode(this.#scratchLeft, 0, this.#pageSizeBytes, pageTypeLeaf, 0, cells, 0, split);
      buildNode(this.#scratchRight, 0, this.#pageSizeBytes, pageTypeLeaf, 0, cells, split, count);
    } else {
      // The middle cell moves up: its key separates the halves and its child becomes the left upper.
      const middleSource = cells.sources[split]!;
      const middleCell = cells.offsets[split]!;
      const keyStart = middleCell + interiorKeyOffset;
      separator = middleSource.slice(keyStart, keyStart + get16(middleSource, middleCell));
      const middleChild = get32(middleSource, middleCell + 2);
      buildNode(this.#scratchLeft, 0, this.#pageSizeBytes, pageTypeInterior, middleChild, cells, 0, split);
      buildNode(this.#scratchRight, 0, this.#pageSizeBytes, pageTypeInterior, upper, cells, split + 1, count);
    }
    const leftPage = this.#allocator.allocate();
    this.#latches.lock(leftPage);
    copyPageBody(this.#scratchLeft, arena.u8, arena.pageOffset(leftPage), this.#pageSizeBytes);
    copyPageBody(this.#scratchRight, arena.u8, base, this.#pageSizeBytes);
    const separatorCell = new Uint8Array(interiorKeyOffset + separator.length);
    set16(separatorCell, 0, separator.length);
    set32(separatorCell, 2, leftPage);
    separatorCell.set(separator, interiorKeyOffset);
    const separatorHead = keyHead(separator, 0, separator.length);
    if (depth === 0) this.#growRoot(separatorCell, separatorHead, page);
    else
      this.insertCell(
        depth - 1,
        this.#pathIndexes[depth - 1]!,
        separatorCell,
        0,
        separatorCell.length,
        separatorHead,
      );
  }

  /**
   * Where to split a node that overflows at the tree's right (or left) edge: keys loaded in ascending
   * (descending) order would otherwise leave every node half empty, so the new cell goes alone into
   * one side and the full side stays full. Returns 0 to split by bytes in the middle.
   */
  #edgeSplit(depth: number, index: number, count: number, leaf: boolean): number {
    const atEnd = index === count - 1;
    const atStart = index === 0;
    if (!atEnd && !atStart) return 0;
    const u8 = this.#arena.u8;
    for (let d = 0; d < depth; d++) {
      const pathIndex = this.#pathIndexes[d]!;
      if (atEnd && pathIndex !== nodeCount(u8, this.#arena.pageOffset(this.#pathPages[d]!))) return 0;
      if (atStart && pathIndex !== 0) return 0;
    }
    // Leaves: left gets [0, split). Interior nodes: cell `split` moves up, so each side keeps a cell.
    if (atEnd) return leaf ? count - 1 : count - 2;
    return 1;
  }

  /** Puts a new root above the old one after the old root split. */
  #growRoot(separatorCell: Uint8Array, separatorHead: number, oldRoot: number): void {
    const arena = this.#arena;
    const height = this.#height();
    assert(height < treeHeightMax, 'tree height within its limit');
    const root = this.#allocator.allocate();
    this.#latches.lock(root);
    const base = arena.pageOffset(root);
    initNode(arena.u8, base, this.#pageSizeBytes, pageTypeInterior, oldRoot);
    insertCell(arena.u8, base, 0, separatorCell, 0, separatorCell.length, separatorHead);
    this.#latches.lock(this.#metaPageId);
    Atomics.store(arena.i32, this.#metaWord + kTreeRootPageId, root);
    Atomics.store(arena.i32, this.#metaWord + kTreeHeight, height + 1);
  }

  /**
   * After a delete, restores the shape of the path from the leaf at `leafDepth` upwards.
   *
   * A node under a quarter full merges with a sibling when the two fit in one page. The merged node
   * keeps the right sibling's page (the parent's pointer to it stays valid) and the left page is
   * freed. A node that cannot merge stays as it is. An emptied leaf is not merged but unlinked,
   * together with any separator-less interior nodes above it that held nothing else, from the first
   * ancestor that has separators; so no empty leaf survives, even under an interior node left with a
   * single child by a merge that did not fit. Nothing here allocates, so deletes work in a full
   * partition.
   */
  mergeUpward(leafDepth: number): void {
    const arena = this.#arena;
    let emptySubtree = nodeCount(arena.u8, arena.pageOffset(this.#pathPages[leafDepth]!)) === 0;
    let emptyTop = leafDepth;
    for (let depth = leafDepth; depth > 0; depth--) {
      const u8 = arena.u8;
      const parent = this.#pathPages[depth - 1]!;
      const parentBase = arena.pageOffset(parent);
      const parentCount = nodeCount(u8, parentBase);
      const index = this.#pathIndexes[depth - 1]!;
      if (emptySubtree) {
        if (parentCount === 0) {
          emptyTop = depth - 1;
          continue;
        }
        this.#unlinkChild(parentBase, parent, index);
        for (let d = emptyTop; d <= leafDepth; d++) this.#latches.freeLater(this.#pathPages[d]!);
        emptySubtree = false;
        continue;
      }
      const base = arena.pageOffset(this.#pathPages[depth]!);
      if (nodeUsedBytes(u8, base, this.#pageSizeBytes) >= this.#underflowBytes) return;
      // A parent without separators cannot pair this node with a sibling; let the parent merge instead.
      if (parentCount === 0) continue;
      if (!this.#mergeWithSibling(parent, parentBase, index, base)) return;
    }
  }

  /** Removes child `index` from a locked-on-demand interior node that has at least one separator. */
  #unlinkChild(parentBase: number, parent: number, index: number): void {
    const u8 = this.#arena.u8;
    const count = nodeCount(u8, parentBase);
    this.#latches.lock(parent);
    if (index < count) {
      const cell = cellAt(u8, parentBase, index);
      removeCell(u8, parentBase, index, interiorCellSizeAt(u8, cell));
      return;
    }
    // The upper child goes: the last cell's child becomes the upper child.
    const last = cellAt(u8, parentBase, count - 1);
    set32(u8, parentBase + pLink, get32(u8, last + 2));
    removeCell(u8, parentBase, count - 1, interiorCellSizeAt(u8, last));
  }

  /**
   * Loads the siblings `mergeUpward(leafDepth)` may merge the path's nodes with after a delete takes
   * `removedBytes` (its cell and slot) from the leaf, in the tree as it is now. Over a buffer pool each
   * page is verified as it loads, so a damaged one throws ERR_CORRUPTION here, before anything
   * changes. The leaf is judged by its bytes; above it, every node that may lose a separator is taken
   * to underflow (interior siblings are few, and mostly resident). A tree that other writes reshape
   * before this delete applies may pick another sibling then: `#mergeWithSibling` leaves such a merge
   * undone if that sibling is damaged.
   */
  readMergeSiblings(leafDepth: number, removedBytes: number): void {
    const arena = this.#arena;
    const leafBase = arena.pageOffset(this.#pathPages[leafDepth]!);
    // An emptied leaf is unlinked, not merged: its parent loses a separator.
    let unlinks = nodeCount(arena.u8, leafBase) === 1;
    if (
      !unlinks &&
      nodeUsedBytes(arena.u8, leafBase, this.#pageSizeBytes) - removedBytes >= this.#underflowBytes
    )
      return;
    for (let depth = leafDepth; depth > 0; depth--) {
      const parentBase = arena.pageOffset(this.#pathPages[depth - 1]!);
      const parentCount = nodeCount(arena.u8, parentBase);
      if (parentCount === 0) continue;
      if (unlinks) {
        unlinks = false;
        continue;
      }
      arena.pageOffset(this.#siblingOf(parentBase, this.#pathIndexes[depth - 1]!));
    }
  }

  /** The child of the node at `parentBase` that child `index` merges with (`#mergeWithSibling`). */
  #siblingOf(parentBase: number, index: number): number {
    const parentCount = nodeCount(this.#arena.u8, parentBase);
    return this.#childAt(parentBase, index < parentCount ? index + 1 : index - 1);
  }

  /**
   * Merges the node at `base` (child `index` of `parent`) with a sibling if they fit; true if merged.
   * A sibling that fails verification as it loads (a damaged page of a page file) is left alone, and
   * so is the node: a merge is never required, and the delete that asked for it is whole without it.
   */
  #mergeWithSibling(parent: number, parentBase: number, index: number, base: number): boolean {
    const arena = this.#arena;
    try {
      arena.pageOffset(this.#siblingOf(parentBase, index));
    } catch (error) {
      if (!isLightningError(error, 'ERR_CORRUPTION')) throw error;
      this.#onDamagedSibling(error);
      return false;
    }
    const u8 = arena.u8;
    const parentCount = nodeCount(u8, parentBase);
    const separatorIndex = index < parentCount ? index : index - 1;
    const left = this.#childAt(parentBase, separatorIndex);
    const right = this.#childAt(parentBase, separatorIndex + 1);
    const leftBase = arena.pageOffset(left);
    const rightBase = arena.pageOffset(right);
    const separatorCell = cellAt(u8, parentBase, separatorIndex);
    const separatorLength = interiorCellSizeAt(u8, separatorCell);
    const leaf = u8[base + pType] === pageTypeLeaf;
    const mergedBytes =
      nodeUsedBytes(u8, leftBase, this.#pageSizeBytes) +
      nodeUsedBytes(u8, rightBase, this.#pageSizeBytes) +
      (leaf ? 0 : separatorLength + slotBytes);
    if (mergedBytes > this.#usableBytes) return false;
    const cells = this.#gatherCells(leftBase);
    if (!leaf) {
      // The separator comes down between the halves, pointing at the left node's upper child.
      const pulledDown = u8.slice(separatorCell, separatorCell + separatorLength);
      set32(pulledDown, 2, get32(u8, leftBase + pLink));
      cells.push(pulledDown, 0, separatorLength, slotHeadAt(u8, parentBase, separatorIndex));
    }
    this.#gatherCells(rightBase, cells, false);
    const link = leaf ? 0 : get32(u8, rightBase + pLink);
    buildNode(this.#scratchLeft, 0, this.#pageSizeBytes, u8[base + pType]!, link, cells, 0, cells.size);
    this.#latches.lock(parent);
    this.#latches.lock(left);
    this.#latches.lock(right);
    copyPageBody(this.#scratchLeft, u8, rightBase, this.#pageSizeBytes);
    removeCell(u8, parentBase, separatorIndex, separatorLength);
    this.#latches.freeLater(left);
    return true;
  }

  /** Replaces an interior root that has no separator left by its only child. */
  collapseRoot(): void {
    const arena = this.#arena;
    for (;;) {
      const height = this.#height();
      if (height === 1) return;
      const root = Atomics.load(arena.i32, this.#metaWord + kTreeRootPageId);
      const base = arena.pageOffset(root);
      if (nodeCount(arena.u8, base) > 0) return;
      this.#latches.lock(this.#metaPageId);
      Atomics.store(arena.i32, this.#metaWord + kTreeRootPageId, get32(arena.u8, base + pLink));
      Atomics.store(arena.i32, this.#metaWord + kTreeHeight, height - 1);
      this.#latches.freeLater(root);
    }
  }
}
