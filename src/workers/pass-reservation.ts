import { type BTree, LightningError } from '../shared-memory/index.js';
import { versionValueHeaderBytes } from '../shared-memory/mvcc/version-key.js';
import type { PartitionFullDetail } from '../shared-memory/ring/command-ring.js';
import type { BatchEntry } from '../shared-memory/ring/operation-codec.js';
import type { WriteTally } from '../shared-memory/tree/write-pages.js';
import { removalFrames } from './version-cleanup.js';

/** ERR_PARTITION_FULL from a reservation, with its numbers for the caller's message. */
export class PartitionFullError extends LightningError {
  readonly detail: PartitionFullDetail;

  constructor(message: string, detail: PartitionFullDetail) {
    super('ERR_PARTITION_FULL', message);
    this.detail = detail;
  }
}

/**
 * ERR_PARTITION_FULL from a tree over a buffer pool whose frames cannot take a pass's changes on top
 * of its dirty pages. With dirty pages (`needsPageSet`), room comes back once a page set writes them:
 * the write can wait for the next pass. Without, it needs more frames than the pool has.
 */
export class PoolRoomError extends PartitionFullError {
  readonly needsPageSet: boolean;

  constructor(message: string, detail: PartitionFullDetail, needsPageSet: boolean) {
    super(message, { ...detail, pool: true });
    this.needsPageSet = needsPageSet;
  }
}

/**
 * Every write staged in a pass so far for one partition, in its tree and in its version store, and
 * the bound of what they may allocate when the pass applies them.
 */
export interface PassReservation {
  treeWrites: WriteTally;
  versionWrites: WriteTally;
  treePages: number;
  versionPages: number;
}

/** Nothing staged yet. */
export const noReservation = null;

/** A stored version's key adds the key's length and an inverted timestamp (version-key.ts). */
const versionKeyExtraBytes = 10;

/**
 * Checks, when an operation is staged, that its partition can hold it once it is applied after the
 * log sync, together with everything staged before it in the same pass; throws ERR_PARTITION_FULL
 * otherwise, before the operation is logged. So nothing that reached the log can fail to apply for
 * want of pages. Returns the pass's reservation with this operation added.
 *
 * The bound is `BTree.pagesForWrites` (write-pages.ts) of every write staged in the pass so far, taken
 * as one group: the trees do not change while a pass stages (it applies after the log sync), and the
 * bound holds for any order of a group's writes. Summing a bound per operation instead would count a
 * possible split per level and a possible new level for every put, which grows with the square of
 * the puts a pass stages in a partition (a thousand small puts in one turn came to a gigabyte).
 * It checks only: the buffers grow when the writes apply.
 *
 * The version store is counted, as if every replaced version had to be kept, when `mayKeepVersions`:
 * whether a write keeps the version it replaces is decided only when it applies. A replaced version
 * is counted with the larger of the head's size and the write's own value's (`tallyEntry`). When no snapshot is open, nothing is locked
 * and the version store is empty, it is not counted: a snapshot that opens before the pass applies
 * finds an empty version store, which holds as many pages as the tree. Nor are deletes then counted
 * as cells in the tree (only as merges). The one gap: a snapshot that opens between staging and
 * applying makes such a delete leave a tombstone, which a partition filled to its last pages may not
 * hold; the owner then stops (ERR_WORKER_CRASHED for its writers), and reopening replays the delete.
 *
 * `held`: pages the partition keeps for the decisions of its undecided prepared transactions
 * (`decisionPages`), which no other write may take; `newHold`: the part of it that the prepare being
 * staged adds, whose frames (over a buffer pool) are not held yet.
 */
export function reserveForPass(
  tree: BTree,
  versions: BTree,
  entries: Iterable<BatchEntry>,
  staged: Readonly<PassReservation> | null,
  mayKeepVersions: boolean,
  held: Readonly<DecisionPages> = noDecisionPages,
  newHold: Readonly<DecisionPages> = noDecisionPages,
): PassReservation {
  const treeWrites = tree.newWriteTally();
  const versionWrites = versions.newWriteTally();
  if (staged !== null) {
    treeWrites.addTally(staged.treeWrites);
    versionWrites.addTally(staged.versionWrites);
  }
  // A prepared transaction's decision may reshape the tree in the middle of a pass, under the frames
  // it holds: the leaves puts were placed in would no longer be theirs.
  if (held.tree > 0 || newHold.tree > 0) treeWrites.forgetPlacement();
  const mark = treeWrites.placementMark();
  try {
    return reserveTallied(tree, versions, entries, treeWrites, versionWrites, mayKeepVersions, held, newHold);
  } catch (error) {
    // Refused: the pass's placement (shared with the operations staged before) forgets this one.
    treeWrites.rollBackPlacement(mark);
    throw error;
  }
}

function reserveTallied(
  tree: BTree,
  versions: BTree,
  entries: Iterable<BatchEntry>,
  treeWrites: WriteTally,
  versionWrites: WriteTally,
  mayKeepVersions: boolean,
  held: Readonly<DecisionPages>,
  newHold: Readonly<DecisionPages>,
): PassReservation {
  let count = 0;
  let keptBytesLargest = -1;
  // The largest value put, whose later delete or overwrite must fit a clean pool (requireRewritable).
  let keyBytesOfLargest = 0;
  let valueBytesLargest = -1;
  for (const entry of entries) {
    keptBytesLargest = Math.max(
      keptBytesLargest,
      tallyEntry(tree, treeWrites, versionWrites, entry, mayKeepVersions),
    );
    const valueBytes = entry.value?.length ?? -1;
    if (
      valueBytes > valueBytesLargest ||
      (valueBytes === valueBytesLargest && entry.key.length > keyBytesOfLargest)
    ) {
      valueBytesLargest = valueBytes;
      keyBytesOfLargest = entry.key.length;
    }
    count++;
  }
  const treePages = tree.pagesForWrites(treeWrites).pages;
  requirePages(tree, treePages + held.tree, 'tree', count);
  // Over a pool, holds already taken are out of framesAvailable; a prepare's own is not yet.
  if (tree.pooled) {
    requireFrames(tree, tree.framesForWrites(treeWrites) + decisionFrames(newHold), count);
    if (valueBytesLargest >= 0) requireRewritable(tree, keyBytesOfLargest, valueBytesLargest, count);
  }
  let versionPages = 0;
  if (versionWrites.puts > 0) {
    versionPages = versions.pagesForWrites(versionWrites).pages;
    requirePages(versions, versionPages + held.versions, 'version store', count);
    // A version store over a buffer pool holds its changed pages in frames too: applying the pass
    // would otherwise find them short and fail after the log has the pass.
    if (versions.pooled) requireFrames(versions, versions.framesForWrites(versionWrites), count);
    requireRemovable(versions, keptBytesLargest, count);
  }
  return { treeWrites, versionWrites, treePages, versionPages };
}

/**
 * Over a buffer pool, a put is refused for good (ERR_PARTITION_FULL) unless its value, once stored, can
 * later be deleted, and overwritten by a value of its size, each as a write of its own on a clean pool.
 * Otherwise a value that fit could stay for good: freeing its overflow chain changes every page of it
 * (PageAllocator.free writes the free list's link and the page type into each), so a delete counts
 * the chain on top of a merge per level, and a same-size overwrite counts the chain twice (the new one
 * is written before the old is freed), both more than the put's own count (its chain and its descent).
 *
 * The writes checked are those `tallyEntry` counts for them, unplaced (the leaf may have no room by
 * then): a delete, a delete that leaves a tombstone (a snapshot or transaction open), and a put of the
 * same size over the value, in the tree as this put leaves it (its pages added) with a level of growth
 * allowed for. Values that fit in their leaf are not checked: such a write changes a few pages per
 * level, which a pool's minimum of 64 frames covers. A tree that grows by more than a level, or comes
 * to hold a larger cell or a longer key, can still count more later; the value's key then needs a
 * larger pool, as it would for a put of its size.
 */
function requireRewritable(tree: BTree, keyBytes: number, valueBytes: number, entries: number): void {
  const put = tree.newWriteTally();
  put.addPut(keyBytes, valueBytes);
  if (put.overflowPages === 0) return;
  const clean = tree.framesAvailableWhenClean();
  const after = { pages: tree.pagesForWrites(put).pages, levels: 1 };
  const deletion = tree.newWriteTally();
  deletion.addDelete();
  deletion.addFreed(keyBytes, valueBytes);
  const tombstone = tree.newWriteTally();
  tombstone.addDelete();
  tombstone.addPut(keyBytes, 0);
  tombstone.addFreed(keyBytes, valueBytes);
  const overwrite = tree.newWriteTally();
  overwrite.addPut(keyBytes, valueBytes);
  overwrite.addFreed(keyBytes, valueBytes);
  const needed = Math.max(
    tree.framesForWrites(deletion, after),
    tree.framesForWrites(tombstone, after),
    tree.framesForWrites(overwrite, after),
  );
  if (needed <= clean) return;
  const stats = tree.stats();
  throw new PoolRoomError(
    `buffer pool: this write of ${entries} entries puts a value of ${valueBytes} bytes, and deleting or ` +
      `overwriting it later may change ${needed} pages, more than the pool's frames can take (${clean}); ` +
      'it needs a larger pool (memoryMaxBytes) or a smaller value',
    {
      neededPages: needed,
      availablePages: clean,
      pagesMax: stats.pagesMax,
      pageSizeBytes: stats.pageSizeBytes,
      entries,
      rewrite: true,
    },
    false,
  );
}

/**
 * Cleanup removes a kept version only when the removal's worst case fits the frames of a clean pool
 * (version-cleanup.ts `removalFrames`: two pages per level, more than a put's one), and everything
 * queued behind it waits. So a version store over a buffer pool refuses, for good, to keep a version
 * it could store but not remove, with a level of growth allowed for; the write needs a larger pool.
 * A version store that grows more than a level since it kept such a version can still stall its
 * cleanup (collectGarbage false on a clean pool): the pool's minimum size must leave room for that.
 */
function requireRemovable(versions: BTree, keptBytes: number, entries: number): void {
  if (keptBytes < 0) return;
  const clean = versions.framesAvailableWhenClean();
  // An arena holds every page: nothing to check.
  if (clean === Number.MAX_SAFE_INTEGER) return;
  const stats = versions.stats();
  const needed = removalFrames({ ...stats, height: stats.height + 1 }, keptBytes + versionValueHeaderBytes);
  if (needed <= clean) return;
  throw new PoolRoomError(
    `buffer pool: this write of ${entries} entries keeps a version of ${keptBytes} bytes while a snapshot or ` +
      `transaction is open, and removing it later may change ${needed} pages, more than the version store's ` +
      `pool can take (${clean}); it needs a larger pool (memoryMaxBytes) or a smaller value`,
    {
      neededPages: needed,
      availablePages: clean,
      pagesMax: stats.pagesMax,
      pageSizeBytes: stats.pageSizeBytes,
      entries,
    },
    false,
  );
}

/**
 * Counts one write: a put, or a delete (a merge per level; and a tombstone when versions may be
 * kept), and the versions it may make the version store keep; returns the bytes of the version
 * counted, or -1 if none.
 *
 * The version a write keeps is the value its key holds when the write applies: the head in `tree`
 * now (read here, owner-only: the trees do not change while a pass stages), or, when an earlier write
 * of the same pass to the same key applied in an earlier commit window, that write's value. Each
 * write is counted with the larger of the head's size and its own value's: for a key written k times
 * in a pass with head H and values V1..Vk, the versions kept come to at most H + V1 + ... + V(k-1),
 * which max(H, V1) + ... + max(H, Vk) covers. Counting the replacing value's size alone let a delete
 * or a small overwrite of a large value under a snapshot pass staging and then fail to apply, the
 * version store out of pages, after the log had it.
 *
 * `staging`: called by staging, before the write is logged. Then the put is also placed in its leaf
 * (WriteTally.placePut), for staging's frames bound, and over a pool the pages applying the write
 * will read beyond its descent (the head's overflow chain, a delete's merge siblings) are read and so
 * verified (BTree.readCellForWrite): a damaged one throws ERR_CORRUPTION, and the write is refused
 * before the log has it. The apply side, which counts only pages, does neither.
 */
export function tallyEntry(
  tree: BTree,
  treeWrites: WriteTally,
  versionWrites: WriteTally,
  entry: BatchEntry,
  mayKeepVersions: boolean,
  staging = true,
): number {
  const valueBytes = entry.value?.length ?? 0;
  if (entry.value === null) treeWrites.addDelete();
  const cellBytes =
    entry.value !== null || mayKeepVersions ? treeWrites.addPut(entry.key.length, valueBytes) : -1;
  // Over a pool, freeing the head's overflow pages changes them (the free list's links).
  if (mayKeepVersions || tree.pooled) {
    const head = staging
      ? tree.readCellForWrite(entry.key, entry.value === null)
      : tree.readCellPrefix(entry.key, 0);
    if (head !== undefined) treeWrites.addFreed(entry.key.length, tree.cellValueBytes);
    // The same descent finds the leaf the put goes into, and whether it has room (WriteTally.placePut).
    if (staging && tree.pooled && cellBytes >= 0)
      treeWrites.placePut(tree.cellPath, tree.cellPathLength, tree.cellLeafRoomBytes, cellBytes);
  }
  if (mayKeepVersions) {
    const keptBytes = Math.max(tree.cellValueBytes, valueBytes);
    versionWrites.addPut(entry.key.length + versionKeyExtraBytes, keptBytes + versionValueHeaderBytes);
    return keptBytes;
  }
  return -1;
}

/**
 * A tree over a buffer pool keeps the pages a pass changes in frames until a page set writes them:
 * the pass's changes must fit in the frames its dirty pages leave (BTree.framesAvailable). Checked
 * when an operation is staged, like the pages, so that applying what was logged cannot fail.
 */
function requireFrames(tree: BTree, pages: number, entries: number): void {
  const available = tree.framesAvailable();
  if (pages <= available) return;
  const stats = tree.stats();
  // Room comes back when a page set writes the dirty pages, if that is room enough.
  const clean = tree.framesAvailableWhenClean();
  const needsPageSet = pages <= clean;
  throw new PoolRoomError(
    `buffer pool: this write of ${entries} entries, with those before it in the owner's batch, may change up to ` +
      `${pages} pages, and the pool's frames can take ` +
      (needsPageSet
        ? `${available} more changed pages until its dirty pages are written back`
        : `${clean} changed pages at most; it needs a larger pool (memoryMaxBytes) or a smaller write`),
    {
      neededPages: pages,
      // What the caller is told if the write is refused for good: what a clean pool takes.
      availablePages: needsPageSet ? available : clean,
      pagesMax: stats.pagesMax,
      pageSizeBytes: stats.pageSizeBytes,
      entries,
    },
    needsPageSet,
  );
}

function requirePages(tree: BTree, pages: number, what: string, entries: number): void {
  const available = tree.pagesAvailable();
  if (pages <= available) return;
  const stats = tree.stats();
  const detail = {
    neededPages: pages,
    availablePages: available,
    pagesMax: stats.pagesMax,
    pageSizeBytes: stats.pageSizeBytes,
    entries,
  };
  throw new PartitionFullError(
    `partition is full: this write of ${entries} entries, with those before it in the owner's batch, needs up to ` +
      `${pages} pages (${pages * stats.pageSizeBytes} bytes) in its ${what}, and ${available} pages ` +
      `(${available * stats.pageSizeBytes} bytes) of the partition's ${stats.bytesMax} bytes ` +
      `(partitionBytesMax) are left; raise partitionBytesMax or delete data`,
    detail,
  );
}

/** Pages held in a partition's tree and version store for decisions not applied yet. */
export interface DecisionPages {
  tree: number;
  versions: number;
}

export const noDecisionPages: Readonly<DecisionPages> = { tree: 0, versions: 0 };

/**
 * The pages applying the decision of a prepared transaction with `writes` may allocate, counted when
 * it is staged (the trees do not change while a pass stages). The decision is applied passes later,
 * after other writes, and must not fail then: the log has it. So the partition holds these pages
 * until the decision applies (`reserveForPass`'s `held`), and the decision reserves them.
 *
 * Only what a decision allocates is counted; the intents' own cells were counted when they were
 * installed. A commit rewrites each intent's cell in place (the same size, or smaller without its
 * timestamp) and each kept version's with its new header (the same size), but writes a new overflow
 * chain for a value too large for its leaf before it frees the old one. An abort puts each replaced
 * head back: its overflow chain, and a split of the leaf and each level above (a level of growth
 * allowed for) when the head's cell is larger than the intent's.
 */
export function decisionPages(tree: BTree, versions: BTree, writes: readonly BatchEntry[]): DecisionPages {
  if (writes.length === 0) return noDecisionPages;
  const splitPages = tree.stats().height + 2;
  let treePages = 0;
  let versionPages = 0;
  for (const entry of writes) {
    const hadHead = tree.readCellPrefix(entry.key, 0) !== undefined;
    const intent = leafCell(tree, entry.key.length, entry.value?.length ?? 0);
    let abort = 0;
    if (hadHead) {
      const head = leafCell(tree, entry.key.length, tree.cellValueBytes);
      abort = head.overflowPages + (head.cellBytes > intent.cellBytes ? splitPages : 0);
      const version = leafCell(
        versions,
        entry.key.length + versionKeyExtraBytes,
        tree.cellValueBytes + versionValueHeaderBytes,
      );
      versionPages += version.overflowPages;
    }
    treePages += Math.max(intent.overflowPages, abort);
  }
  return { tree: treePages, versions: versionPages };
}

/**
 * The frames a decision holding `hold` may change over a buffer pool: the pages it allocates, as many
 * freed (an overflow chain replaced), a parent per split and the meta page. A decision that allocates
 * nothing rewrites cells in leaves its intents made dirty already (no page set is written while they
 * are in the tree): the pool's margin covers it.
 */
export function decisionFrames(hold: Readonly<DecisionPages>): number {
  return hold.tree === 0 ? 0 : 2 * hold.tree + 1;
}

/** The leaf cell bytes and overflow pages of a put of these sizes into `tree` (WriteTally.addPut). */
function leafCell(
  tree: BTree,
  keyBytes: number,
  valueBytes: number,
): { cellBytes: number; overflowPages: number } {
  const tally = tree.newWriteTally();
  tally.addPut(keyBytes, valueBytes);
  return { cellBytes: tally.cellBytes, overflowPages: tally.overflowPages };
}

/** `held` with `more` added, or taken away (`sign` -1). */
export function addDecisionPages(held: DecisionPages, more: Readonly<DecisionPages>, sign: 1 | -1): void {
  held.tree += sign * more.tree;
  held.versions += sign * more.versions;
}
