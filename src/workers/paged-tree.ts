import { join } from 'node:path';
import { LightningError } from '../shared-memory/errors.js';
import { BufferPool } from '../shared-memory/pool/buffer-pool.js';
import { framesShortCause } from '../shared-memory/pool/frames-short-error.js';
import { PooledPageSpace } from '../shared-memory/pool/pooled-page-space.js';
import { BTree } from '../shared-memory/tree/btree.js';
import { pageFileName } from '../storage/page-file/page-file-format.js';
import { PageFileReader } from '../storage/page-file/page-file-reader.js';
import { repairTornPages } from '../storage/page-file/page-file-writer.js';
import { PageSetWriter, type PageSetWritten } from '../storage/page-file/page-set-writer.js';
import { type PagedTreeHandle, pagedTreeHandle } from '../storage/page-file/paged-tree-handle.js';

/** The page a tree over a fresh page file gets for its meta page: the first one after the header. */
export const pagedTreeMetaPageId = 1;

export interface PagedTreeOptions {
  /** The partition's directory, holding `pages.lpg` and `pages.dwb` (createPageFile). */
  dir: string;
  partition: number;
  pageSizeBytes: number;
  /** The page table's size: the most pages the partition may ever hold. */
  pagesMax: number;
  /** The frames: the most pages in memory at once. */
  framesMax: number;
  /**
   * Serving reads only (open() with readOnly): nothing is written to the page file, torn pages a
   * crash left are refused rather than repaired, and no page set is written until `allowWrites`.
   */
  readOnly?: boolean;
}

/**
 * One partition's tree over a buffer pool and its page file: the pages live in the file, a bounded
 * number of them in memory. Owner thread only (readers attach to `pool` on their own threads).
 */
export class PagedTree {
  readonly tree: BTree;
  readonly pool: BufferPool;
  readonly dir: string;
  readonly partition: number;
  readonly #file: PageFileReader;
  readonly #writer: PageSetWriter;
  /** Where the log's replay starts over the pages in the file: it moves with every set written. */
  #redoLsn: number | null;
  /** No cell carries a commit timestamp above this: it only rises, with each set. */
  #timestampHigh: number;
  #setsWritten = 0;
  /** Opened read-only: no page set until `allowWrites`. */
  #readOnly = false;
  /** The set being written, if one is. */
  #inFlight: Promise<unknown> | null = null;

  private constructor(
    options: PagedTreeOptions,
    tree: BTree,
    pool: BufferPool,
    file: PageFileReader,
    writer: PageSetWriter,
  ) {
    this.dir = options.dir;
    this.partition = options.partition;
    this.tree = tree;
    this.pool = pool;
    this.#file = file;
    this.#writer = writer;
    this.#redoLsn = file.redoLsn();
    this.#timestampHigh = file.spaceState?.timestampHigh ?? 0;
  }

  /**
   * Opens the partition's tree from its page file: puts back the pages a crash tore from the
   * double-write file, starts a pool from the state written with the last page set, and opens the
   * tree at its meta page (or creates it, if no page set was ever written). The tree then holds every
   * log record below `redoLsn`; the caller replays the log from there.
   */
  static async open(options: PagedTreeOptions): Promise<PagedTree> {
    const { dir, partition, pageSizeBytes, pagesMax, framesMax } = options;
    const readOnly = options.readOnly === true;
    const torn = await repairTornPages(dir, pageSizeBytes, !readOnly);
    if (readOnly && torn > 0) {
      // Read-only, the pages a crash tore stay torn: the double-write file's images are not read
      // through the pool.
      throw new LightningError(
        'ERR_NOT_SUPPORTED',
        `partition ${partition}: a crash left ${torn} pages of ${join(dir, pageFileName)} to repair from its double-write ` +
          'file, which a read-only open does not write: open the database once to write (without readOnly, with room on its disk)',
      );
    }
    const file = await PageFileReader.open(dir, { pageSizeBytes, partition });
    let pool: BufferPool | null = null;
    let writer: PageSetWriter | null = null;
    try {
      pool = BufferPool.create({ pageSizeBytes, pagesMax, framesMax, ...file.poolStart() }, file);
      const space = PooledPageSpace.forOwner(pool);
      writer = await PageSetWriter.open(pool, dir);
      let tree: BTree;
      if (file.redoLsn() === null) {
        // Pages a run left before its first set are garbage: no state names them.
        if (file.poolStart().pagesAllocated !== 1) {
          throw new LightningError(
            'ERR_CORRUPTION',
            `page file ${file.path} holds pages but no page set was completed in it`,
          );
        }
        tree = BTree.createOn(space);
      } else {
        tree = BTree.openOn(space, pagedTreeMetaPageId);
      }
      if (tree.view.metaPageId !== pagedTreeMetaPageId)
        throw new LightningError('ERR_INTERNAL', `a paged tree's meta page is ${tree.view.metaPageId}`);
      const paged = new PagedTree(options, tree, pool, file, writer);
      paged.#readOnly = readOnly;
      return paged;
    } catch (error) {
      writer?.close();
      pool?.detach();
      file.close();
      throw error;
    }
  }

  /** A handle for reading the tree on another thread (`attachPagedTree`). */
  share(): PagedTreeHandle {
    return pagedTreeHandle(this.pool, this.dir, this.partition, this.tree.view.metaPageId);
  }

  /** The LSN the page file's pages reflect, or null before the first page set. */
  get redoLsn(): number | null {
    return this.#redoLsn;
  }

  /**
   * No cell of the pages carries a commit timestamp above this: after a restart the timestamp oracle
   * must start above it, or new snapshots would take heads the pages kept for newer than themselves.
   */
  get timestampHigh(): number {
    return this.#timestampHigh;
  }

  /** Page sets written since the tree was opened. */
  get setsWritten(): number {
    return this.#setsWritten;
  }

  /** True while a page set is being written: no other may start. */
  get writing(): boolean {
    return this.#writer.writing;
  }

  /**
   * A checkpoint: copies every dirty page now, as the tree holding every log record below `redoLsn`
   * and none from it on, then writes them as one set. The caller calls it between its passes, with
   * nothing applied past `redoLsn` that a replay from `redoLsn` would not apply again (blind puts and
   * deletes may be applied twice; a transaction's intents must not be in the tree). `timestampHigh`:
   * the timestamp oracle's value now (0 without MVCC); the set records the highest it was given.
   * Returns null if a set is being written already.
   */
  async writePages(redoLsn: number, timestampHigh = 0): Promise<PageSetWritten | null> {
    if (!Number.isSafeInteger(timestampHigh) || timestampHigh < 0) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `timestampHigh must be a safe integer >= 0, got ${String(timestampHigh)}`,
      );
    }
    if (this.#readOnly) {
      throw new LightningError(
        'ERR_READ_ONLY',
        `partition ${this.partition}: a page set of a database opened with { readOnly: true }`,
      );
    }
    if (this.#writer.writing) return null;
    const high = Math.max(this.#timestampHigh, timestampHigh);
    const set = this.#writer.capture(redoLsn, high);
    const writing = this.#writer.write(set);
    this.#inFlight = writing;
    let written: PageSetWritten;
    try {
      written = await writing;
    } finally {
      this.#inFlight = null;
    }
    this.#redoLsn = redoLsn;
    this.#timestampHigh = high;
    this.#setsWritten++;
    return written;
  }

  /**
   * Runs `write` (one change of the tree), first writing a page set at `redoLsn()` if the pool has no
   * room for the pages it may change (the pool refuses a write up front: nothing changed). A write
   * that needs more frames than the pool has, or page ids the tree has no more of, fails at once:
   * no page set would make room for it.
   */
  async withRoom<T>(write: () => T, redoLsn: () => number): Promise<T> {
    try {
      return write();
    } catch (error) {
      // Recovery wraps the pool's refusal with the record it was replaying.
      const short = framesShortCause(error);
      if (short === null || !short.fitsWhenClean || this.pool.dirtyPageCount() === 0) throw error;
      if (this.#readOnly) {
        throw new LightningError(
          'ERR_NOT_SUPPORTED',
          `partition ${this.partition}: the log since its last page set changes more pages than its buffer pool's ` +
            `${this.pool.framesMax} frames hold, and a read-only open writes none back: open the database once ` +
            'to write (without readOnly, with room on its disk; a clean close leaves no log to replay), or with a larger memoryMaxBytes',
          { cause: error },
        );
      }
    }
    // A set under way (a checkpoint's) marks its pages clean when it ends; then write one of our own.
    while (this.#inFlight !== null) await this.#inFlight.catch(() => {});
    await this.writePages(redoLsn());
    return write();
  }

  /** The database writes again (it was opened read-only on a full disk, and space came back). */
  allowWrites(): void {
    this.#readOnly = false;
  }

  /** Frees the pool and closes the file; the caller has written what it needs to keep. */
  close(): void {
    this.#writer.close();
    this.pool.detach();
    this.#file.close();
  }
}
