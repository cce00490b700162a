import { type BTree, isLightningError, type TreeStats } from '../shared-memory/index.js';
import {
  isVersionOf,
  versionKey,
  versionSupersededAt,
  versionValueHeaderBytes,
} from '../shared-memory/mvcc/version-key.js';
import { readLatest } from '../shared-memory/mvcc/versioned-reader.js';
import { cellFlagIntent, cellFlagTombstone } from '../shared-memory/tree/node-format.js';
import { overflowPagesFor } from '../shared-memory/tree/overflow-chain.js';
import { CleanupQueue, type ReplacedVersion } from './cleanup-queue.js';

/**
 * The most removals of one cleanup group: about a millisecond of latches held against readers.
 */
export const removalsPerGroup = 256;

/**
 * Removes, for one partition, what no open snapshot can read any more: the versions its writes
 * replaced (queued as they were replaced) and the tombstones of deleted keys, from the version store
 * and the main tree. Both trees may live in buffer pools of their own, each with frames of its own:
 * the frame budgets below count each tree's frames separately.
 */
export class VersionCleanup {
  readonly #tree: BTree;
  readonly #versions: BTree;
  readonly #queue = new CleanupQueue();

  constructor(tree: BTree, versions: BTree) {
    this.#tree = tree;
    this.#versions = versions;
  }

  get empty(): boolean {
    return this.#queue.empty;
  }

  /** Queues a version a write replaced: removed once no snapshot older than its replacement is open. */
  push(item: ReplacedVersion): void {
    this.#queue.push(item);
  }

  /**
   * Queues the tombstone written at `at` for cleanup on its own: the item names no version (none is
   * stored at `at` with that replacement time), so cleanup only removes the head, and only if it is
   * still that tombstone once no snapshot older than it is open.
   */
  nameTombstone(key: Uint8Array, at: number): void {
    this.#queue.push({ key, versionTimestamp: at, supersededAt: at, tombstone: true, versionBytes: 0 });
  }

  /**
   * Removes versions no open snapshot can see any more. The queue is in the order versions were
   * replaced, which is commit order but for decisions of two-phase commits applied late: cleanup
   * stops at the first version still needed, so such a version may wait a little longer.
   *
   * Removals go in groups of at most `removalsPerGroup`, each group one change for readers (a reader
   * waits on a latched page until its group ends, so groups stay short). Over a buffer pool a group
   * keeps every page it reads pinned and every page it changes dirty until it ends: one group for the
   * queue a long snapshot leaves behind needed more frames than the pool had and failed half-way,
   * leaving the trees refusing writes. So a group takes the next removal only while its worst case
   * (`removalFrames`) fits the frames its pool has free at that point (`BTree.framesAvailable`, which
   * counts the group's pinned pages as taken), and cleanup stops, the rest staying queued, when not
   * even one fits: it returns false, and the owner writes its dirty pages back and
   * calls again. False from a pool with no dirty pages means the pool is too small for the version at
   * the front, which the pool's minimum size rules out. In an arena frames never run short, and it
   * returns true. Removing never allocates, so there are no pages to reserve.
   */
  collectGarbage(oldestSnapshot: number): boolean {
    const queue = this.#queue;
    if (queue.firstUpTo(oldestSnapshot) === undefined) return true;
    const tree = this.#tree;
    const versions = this.#versions;
    // Removals only shrink the trees: their heights now bound the merges of every removal to come.
    const versionShape = versions.stats();
    const treeShape = tree.stats();
    for (;;) {
      let removed = 0;
      tree.group(() =>
        versions.group(() => {
          for (let item = queue.firstUpTo(oldestSnapshot); item !== undefined; ) {
            // Live counts: the frames this group's removals pinned and changed so far are taken.
            const versionNeeds = removalFrames(versionShape, item.versionBytes + versionValueHeaderBytes);
            if (versionNeeds > versions.framesAvailable()) return;
            if (item.tombstone && removalFrames(treeShape, 0) > tree.framesAvailable()) return;
            this.#removeUnlessDamaged(item);
            // Dropped only once removed: a removal that throws leaves its item queued.
            queue.dropFirst();
            if (++removed === removalsPerGroup) return;
            item = queue.firstUpTo(oldestSnapshot);
          }
        }),
      );
      if (queue.firstUpTo(oldestSnapshot) === undefined) return true;
      if (removed < removalsPerGroup) return false;
    }
  }

  /**
   * `#remove`, unless the main tree's descent to the item's key meets a page that fails verification
   * as it loads (a damaged page of a page file): that tombstone stays (read as an absent key), a line
   * names the page, and cleanup goes on. The descent reads before anything changes, and a merge
   * with a damaged sibling is left undone (TreeReshape), so the trees stay whole; the version store
   * lives in an arena.
   */
  #removeUnlessDamaged(item: ReplacedVersion): void {
    try {
      this.#remove(item);
    } catch (error) {
      if (!isLightningError(error, 'ERR_CORRUPTION')) throw error;
      // One line per damaged page: every tombstone under it meets it again.
      if (this.#damageReported.has(error.message)) return;
      this.#damageReported.add(error.message);
      console.error(`lightning-db owner: cleanup of tombstones skipped: ${error.message}`);
    }
  }

  readonly #damageReported = new Set<string>();

  /**
   * Removes the version an item names if it is still the one the item was queued for, and the
   * tombstone that replaced it if that is still the head. Reads only the headers it decides on: a
   * version key may hold a newer, larger version by now (a key's untimestamped head is stored under
   * timestamp 0 each time a snapshot keeps it), and a tombstone's key may hold a large value again,
   * neither of which the item's frame budget counts.
   */
  #remove(item: ReplacedVersion): void {
    const versions = this.#versions;
    const stored = versionKey(item.key, item.versionTimestamp);
    const header = versions.readCellPrefix(stored, versionValueHeaderBytes);
    if (header !== undefined && versionSupersededAt(header) === item.supersededAt)
      versions.deleteCell(stored);
    if (!item.tombstone) return;
    const tree = this.#tree;
    if (
      tree.readCellPrefix(item.key, 0) !== undefined &&
      (tree.cellFlags & cellFlagTombstone) !== 0 &&
      (tree.cellFlags & cellFlagIntent) === 0 &&
      tree.cellTimestamp === item.supersededAt
    ) {
      tree.deleteCell(item.key);
    }
  }

  /**
   * Removes, in key order from `from` on, the main tree's tombstones that every snapshot reads as an
   * absent key, with or without them, looking at `cellsMax` cells at most. For the tombstones a page
   * file keeps: its pages hold the heads open snapshots needed, and after a restart no cleanup item
   * names them, since the queue lives in memory. The tree's meta page counts them
   * (`BTree.tombstoneCount`), so an owner sweeps only when there are any. Returns the key to go on
   * from, or null at the end of the tree. Over a buffer pool it stops early, returning where, when the
   * frames cannot take one more removal: the owner writes its dirty pages back and calls again. Each
   * removal is a write of its own.
   *
   * A tombstone goes only if no version of its key is stored (and it is not an intent). A snapshot
   * newer than the tombstone reads it as absent; an older one reads the newest stored version at or
   * before it, and with none stored, absent too. Both read a key with no head as absent. A tombstone
   * over stored versions stays: without it, snapshots older than it would no longer find the version
   * it replaced, and a later put would show that version to snapshots between the delete and the put.
   * Its queued cleanup item removes it with its versions (the version store lives in memory, so after
   * a restart there are none).
   */
  sweepTombstones(from: Uint8Array, cellsMax: number): Uint8Array | null {
    const tree = this.#tree;
    // Removals only shrink the tree: its height now bounds the merges of every removal to come.
    const framesPerRemoval = removalFrames(tree.stats(), 0);
    let cursor = from;
    for (let looked = 0; looked < cellsMax; looked++) {
      if (tree.framesAvailable() < framesPerRemoval) return cursor;
      const key = tree.firstKeyFrom(cursor);
      if (key === undefined) return null;
      tree.readCellPrefix(key, 0);
      const flags = tree.cellFlags;
      if (
        (flags & cellFlagTombstone) !== 0 &&
        (flags & cellFlagIntent) === 0 &&
        !this.#hasStoredVersions(key)
      ) {
        tree.deleteCell(key);
      }
      cursor = keyAfter(key);
    }
    return cursor;
  }

  #hasStoredVersions(key: Uint8Array): boolean {
    const versions = this.#versions;
    if (versions.count === 0) return false;
    const stored = versions.firstKeyFrom(versionKey(key, readLatest));
    return stored !== undefined && isVersionOf(stored, key);
  }
}

/** The smallest key above `key`: `key` followed by a zero byte. */
function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

/**
 * The frames removing a cell from a tree of this shape may take, pinned or changed: its descent's
 * path (`height` pages, the leaf changed), a sibling per level below the root for a merge (which
 * changes the node, the sibling and their parent, all on the path but the sibling), the meta page's
 * counters, the first overflow page of a value whose header was read, and the overflow pages of a
 * `valueBytes` value, freed. test/version-cleanup-frames.test.ts measures it against real removals.
 */
export function removalFrames(shape: TreeStats, valueBytes: number): number {
  return 2 * shape.height + 1 + overflowPagesFor(valueBytes, shape.pageSizeBytes);
}
