import { type ArenaOptions, PageArena } from '../arena.js';
import { assert } from '../assert.js';
import { compareBytes, keyToBytes, valueToBytes } from '../bytes.js';
import { LightningError } from '../errors.js';
import { latchLockedBit, latchUnlocked } from '../latch.js';
import { cellBytesMax, slotBytes, underflowBytes, usableBytes } from '../limits.js';
import { PageAllocator } from '../page-allocator.js';
import { pageTypeInterior, pageTypeLeaf, pFragmented, pLink, pType } from '../page-layout.js';
import { checkTree } from './check-tree.js';
import {
  kTreeEntryCount,
  kTreeHeight,
  kTreeOverflowPageCount,
  kTreeRootPageId,
  treeHeightMax,
} from './meta-layout.js';
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
  cellFlagOverflow,
  get16,
  get32,
  interiorCellSizeAt,
  interiorKeyOffset,
  keyHead,
  leafCellBytes,
  leafCellSizeAt,
  leafKeyAt,
  leafKeyLengthOffset,
  nodeCount,
  nodeUsedBytes,
  set16,
  set32,
  slotHeadAt,
} from './node-format.js';
import { overflowChainPages, overflowPagesFor, writeOverflowChain } from './overflow-chain.js';
import { writeTreeMetaHeader } from './tree-handle.js';
import { TreeReader } from './tree-reader.js';

export type BTreeOptions = ArenaOptions;

/**
 * A B+Tree in a SharedArrayBuffer, owned by one thread: the only thread that may call `put` and
 * `delete`. Any thread reads it through `TreeReader.attach(tree.share())`, concurrently with writes.
 *
 * A write takes the latches of the pages it changes, and keeps them until the whole change (including
 * splits and merges up the tree) is in place, so readers see either the state before or after it.
 * Pages freed by the change go back to the allocator only after every latch is released.
 */
export class BTree extends TreeReader {
  readonly #arena: PageArena;
  readonly #allocator: PageAllocator;
  readonly #metaWord: number;
  readonly #pageSizeBytes: number;
  readonly #usableBytes: number;
  readonly #cellBytesMax: number;
  readonly #underflowBytes: number;
  /** The pages and child indexes of the last descent, root first. */
  readonly #pathPages = new Int32Array(treeHeightMax);
  readonly #pathIndexes = new Int32Array(treeHeightMax);
  /** Latches held by the write in progress: Int32Array word index and the word before locking. */
  readonly #lockedWords: number[] = [];
  readonly #lockedVersions: number[] = [];
  readonly #pendingFree: number[] = [];
  readonly #cells = new CellList();
  readonly #scratchLeft: Uint8Array;
  readonly #scratchRight: Uint8Array;
  readonly #cellBuffer: Uint8Array;
  readonly #checkEveryWrite: boolean;
  #found = false;
  /** Set when a write failed half-way because of a bug: the tree refuses further writes. */
  #failure: unknown = null;

  private constructor(arena: PageArena, metaPageId: number, allocator: PageAllocator) {
    super(arena, metaPageId);
    this.#arena = arena;
    this.#allocator = allocator;
    this.#metaWord = metaPageId * arena.pageWords;
    this.#pageSizeBytes = arena.pageSizeBytes;
    this.#usableBytes = usableBytes(arena.pageSizeBytes);
    this.#cellBytesMax = cellBytesMax(arena.pageSizeBytes);
    this.#underflowBytes = underflowBytes(arena.pageSizeBytes);
    this.#scratchLeft = new Uint8Array(arena.pageSizeBytes);
    this.#scratchRight = new Uint8Array(arena.pageSizeBytes);
    this.#cellBuffer = new Uint8Array(arena.pageSizeBytes);
    this.#checkEveryWrite = process.env.LIGHTNING_CHECK_TREE === '1';
  }

  /** Creates an empty tree in a new arena. */
  static create(options: BTreeOptions = {}): BTree {
    if (typeof options !== 'object' || options === null) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'tree options must be an object');
    }
    const arena = PageArena.create(options);
    const allocator = new PageAllocator(arena);
    allocator.reserve(2);
    const metaPageId = allocator.allocate();
    const rootPageId = allocator.allocate();
    initNode(arena.u8, arena.pageOffset(rootPageId), arena.pageSizeBytes, pageTypeLeaf, 0);
    writeTreeMetaHeader(arena, metaPageId);
    const metaWord = metaPageId * arena.pageWords;
    Atomics.store(arena.i32, metaWord + kTreeRootPageId, rootPageId);
    Atomics.store(arena.i32, metaWord + kTreeHeight, 1);
    return new BTree(arena, metaPageId, allocator);
  }

  /** Inserts or overwrites. O(log n); throws ERR_PARTITION_FULL, leaving the tree unchanged, if full. */
  put(key: Uint8Array | string, value: Uint8Array | string): void {
    const keyBytes = keyToBytes(key);
    const valueBytes = valueToBytes(value);
    this.#assertWritable();
    const overflow = this.#needsOverflow(keyBytes, valueBytes);
    const overflowPages = overflow ? overflowPagesFor(valueBytes.length, this.#pageSizeBytes) : 0;
    // Worst case: the chain, a split at every level, and a new root.
    this.#allocator.reserve(overflowPages + this.#height() + 1);
    this.#write(() => this.#put(keyBytes, valueBytes, overflow));
  }

  /** Removes a key; true if it was there. O(log n). Never allocates, so it works in a full partition. */
  delete(key: Uint8Array | string): boolean {
    const keyBytes = keyToBytes(key);
    this.#assertWritable();
    return this.#write(() => this.#delete(keyBytes));
  }

  /**
   * Applies puts (value given) and deletes (value null) as one change: the pages every entry could
   * need are reserved first, so a full partition fails the whole batch before anything changes, and
   * every latch is held until the last entry is in, so a reader sees each page before or after the
   * batch, never between two of its entries. Later entries win over earlier ones for the same key.
   */
  applyBatch(entries: readonly { key: Uint8Array | string; value: Uint8Array | string | null }[]): void {
    if (!Array.isArray(entries)) throw new LightningError('ERR_BAD_ARGUMENT', 'a batch must be an array');
    const keys: Uint8Array[] = [];
    const values: (Uint8Array | null)[] = [];
    let puts = 0;
    let overflowPages = 0;
    for (const entry of entries) {
      if (typeof entry !== 'object' || entry === null) {
        throw new LightningError('ERR_BAD_ARGUMENT', 'a batch entry must be an object');
      }
      keys.push(keyToBytes(entry.key));
      const value = entry.value === null ? null : valueToBytes(entry.value);
      values.push(value);
      if (value !== null) {
        puts++;
        if (this.#needsOverflow(keys[keys.length - 1]!, value)) {
          overflowPages += overflowPagesFor(value.length, this.#pageSizeBytes);
        }
      }
    }
    this.#assertWritable();
    // Each put may split every level; the tree can grow by at most log2(puts) levels meanwhile.
    const levelsPerPut = this.#height() + 1 + Math.ceil(Math.log2(puts + 1));
    this.#allocator.reserve(overflowPages + puts * levelsPerPut);
    this.#write(() => {
      for (let i = 0; i < keys.length; i++) {
        const value = values[i]!;
        if (value === null) this.#delete(keys[i]!);
        else this.#put(keys[i]!, value, this.#needsOverflow(keys[i]!, value));
      }
    });
  }

  #needsOverflow(key: Uint8Array, value: Uint8Array): boolean {
    return leafCellBytes(0, key.length, value.length) > this.#cellBytesMax;
  }

  #put(key: Uint8Array, value: Uint8Array, overflow: boolean): boolean {
    const depth = this.#descend(key);
    const leaf = this.#pathPages[depth]!;
    const base = this.#arena.pageOffset(leaf);
    const index = this.#leafSearch(base, key);
    let firstOverflow = 0;
    if (overflow) {
      const chain = writeOverflowChain(this.#arena, this.#allocator, value, (page) => this.#lock(page));
      firstOverflow = chain.firstPageId;
      Atomics.add(this.#arena.i32, this.#metaWord + kTreeOverflowPageCount, chain.pageCount);
    }
    const cellLength = this.#encodeLeafCell(key, value, firstOverflow);
    this.#lock(leaf);
    const u8 = this.#arena.u8;
    if (this.#found) {
      const cell = cellAt(u8, base, index);
      const oldLength = leafCellSizeAt(u8, cell);
      this.#releaseOverflowOf(cell);
      if (cellLength <= oldLength) {
        // Overwrite in place; the tail of the old cell becomes fragmented space.
        u8.set(this.#cellBuffer.subarray(0, cellLength), cell);
        set16(u8, base + pFragmented, fragmentedBytes(u8, base) + oldLength - cellLength);
        return true;
      }
      removeCell(u8, base, index, oldLength);
    } else {
      Atomics.add(this.#arena.i32, this.#metaWord + kTreeEntryCount, 1);
    }
    this.#insertCell(depth, index, this.#cellBuffer, 0, cellLength, keyHead(key, 0, key.length));
    return true;
  }

  #delete(key: Uint8Array): boolean {
    const depth = this.#descend(key);
    const leaf = this.#pathPages[depth]!;
    const base = this.#arena.pageOffset(leaf);
    const index = this.#leafSearch(base, key);
    if (!this.#found) return false;
    this.#lock(leaf);
    const u8 = this.#arena.u8;
    const cell = cellAt(u8, base, index);
    this.#releaseOverflowOf(cell);
    removeCell(u8, base, index, leafCellSizeAt(u8, cell));
    Atomics.sub(this.#arena.i32, this.#metaWord + kTreeEntryCount, 1);
    this.#mergeUpward(depth);
    this.#collapseRoot();
    return true;
  }

  /** Runs one write, then releases its latches and frees its pages, even if it failed. */
  #write<T>(change: () => T): T {
    try {
      return change();
    } catch (error) {
      this.#failure = error;
      throw error;
    } finally {
      this.#finishWrite();
    }
  }

  #finishWrite(): void {
    const i32 = this.#arena.i32;
    const words = this.#lockedWords;
    const versions = this.#lockedVersions;
    for (let i = words.length - 1; i >= 0; i--) Atomics.store(i32, words[i]!, latchUnlocked(versions[i]!));
    words.length = 0;
    versions.length = 0;
    for (const page of this.#pendingFree) this.#allocator.free(page);
    this.#pendingFree.length = 0;
    if (this.#checkEveryWrite && this.#failure === null) {
      try {
        checkTree(this);
      } catch (error) {
        this.#failure = error;
        throw error;
      }
    }
  }

  #assertWritable(): void {
    if (this.#failure !== null) {
      throw new LightningError('ERR_INTERNAL', 'an earlier write failed half-way; the tree refuses writes', {
        cause: this.#failure,
      });
    }
  }

  #height(): number {
    return Atomics.load(this.#arena.i32, this.#metaWord + kTreeHeight);
  }

  /** Takes a page's latch for the rest of this write (no-op if this write holds it already). */
  #lock(pageId: number): void {
    const arena = this.#arena;
    const word = pageId * arena.pageWords;
    const version = Atomics.load(arena.i32, word);
    if ((version & latchLockedBit) !== 0) return;
    Atomics.store(arena.i32, word, version | latchLockedBit);
    this.#lockedWords.push(word);
    this.#lockedVersions.push(version);
  }

  /** Walks from the root to the leaf for `key`, recording the path. Returns the leaf's depth. */
  #descend(key: Uint8Array): number {
    const arena = this.#arena;
    const u8 = arena.u8;
    const height = this.#height();
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
          order = compareBytes(u8, cell + interiorKeyOffset, get16(u8, cell), key, 0, key.length);
        }
        if (order < 0) low = mid + 1;
        else high = mid;
      }
      this.#pathPages[depth] = node;
      this.#pathIndexes[depth] = low;
      node = this.#childAt(base, low);
    }
    assert(arena.u8[arena.pageOffset(node) + pType] === pageTypeLeaf, 'descent ends at a leaf');
    this.#pathPages[height - 1] = node;
    return height - 1;
  }

  /** First index whose key is >= `key`; sets #found if it is equal. */
  #leafSearch(base: number, key: Uint8Array): number {
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
        order = compareBytes(
          u8,
          leafKeyAt(u8, cell),
          get16(u8, cell + leafKeyLengthOffset),
          key,
          0,
          key.length,
        );
      }
      if (order < 0) {
        low = mid + 1;
      } else {
        high = mid;
        equal = order === 0;
      }
    }
    this.#found = equal && low < count;
    return low;
  }

  #childAt(base: number, index: number): number {
    const u8 = this.#arena.u8;
    return index < nodeCount(u8, base) ? get32(u8, cellAt(u8, base, index) + 2) : get32(u8, base + pLink);
  }

  /** Encodes a leaf cell into #cellBuffer; returns its length. */
  #encodeLeafCell(key: Uint8Array, value: Uint8Array, firstOverflow: number): number {
    const out = this.#cellBuffer;
    const flags = firstOverflow !== 0 ? cellFlagOverflow : 0;
    out[0] = flags;
    set16(out, 1, key.length);
    set32(out, 3, value.length);
    out.set(key, 7);
    if (firstOverflow !== 0) set32(out, 7 + key.length, firstOverflow);
    else out.set(value, 7 + key.length);
    return leafCellBytes(flags, key.length, value.length);
  }

  /** Queues the overflow chain of a leaf cell (if any) to be freed when this write ends. */
  #releaseOverflowOf(cell: number): void {
    const arena = this.#arena;
    const u8 = arena.u8;
    if ((u8[cell]! & cellFlagOverflow) === 0) return;
    const pages = overflowChainPages(
      arena,
      get32(u8, leafKeyAt(u8, cell) + get16(u8, cell + leafKeyLengthOffset)),
    );
    for (const page of pages) this.#pendingFree.push(page);
    Atomics.sub(arena.i32, this.#metaWord + kTreeOverflowPageCount, pages.length);
  }

  /** Inserts a cell at `index` of the node at `depth` of the path, splitting it if it is full. */
  #insertCell(
    depth: number,
    index: number,
    source: Uint8Array,
    offset: number,
    length: number,
    head: number,
  ): void {
    const page = this.#pathPages[depth]!;
    const base = this.#arena.pageOffset(page);
    this.#lock(page);
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
    this.#lock(leftPage);
    copyPageBody(this.#scratchLeft, arena.u8, arena.pageOffset(leftPage), this.#pageSizeBytes);
    copyPageBody(this.#scratchRight, arena.u8, base, this.#pageSizeBytes);
    const separatorCell = new Uint8Array(interiorKeyOffset + separator.length);
    set16(separatorCell, 0, separator.length);
    set32(separatorCell, 2, leftPage);
    separatorCell.set(separator, interiorKeyOffset);
    const separatorHead = keyHead(separator, 0, separator.length);
    if (depth === 0) this.#growRoot(separatorCell, separatorHead, page);
    else
      this.#insertCell(
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
    this.#lock(root);
    const base = arena.pageOffset(root);
    initNode(arena.u8, base, this.#pageSizeBytes, pageTypeInterior, oldRoot);
    insertCell(arena.u8, base, 0, separatorCell, 0, separatorCell.length, separatorHead);
    this.#lock(this.view.metaPageId);
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
  #mergeUpward(leafDepth: number): void {
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
        for (let d = emptyTop; d <= leafDepth; d++) this.#pendingFree.push(this.#pathPages[d]!);
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
    this.#lock(parent);
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

  /** Merges the node at `base` (child `index` of `parent`) with a sibling if they fit; true if merged. */
  #mergeWithSibling(parent: number, parentBase: number, index: number, base: number): boolean {
    const arena = this.#arena;
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
    this.#lock(parent);
    this.#lock(left);
    this.#lock(right);
    copyPageBody(this.#scratchLeft, u8, rightBase, this.#pageSizeBytes);
    removeCell(u8, parentBase, separatorIndex, separatorLength);
    this.#pendingFree.push(left);
    return true;
  }

  /** Replaces an interior root that has no separator left by its only child. */
  #collapseRoot(): void {
    const arena = this.#arena;
    for (;;) {
      const height = this.#height();
      if (height === 1) return;
      const root = Atomics.load(arena.i32, this.#metaWord + kTreeRootPageId);
      const base = arena.pageOffset(root);
      if (nodeCount(arena.u8, base) > 0) return;
      this.#lock(this.view.metaPageId);
      Atomics.store(arena.i32, this.#metaWord + kTreeRootPageId, get32(arena.u8, base + pLink));
      Atomics.store(arena.i32, this.#metaWord + kTreeHeight, height - 1);
      this.#pendingFree.push(root);
    }
  }
}
