import { type BTree, LightningError } from '../shared-memory/index.js';
import type { BatchEntry } from '../shared-memory/ring/operation-codec.js';

/** What one staged operation may allocate when it is applied, in its partition's two trees. */
export interface PassReservation {
  entries: number;
  treePages: number;
  versionPages: number;
}

const noValue = new Uint8Array(0);

/**
 * Checks, when an operation is staged, that its partition can hold it once it is applied after the
 * log sync, on top of everything staged before it in the same pass; throws ERR_PARTITION_FULL
 * otherwise, before the operation is logged. So nothing that reached the log can fail to apply for
 * want of pages.
 *
 * The bound is the one each write path reserves when it applies (a split per level plus a new root per
 * entry, the group's height growth, overflow pages), plus a margin for the height the entries staged
 * earlier in the pass may add, since this pass's estimate is made before any of them is applied. The
 * version store is counted as if every replaced version had to be kept (whether it must is decided only
 * when the write applies). It checks only: the buffers grow when the writes apply.
 */
export function reserveForPass(
  tree: BTree,
  versions: BTree,
  entries: readonly BatchEntry[],
  staged: { entries: number; treePages: number; versionPages: number },
): PassReservation {
  const count = entries.length;
  const margin = Math.ceil(Math.log2(count + 1)) + Math.ceil(Math.log2(staged.entries + count + 1));
  let treePages = 0;
  let versionPages = 0;
  for (const entry of entries) {
    const value = entry.value ?? noValue;
    treePages += tree.pagesForPut(entry.key, value) + margin;
    versionPages += versions.pagesForPut(entry.key, value) + margin + 1;
  }
  requirePages(tree, staged.treePages + treePages, 'tree');
  requirePages(versions, staged.versionPages + versionPages, 'version store');
  return { entries: count, treePages, versionPages };
}

function requirePages(tree: BTree, pages: number, what: string): void {
  const available = tree.pagesAvailable();
  if (pages <= available) return;
  throw new LightningError(
    'ERR_PARTITION_FULL',
    `partition is full: the writes of this batch need up to ${pages} pages in its ${what}, ${available} are left; raise partitionBytesMax or delete data`,
  );
}
