import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import type { BufferPool } from '../../shared-memory/pool/buffer-pool.js';
import { syncDirectory } from '../durable-file.js';
import { fileLayer, type LayerFileHandle } from '../file-layer.js';
import { writevFully } from '../write-fully.js';
import { type XxhashApi, xxhashApi } from '../xxhash.js';
import {
  decodePageFileHeader,
  doubleWriteFileName,
  encodeDoubleWriteHeader,
  encodePageFileHeader,
  type PageFileHeader,
  pageFileName,
  sealPage,
} from './page-file-format.js';
import { repairTornPages } from './page-file-writer.js';

/** Every dirty page of a pool, copied at one moment, with page 0 holding the state as of it. */
export interface PageSet {
  readonly redoLsn: number;
  /** Sorted by page id; page 0 first. */
  readonly images: readonly { pageId: number; version: number; image: Uint8Array }[];
}

export interface PageSetWritten {
  /** Pages written in place (and first to the double-write file), page 0 not counted. */
  pagesWritten: number;
  /** Pages written but changed meanwhile: they stay dirty for the next checkpoint. */
  pagesChangedMeanwhile: number;
}

/**
 * Writes a pool's dirty pages to its page file as consistent sets, in two steps so that the owner
 * chooses the moment of the copy:
 *
 * - `capture(redoLsn)`, synchronous, copies every dirty page between two of the owner's passes, when
 *   the tree holds the effect of every log record below `redoLsn` and of none from it on. Every page
 *   changed since the last set is dirty (dirty pages are never evicted), so the copies and the pages
 *   already in the file make up the tree as of that moment.
 * - `write(set)` writes the images to the double-write file and fdatasyncs, writes each in place and
 *   fdatasyncs, empties the double-write file, and marks each page clean unless it changed meanwhile.
 *   A crash while the pages are written in place is repaired at open from the double-write file
 *   (`repairTornPages`); a crash while the double-write file is written leaves the page file holding
 *   the previous set.
 *
 * Why a double-write area rather than a full page image in the log on each page's first change after
 * a checkpoint: the log stays a log of operations, its format and the replication stream do not
 * change, and the cost (each dirty page written twice per checkpoint) falls on the background
 * checkpoint instead of on the first write to each page, which the caller waits for.
 */
export class PageSetWriter {
  readonly pool: BufferPool;
  readonly dir: string;
  readonly #api: XxhashApi;
  readonly #header: PageFileHeader;
  #writing = false;
  /**
   * True once this writer wrote the double-write file: its name is durable, and nothing of ours
   * removes it, so later sets skip the look for it.
   */
  #doubleWriteSeen = false;
  /**
   * Set while a set's pages are written in place, and left set if that fails: the page file may then
   * hold part of that set, and the double-write file is the only whole copy of it, so the next set
   * puts it back in place before it overwrites the double-write file with its own.
   */
  #inPlaceUnfinished = false;

  private constructor(pool: BufferPool, dir: string, api: XxhashApi, header: PageFileHeader) {
    this.pool = pool;
    this.dir = dir;
    this.#api = api;
    this.#header = header;
  }

  /** A writer for `pool` into `dir`'s page file, whose header must match the pool's page size. */
  static async open(pool: BufferPool, dir: string): Promise<PageSetWriter> {
    if (pageSetWriters.has(pool)) {
      // Two writers would interleave their double-write files and each mark the other's pages clean.
      throw new LightningError('ERR_BAD_ARGUMENT', `pool of ${dir} already has a page set writer`);
    }
    // Claimed before the first await: the second of two calls made at once is the one refused,
    // however their reads of the page file interleave.
    pageSetWriters.add(pool);
    try {
      const header = await checkPageFile(dir, pool.pageSizeBytes);
      return new PageSetWriter(pool, dir, await xxhashApi(), header);
    } catch (error) {
      pageSetWriters.delete(pool);
      throw error;
    }
  }

  /** True while a set is being written: a new capture must wait for it. */
  get writing(): boolean {
    return this.#writing;
  }

  /**
   * Copies every dirty page and the allocator's state, synchronously. Owner only, between its writes,
   * and not while a set is being written (its pages are not marked clean yet). `timestampHigh`: no
   * cell of the tree carries a commit timestamp above it (PageSetState).
   */
  capture(redoLsn: number, timestampHigh = 0): PageSet {
    for (const [name, value] of [
      ['redoLsn', redoLsn],
      ['timestampHigh', timestampHigh],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0)
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `${name} must be a safe integer >= 0, got ${String(value)}`,
        );
    }
    if (this.#writing)
      throw new LightningError('ERR_BAD_ARGUMENT', 'a page set is still being written: capture after it');
    const pool = this.pool;
    const pageSizeBytes = pool.pageSizeBytes;
    const images: { pageId: number; version: number; image: Uint8Array }[] = [];
    pool.forEachDirty((pageId, offset) => {
      const image = pool.u8.slice(offset, offset + pageSizeBytes);
      sealPage(this.#api, image, pageId);
      images.push({ pageId, version: pool.versionOf(pageId), image });
    });
    const state = { ...pool.spaceState(), redoLsn, timestampHigh };
    images.push({ pageId: 0, version: 0, image: encodePageFileHeader(this.#api, this.#header, state) });
    images.sort((a, b) => a.pageId - b.pageId);
    return { redoLsn, images };
  }

  /** Writes a captured set durably in place (see the class); one at a time. */
  async write(set: PageSet): Promise<PageSetWritten> {
    if (this.#writing) throw new LightningError('ERR_BAD_ARGUMENT', 'a page set is already being written');
    this.#writing = true;
    try {
      return await this.#write(set);
    } finally {
      this.#writing = false;
    }
  }

  /** Lets another writer be opened for the pool (its owner is closing, say). */
  close(): void {
    pageSetWriters.delete(this.pool);
  }

  async #write(set: PageSet): Promise<PageSetWritten> {
    const { images } = set;
    const pool = this.pool;
    const pageSizeBytes = pool.pageSizeBytes;
    const doubleWritePath = join(this.dir, doubleWriteFileName);
    // createPageFile made it; if it is gone, its new name must be durable before any page is written.
    if (this.#inPlaceUnfinished) {
      await repairTornPages(this.dir, pageSizeBytes);
      this.#inPlaceUnfinished = false;
    }
    const doubleWriteIsNew = !this.#doubleWriteSeen && !(await exists(doubleWritePath));
    await withFile(doubleWritePath, 'w', async (handle) => {
      const all = images.map((i) => i.image);
      await writevFully(handle, [encodeDoubleWriteHeader(this.#api, pageSizeBytes, all), ...all], 0);
      await handle.datasync();
    });
    if (doubleWriteIsNew) await syncDirectory(this.dir);
    this.#doubleWriteSeen = true;
    this.#inPlaceUnfinished = true;
    await withFile(join(this.dir, pageFileName), 'r+', async (handle) => {
      await writeInPlace(handle, images, pageSizeBytes);
      await handle.datasync();
    });
    this.#inPlaceUnfinished = false;
    // Emptied so that open() has nothing to repair; if this is lost, repairing writes the same images.
    await (await fileLayer().open(doubleWritePath, 'w')).close();
    let pagesChangedMeanwhile = 0;
    for (const { pageId, version, image } of images) {
      if (pageId !== 0 && !pool.markCleanIf(pageId, version, image)) pagesChangedMeanwhile++;
    }
    return { pagesWritten: images.length - 1, pagesChangedMeanwhile };
  }
}

const pageSetWriters = new WeakSet<BufferPool>();

/** Writes of a set in place kept in flight at once: libuv's default thread pool has four threads. */
const writesInFlightMax = 4;
/** The most pages one `pwritev` carries (IOV_MAX is 1024 on Linux). */
const pagesPerWriteMax = 256;

/**
 * Writes `images` (sorted by page id) at their pages' places: each run of adjacent page ids in one
 * `pwritev`, a few runs at a time. A set's pages are often adjacent (pages a load appended, leaves
 * split next to each other), and one write per page made a set a chain of hundreds of round trips
 * to the thread pool, each waited for in turn.
 */
async function writeInPlace(
  handle: LayerFileHandle,
  images: readonly { pageId: number; image: Uint8Array }[],
  pageSizeBytes: number,
): Promise<void> {
  const runs: { position: number; buffers: Uint8Array[] }[] = [];
  let previous = -2;
  for (const { pageId, image } of images) {
    const last = runs[runs.length - 1];
    if (last !== undefined && pageId === previous + 1 && last.buffers.length < pagesPerWriteMax)
      last.buffers.push(image.subarray(0, pageSizeBytes));
    else runs.push({ position: pageId * pageSizeBytes, buffers: [image.subarray(0, pageSizeBytes)] });
    previous = pageId;
  }
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (next < runs.length && failure === null) {
      const run = runs[next++]!;
      try {
        await writevFully(handle, run.buffers, run.position);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  // Every lane stops and settles before the set fails: a write still in flight after the failure
  // was reported could land over the pages of the set written next.
  await Promise.all(Array.from({ length: Math.min(writesInFlightMax, runs.length) }, lane));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** `dir`'s page file header; throws unless the file exists with pages of `pageSizeBytes`. */
async function checkPageFile(dir: string, pageSizeBytes: number): Promise<PageFileHeader> {
  const path = join(dir, pageFileName);
  let header: PageFileHeader;
  try {
    const handle = await open(path, 'r');
    try {
      const first = new Uint8Array(pageSizeBytes);
      const { bytesRead } = await handle.read(first, 0, pageSizeBytes, 0);
      header = decodePageFileHeader(await xxhashApi(), first.subarray(0, bytesRead), path);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LightningError('ERR_CORRUPTION', `page file ${path} is missing`);
    }
    throw error;
  }
  if (header.pageSizeBytes !== pageSizeBytes) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `page file ${path} has ${header.pageSizeBytes}-byte pages; the pool has ${pageSizeBytes}-byte pages`,
    );
  }
  return header;
}

export async function withFile(
  path: string,
  flags: 'w' | 'r+' | 'r',
  use: (handle: LayerFileHandle) => Promise<void>,
): Promise<void> {
  const handle = await fileLayer().open(path, flags);
  try {
    await use(handle);
  } finally {
    await handle.close();
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
