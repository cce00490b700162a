import { assert } from '../assert.js';
import { cellBytesMax, interiorCellHeaderBytes, slotBytes, usableBytes } from '../limits.js';
import { cellFlagOverflow, cellFlagTimestamp, leafCellBytes } from './node-format.js';
import { overflowPagesFor } from './overflow-chain.js';
import { PlacedPuts } from './placed-puts.js';

/**
 * What a group of writes to one tree adds up to, for `pagesForWrites`: built entry by entry, so a
 * batch of a million entries is summed without a second copy of it.
 */
export class WriteTally {
  /** Puts (and tombstones, which are puts of an empty value). */
  puts = 0;
  /** Deletes that remove cells: each may merge a node per level. */
  deletes = 0;
  /** Bytes of the puts' leaf cells and their slots, every cell counted with an MVCC timestamp. */
  cellBytes = 0;
  /** The largest of those cells, slot included. */
  cellBytesLargest = 0;
  /** The longest key put. */
  keyBytesLongest = 0;
  /** Overflow pages of the values too large to stay in their leaf. */
  overflowPages = 0;
  /**
   * Overflow pages of the values the writes replace or delete (counted only where it matters: over a
   * buffer pool, freeing a page writes the free list's link into it, so it changes a page).
   */
  overflowPagesFreed = 0;
  /** Puts placed in the leaves their keys go into (`placePut`). */
  placedPuts = 0;
  /** The leaves those puts fill, shared with the tallies this one was added to (PlacedPuts). */
  #placement: PlacedPuts | null = null;
  /** Set once a put could not be placed: then only the worst case bounds the group. */
  #unplaced = false;
  readonly #pageSizeBytes: number;
  readonly #leafCellBytesMax: number;

  constructor(pageSizeBytes: number) {
    this.#pageSizeBytes = pageSizeBytes;
    this.#leafCellBytesMax = cellBytesMax(pageSizeBytes);
  }

  /**
   * Counts a put of a `keyBytes`-byte key and a `valueBytes`-byte value; returns its leaf cell's bytes,
   * slot included. O(1).
   */
  addPut(keyBytes: number, valueBytes: number): number {
    let cell = leafCellBytes(cellFlagTimestamp, keyBytes, valueBytes);
    if (cell > this.#leafCellBytesMax) {
      cell = leafCellBytes(cellFlagTimestamp | cellFlagOverflow, keyBytes, valueBytes);
      this.overflowPages += overflowPagesFor(valueBytes, this.#pageSizeBytes);
    }
    this.puts++;
    this.cellBytes += cell + slotBytes;
    if (cell + slotBytes > this.cellBytesLargest) this.cellBytesLargest = cell + slotBytes;
    if (keyBytes > this.keyBytesLongest) this.keyBytesLongest = keyBytes;
    return cell + slotBytes;
  }

  /**
   * Places the put just counted, of a `cellBytes`-byte cell, into the leaf its key goes into: the last
   * of `path` (`pathLength` pages, root first), which has `leafRoomBytes` free and fragmented bytes.
   * Only for a tree that no other change reshapes before the group is applied.
   */
  placePut(path: ArrayLike<number>, pathLength: number, leafRoomBytes: number, cellBytes: number): void {
    if (this.#unplaced) return;
    this.#placement ??= new PlacedPuts();
    if (this.#placement.place(path, pathLength, leafRoomBytes, cellBytes)) this.placedPuts++;
    else this.#unplaced = true;
  }

  /** From now on, only the worst case bounds this group (a change that may reshape the tree joins it). */
  forgetPlacement(): void {
    this.#unplaced = true;
  }

  /** The pages on the descents of the group's puts, when every put of it is placed and none deletes. */
  placedPages(): number | null {
    if (this.#unplaced || this.deletes > 0 || this.placedPuts !== this.puts) return null;
    return this.#placement?.pageCount ?? 0;
  }

  /** A point `rollBackPlacement` goes back to: the shared placement as it is now. */
  placementMark(): number {
    return this.#placement?.mark() ?? 0;
  }

  /** Takes the puts placed since `mark` out of the shared placement (their group was refused). */
  rollBackPlacement(mark: number): void {
    this.#placement?.rollBack(mark);
  }

  addDelete(): void {
    this.deletes++;
  }

  /** Adds another tally's writes to this one (the earlier operations of a pass, say). */
  addTally(other: WriteTally): void {
    this.puts += other.puts;
    this.deletes += other.deletes;
    this.cellBytes += other.cellBytes;
    this.cellBytesLargest = Math.max(this.cellBytesLargest, other.cellBytesLargest);
    this.keyBytesLongest = Math.max(this.keyBytesLongest, other.keyBytesLongest);
    this.overflowPages += other.overflowPages;
    this.overflowPagesFreed += other.overflowPagesFreed;
    this.placedPuts += other.placedPuts;
    this.#unplaced ||= other.#unplaced;
    if (other.#placement !== null) {
      // One placement per group: this tally goes on where `other` left off.
      if (this.#placement === null) this.#placement = other.#placement;
      else if (this.#placement !== other.#placement) this.#unplaced = true;
    }
  }

  /** Counts the overflow pages a write frees: those of the `valueBytes`-byte value it replaces. */
  addFreed(keyBytes: number, valueBytes: number): void {
    if (leafCellBytes(cellFlagTimestamp, keyBytes, valueBytes) > this.#leafCellBytesMax)
      this.overflowPagesFreed += overflowPagesFor(valueBytes, this.#pageSizeBytes);
  }
}

/** The shape of a tree before a group of writes, as `pagesForWrites` needs it. */
export interface TreeShape {
  pageSizeBytes: number;
  /** Levels of the tree, 1 for a lone leaf. */
  height: number;
  /** Pages the tree holds (an upper bound on its nodes at any level). */
  pagesInUse: number;
  /** The largest leaf cell (slot included) the tree ever held, and its longest key. */
  cellBytesLargest: number;
  keyBytesLongest: number;
}

/**
 * An upper bound on the pages a group of writes can allocate in a tree of shape `tree`, with no page
 * it frees reused meanwhile (a group frees its pages only when it ends). Sound for any order of the
 * writes, and near what small entries really take (at most about twice the pages they fill, whatever
 * their order), where a split per level per entry would count the entries times the tree's height.
 *
 * The argument, per level. Every page is allocated by a split or a new root. Count each node's life
 * from its start to its split (an epoch) by how full it may start:
 * - a node that existed before the group, or came out of a merge (a delete's), may start full: at
 *   most `min(inserts, nodes before + deletes)` such epochs end in a split (`loaded`);
 * - a half of a split in the middle (split by bytes: the left half holds at most half of the cells'
 *   bytes T ≤ usable + the new cell b, the right half at most T/2 plus one cell c) starts with at most
 *   (usable + b) / 2 + c bytes, so it splits again only after more than gM = (usable − b) / 2 − c
 *   bytes were inserted into it;
 * - the lone new cell of a split at the tree's edge (tree-reshape.ts keeps the other side full when
 *   keys arrive in order), and a new root, start with one cell: more than gE = usable − b bytes;
 * - the full side of an edge split may split at its next insert: there are as many as edge splits.
 *   Every edge split makes one lone-cell epoch, and all of those but the current one per edge (and
 *   those merged away) ended in a split, having taken gE bytes; so with the bytes B inserted,
 *   middle halves + 2 × lone cells ≤ B × max(1 / gM, 2 / gE), plus 2 and the deletes.
 * Each split inserts one separator into the level above; levels above the tree's height hold only
 * nodes this group creates, and each new level adds one root. Where gM is not positive (keys so long
 * that a few cells fill half a node), a level splits at most once per insert and new levels halve.
 *
 * Returns the pages, and how many levels the tree may grow by (the next group's `height` adds them).
 * O(height).
 */
export function pagesForWrites(tree: TreeShape, writes: WriteTally): { pages: number; levels: number } {
  assert(tree.height >= 1 && tree.pagesInUse >= 0, 'a tree shape has a height and pages');
  const usable = usableBytes(tree.pageSizeBytes);
  if (writes.puts === 1 && writes.deletes === 0) {
    // The common case, a lone put, in O(1): where a split leaves room for a cell on both sides (the
    // `middleGrowthBytes > 0` of every level below), one insert splits at most one node per level and
    // adds at most a root, which is what the loop below counts for it (or less, in an empty tree).
    const separator =
      interiorCellHeaderBytes + Math.max(tree.keyBytesLongest, writes.keyBytesLongest) + slotBytes;
    const leafCell = Math.max(writes.cellBytesLargest, tree.cellBytesLargest);
    const roomy =
      (usable - writes.cellBytesLargest) / 2 - leafCell > 0 && (usable - separator) / 2 - separator > 0;
    if (roomy) return { pages: writes.overflowPages + tree.height + 1, levels: 1 };
  }
  let pages = writes.overflowPages;
  let inserts = writes.puts;
  let insertedBytes = writes.cellBytes;
  let newCellBytes = writes.cellBytesLargest;
  let cellBytes = Math.max(writes.cellBytesLargest, tree.cellBytesLargest);
  const separatorBytes =
    interiorCellHeaderBytes + Math.max(tree.keyBytesLongest, writes.keyBytesLongest) + slotBytes;
  let levels = 0;
  for (let level = 0; inserts > 0; level++) {
    const existing = level < tree.height;
    const middleGrowthBytes = (usable - newCellBytes) / 2 - cellBytes;
    const edgeGrowthBytes = usable - newCellBytes;
    let splits = inserts;
    if (middleGrowthBytes > 0) {
      const deletes = writes.deletes;
      const loaded = existing ? Math.min(inserts, tree.pagesInUse + deletes) : 0;
      // Epochs that start light (halves, lone cells, new roots) and end in a split.
      const grown = Math.floor(insertedBytes / middleGrowthBytes);
      // Edge splits: each leaves a lone cell, and all but the current one per edge (or one merged
      // away) grew by a whole node since; each also ends an epoch at an edge, full halves included.
      const edgeSplits = Math.min(
        Math.floor(insertedBytes / edgeGrowthBytes) + 2 + deletes,
        loaded + grown + Math.min(1 + deletes, loaded + grown),
      );
      // Lone cells count twice (their own split, and the full half their edge split left), so the
      // bytes are best spent on whichever costs less per split.
      const weighted = Math.floor(insertedBytes * Math.max(1 / middleGrowthBytes, 2 / edgeGrowthBytes));
      splits = Math.min(inserts, loaded + Math.min(weighted + 2 + deletes, grown + edgeSplits));
    }
    if (!existing && splits >= inserts) {
      // Separators so long that the count above does not shrink: every node of a level this group
      // creates has two children at least, so the new levels halve the nodes below them.
      const nodesBelow = inserts + 1;
      const halvings = Math.ceil(Math.log2(nodesBelow));
      return { pages: pages + nodesBelow + halvings, levels: levels + halvings };
    }
    if (!existing) {
      // The level exists because the root below split: its root is a new page.
      levels++;
      pages++;
    }
    pages += splits;
    inserts = splits;
    insertedBytes = inserts * separatorBytes;
    newCellBytes = separatorBytes;
    cellBytes = separatorBytes;
  }
  return { pages, levels };
}

/**
 * An upper bound on the pages a group of writes can change, allocated ones included: what a buffer
 * pool must hold in frames until a page set writes them back. On top of `pagesForWrites`' allocations
 * (`allocated`, `levels` from it): each put changes its leaf; each split (at most one per allocated
 * page that is not an overflow page) changes the parent it inserts into; a delete changes its leaf and,
 * merging up to the root, a sibling and a parent per level; a freed overflow page gets the free list's
 * link; and the meta page. Never more than the allocated pages plus every page the tree holds.
 */
export function framesForWrites(
  tree: TreeShape,
  writes: WriteTally,
  allocated: { pages: number; levels: number },
): number {
  const splitParents = Math.max(0, allocated.pages - writes.overflowPages);
  const perDelete = 2 * (tree.height + allocated.levels) + 1;
  const changed =
    allocated.pages + splitParents + writes.puts + writes.deletes * perDelete + writes.overflowPagesFreed + 1;
  const worst = Math.min(changed, allocated.pages + tree.pagesInUse + 1);
  // Every put placed in a leaf with room for it (PlacedPuts): no split, so the pages changed or pinned
  // are those of the descents, the overflow pages written and freed, and the meta page.
  const placed = writes.placedPages();
  if (placed === null) return worst;
  return Math.min(worst, placed + writes.overflowPages + writes.overflowPagesFreed + 1);
}
