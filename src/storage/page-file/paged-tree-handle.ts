import { LightningError } from '../../shared-memory/errors.js';
import { BufferPool } from '../../shared-memory/pool/buffer-pool.js';
import { PooledPageSpace } from '../../shared-memory/pool/pooled-page-space.js';
import { treeFormatVersion } from '../../shared-memory/tree/meta-layout.js';
import { type TreeHandle, verifyTreeMeta } from '../../shared-memory/tree/tree-handle.js';
import { TreeReader } from '../../shared-memory/tree/tree-reader.js';
import { PageFileReader } from './page-file-reader.js';

/**
 * What an owner hands to another thread for reading its tree over a buffer pool: structured-cloneable,
 * the pool's buffer itself shared. The reading thread opens the page file itself (its own descriptor,
 * for its own misses) and takes a holder slot in the pool.
 */
export interface PagedTreeHandle {
  kind: 'lightning-db/paged-tree';
  formatVersion: number;
  sab: SharedArrayBuffer;
  /** The partition's directory, holding its page file. */
  dir: string;
  partition: number;
  pageSizeBytes: number;
  metaPageId: number;
}

export function pagedTreeHandle(
  pool: BufferPool,
  dir: string,
  partition: number,
  metaPageId: number,
): PagedTreeHandle {
  return {
    kind: 'lightning-db/paged-tree',
    formatVersion: treeFormatVersion,
    sab: pool.sab,
    dir,
    partition,
    pageSizeBytes: pool.pageSizeBytes,
    metaPageId,
  };
}

/** A tree over a buffer pool attached on this thread; `close` gives back its slot and descriptor. */
export class AttachedPagedTree {
  readonly reader: TreeReader;
  readonly pool: BufferPool;
  readonly #file: PageFileReader;
  #closed = false;

  constructor(reader: TreeReader, pool: BufferPool, file: PageFileReader) {
    this.reader = reader;
    this.pool = pool;
    this.#file = file;
  }

  /** This thread must hold no latch of the pool (no read in progress). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pool.detach();
    this.#file.close();
  }
}

/**
 * Attaches to a tree over a buffer pool shared by its owner (`pagedTreeHandle`), checking the handle,
 * the pool's header, the page file's header and the tree's meta page. A handle that is not one is
 * ERR_BAD_ARGUMENT; a missing or foreign page file is ERR_CORRUPTION.
 */
export async function attachPagedTree(handle: unknown): Promise<AttachedPagedTree> {
  const checked = checkHandle(handle);
  const file = await PageFileReader.open(checked.dir, {
    pageSizeBytes: checked.pageSizeBytes,
    partition: checked.partition,
  });
  let pool: BufferPool | null = null;
  try {
    pool = BufferPool.attach(checked.sab, file);
    if (pool.pageSizeBytes !== checked.pageSizeBytes) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `paged tree handle: its pool has ${pool.pageSizeBytes}-byte pages, the handle says ${checked.pageSizeBytes}`,
      );
    }
    const space = PooledPageSpace.forReader(pool);
    if (!space.covers(checked.metaPageId)) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `paged tree handle names page ${checked.metaPageId}, which its pool has not allocated`,
      );
    }
    // A meta page's static fields never change, so reading them without validating is sound.
    verifyTreeMeta(space, checked.metaPageId);
    return new AttachedPagedTree(TreeReader.over(space, checked.metaPageId), pool, file);
  } catch (error) {
    pool?.detach();
    file.close();
    throw error;
  }
}

function checkHandle(handle: unknown): PagedTreeHandle {
  const bad = (why: string): never => {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `not a paged tree handle (${why}): pass the owner's share()`,
    );
  };
  if (typeof handle !== 'object' || handle === null) return bad('not an object');
  const h = handle as Partial<PagedTreeHandle>;
  if (h.kind !== 'lightning-db/paged-tree') return bad(`kind ${String(h.kind)}`);
  if (h.formatVersion !== treeFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `paged tree handle format version ${String(h.formatVersion)}; this build reads version ${treeFormatVersion}`,
    );
  }
  if (!(h.sab instanceof SharedArrayBuffer)) return bad('no SharedArrayBuffer');
  if (typeof h.dir !== 'string' || h.dir === '') return bad('no directory');
  for (const field of ['partition', 'pageSizeBytes', 'metaPageId'] as const) {
    const value = h[field];
    if (!Number.isSafeInteger(value) || (value as number) < 0) return bad(`${field} ${String(value)}`);
  }
  if (h.metaPageId === 0) return bad('page 0 is the page file header');
  return h as PagedTreeHandle;
}

/** A partition's tree as its owner shares it: in an arena, or over a buffer pool and page file. */
export type PartitionTreeHandle = TreeHandle | PagedTreeHandle;

export function isPagedTreeHandle(handle: PartitionTreeHandle): handle is PagedTreeHandle {
  return handle.kind === 'lightning-db/paged-tree';
}

/** A partition's tree attached on this thread; `close` gives back what a paged tree took. */
export interface AttachedPartitionTree {
  readonly reader: TreeReader;
  /** The pool the tree reads through, or null for an arena. */
  readonly pool: BufferPool | null;
  close(): void;
}

/** Attaches a partition's tree on this thread, however its owner keeps it. */
export async function attachPartitionTree(handle: PartitionTreeHandle): Promise<AttachedPartitionTree> {
  if (!isPagedTreeHandle(handle)) return { reader: TreeReader.attach(handle), pool: null, close: () => {} };
  const attached = await attachPagedTree(handle);
  return { reader: attached.reader, pool: attached.pool, close: () => attached.close() };
}
