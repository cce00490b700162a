import { type BTree, LightningError } from '../shared-memory/index.js';
import type { PartitionFullDetail } from '../shared-memory/ring/command-ring.js';
import type { BatchEntry } from '../shared-memory/ring/operation-codec.js';
import type { WriteTally } from '../shared-memory/tree/write-pages.js';

/** ERR_PARTITION_FULL from a reservation, with its numbers for the caller's message. */
export class PartitionFullError extends LightningError {
  readonly detail: PartitionFullDetail;

  constructor(message: string, detail: PartitionFullDetail) {
    super('ERR_PARTITION_FULL', message);
    this.detail = detail;
  }
}

/** What staged operations may allocate when they are applied, in their partition's two trees. */
export interface PassReservation {
  treePages: number;
  /** Levels the tree may grow by: the next operation's bound starts from the taller tree. */
  treeLevels: number;
  versionPages: number;
  versionLevels: number;
}

export const noReservation: Readonly<PassReservation> = {
  treePages: 0,
  treeLevels: 0,
  versionPages: 0,
  versionLevels: 0,
};

/** A stored version's key adds the key's length and an inverted timestamp (version-key.ts). */
const versionKeyExtraBytes = 10;
/** A stored version's value adds a kind byte and the timestamp it was superseded at. */
const versionValueExtraBytes = 9;

/**
 * Checks, when an operation is staged, that its partition can hold it once it is applied after the
 * log sync, on top of everything staged before it in the same pass; throws ERR_PARTITION_FULL
 * otherwise, before the operation is logged. So nothing that reached the log can fail to apply for
 * want of pages.
 *
 * The bound is `BTree.pagesForWrites` (write-pages.ts): what the operation's writes can allocate in
 * any order, counted from the tree as it will be after the operations staged before it (their pages
 * and levels added). It checks only: the buffers grow when the writes apply.
 *
 * The version store is counted, as if every replaced version had to be kept, when `mayKeepVersions`:
 * whether a write keeps the version it replaces is decided only when it applies. A replaced version
 * is counted with the size of the value that replaces it. When no snapshot is open, nothing is locked
 * and the version store is empty, it is not counted: a snapshot that opens before the pass applies
 * finds an empty version store, which holds as many pages as the tree. Nor are deletes then counted
 * as cells in the tree (only as merges). The one gap: a snapshot that opens between staging and
 * applying makes such a delete leave a tombstone, which a partition filled to its last pages may not
 * hold; the owner then stops (ERR_WORKER_CRASHED for its writers), and reopening replays the delete.
 */
export function reserveForPass(
  tree: BTree,
  versions: BTree,
  entries: Iterable<BatchEntry>,
  staged: Readonly<PassReservation>,
  mayKeepVersions: boolean,
): PassReservation {
  const treeWrites = tree.newWriteTally();
  const versionWrites = versions.newWriteTally();
  let count = 0;
  for (const entry of entries) {
    tallyEntry(treeWrites, versionWrites, entry, mayKeepVersions);
    count++;
  }
  const treeBound = tree.pagesForWrites(treeWrites, { pages: staged.treePages, levels: staged.treeLevels });
  requirePages(tree, staged.treePages + treeBound.pages, 'tree', count);
  if (!mayKeepVersions)
    return { treePages: treeBound.pages, treeLevels: treeBound.levels, versionPages: 0, versionLevels: 0 };
  const versionBound = versions.pagesForWrites(versionWrites, {
    pages: staged.versionPages,
    levels: staged.versionLevels,
  });
  requirePages(versions, staged.versionPages + versionBound.pages, 'version store', count);
  return {
    treePages: treeBound.pages,
    treeLevels: treeBound.levels,
    versionPages: versionBound.pages,
    versionLevels: versionBound.levels,
  };
}

/**
 * Counts one write: a put, or a delete (a merge per level; and a tombstone when versions may be
 * kept), and the version it may replace.
 */
export function tallyEntry(
  treeWrites: WriteTally,
  versionWrites: WriteTally,
  entry: BatchEntry,
  mayKeepVersions: boolean,
): void {
  const valueBytes = entry.value?.length ?? 0;
  if (entry.value === null) treeWrites.addDelete();
  if (entry.value !== null || mayKeepVersions) treeWrites.addPut(entry.key.length, valueBytes);
  if (mayKeepVersions) {
    versionWrites.addPut(entry.key.length + versionKeyExtraBytes, valueBytes + versionValueExtraBytes);
  }
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
  };
  throw new PartitionFullError(
    `partition is full: this write of ${entries} entries, with those before it in the owner's batch, needs up to ` +
      `${pages} pages (${pages * stats.pageSizeBytes} bytes) in its ${what}, and ${available} pages ` +
      `(${available * stats.pageSizeBytes} bytes) of the partition's ${stats.bytesMax} bytes ` +
      `(partitionBytesMax) are left; raise partitionBytesMax or delete data`,
    detail,
  );
}
