import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import type { PageLoader } from '../../shared-memory/pool/page-loader.js';
import { type XxhashApi, xxhashApi } from '../xxhash.js';
import {
  corruption,
  decodePageFileHeader,
  decodePageSpaceState,
  kPageChecksum,
  type PageFileHeader,
  type PageSetState,
  type PageSpaceState,
  pageFileName,
  pageImageProblem,
} from './page-file-format.js';

/**
 * The redo LSN of the page set `dir`'s page file holds, or null if none was written: page 0's header
 * and state are checked (they lie in its first bytes, whatever the page size).
 */
export async function readPageFileRedoLsn(dir: string): Promise<number | null> {
  const { api, first, path } = await readPageZero(dir);
  decodePageFileHeader(api, first, path);
  return decodePageSpaceState(api, first, path)?.redoLsn ?? null;
}

/** `dir`'s page file's header (its page size and partition), checked; a missing file is ERR_CORRUPTION. */
export async function readPageFileHeader(dir: string): Promise<PageFileHeader> {
  const { api, first, path } = await readPageZero(dir);
  return decodePageFileHeader(api, first, path);
}

async function readPageZero(dir: string): Promise<{ api: XxhashApi; first: Buffer; path: string }> {
  const api = await xxhashApi();
  const path = join(dir, pageFileName);
  let first: Buffer;
  try {
    const handle = await open(path, 'r');
    try {
      first = Buffer.alloc(pageHeaderBytesRead);
      const { bytesRead } = await handle.read(first, 0, first.length, 0);
      first = first.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw corruption(`page file ${path} is missing`);
    throw error;
  }
  return { api, first, path };
}

/** Enough of page 0 for its header and state. */
const pageHeaderBytesRead = 128;

/**
 * Reads pages of one partition's page file synchronously, for a buffer pool's misses on any thread.
 * Each thread opens its own descriptor: a pread needs no shared position, and closing one thread's
 * reader never pulls the file from under another's.
 *
 * A page that fails its checksum or names another page id is ERR_CORRUPTION, never loaded: the pool
 * gives the frame back and the page stays evicted.
 */
export class PageFileReader implements PageLoader {
  readonly path: string;
  readonly header: PageFileHeader;
  /** The page space's state written with the pages, or null if no page was ever written back. */
  readonly spaceState: PageSetState | null;
  readonly #api: XxhashApi;
  #fd: number;

  private constructor(
    path: string,
    fd: number,
    header: PageFileHeader,
    spaceState: PageSetState | null,
    api: XxhashApi,
  ) {
    this.path = path;
    this.#fd = fd;
    this.header = header;
    this.spaceState = spaceState;
    this.#api = api;
  }

  /**
   * Opens `dir`'s page file and checks its header against what the caller expects. A missing file is
   * ERR_CORRUPTION: a database whose manifest names pages must have them.
   */
  static async open(dir: string, expected: PageFileHeader): Promise<PageFileReader> {
    const api = await xxhashApi();
    const path = join(dir, pageFileName);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw corruption(`page file ${path} is missing`);
      throw error;
    }
    try {
      const first = new Uint8Array(expected.pageSizeBytes);
      const read = readSync(fd, first, 0, first.length, 0);
      const header = decodePageFileHeader(api, first.subarray(0, read), path);
      if (header.pageSizeBytes !== expected.pageSizeBytes || header.partition !== expected.partition) {
        throw corruption(
          `page file ${path} is partition ${header.partition} with ${header.pageSizeBytes}-byte pages; ` +
            `expected partition ${expected.partition} with ${expected.pageSizeBytes}-byte pages`,
        );
      }
      return new PageFileReader(
        path,
        fd,
        header,
        decodePageSpaceState(api, first.subarray(0, read), path),
        api,
      );
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /**
   * What a buffer pool over this file starts from: the page space's state written with the pages, or
   * for a file never written back, its page count and an empty free list. A state naming more pages
   * than the file holds is ERR_CORRUPTION (the file was cut short).
   */
  poolStart(): PageSpaceState {
    const pages = this.pageCount();
    const state = this.spaceState;
    if (state === null) return { pagesAllocated: pages, freeListHead: 0, freePageCount: 0 };
    if (state.pagesAllocated > pages) {
      throw corruption(
        `page file ${this.path} holds ${pages} pages; its header says ${state.pagesAllocated}`,
      );
    }
    const { pagesAllocated, freeListHead, freePageCount } = state;
    return { pagesAllocated, freeListHead, freePageCount };
  }

  /**
   * Where the log's replay starts over the pages in the file: they hold every record of the partition
   * below it. Null if no page set was ever written (replay from the log's first record).
   */
  redoLsn(): number | null {
    return this.spaceState?.redoLsn ?? null;
  }

  /** Pages the file holds, the header included. */
  pageCount(): number {
    return Math.floor(fstatSync(this.#descriptor()).size / this.header.pageSizeBytes);
  }

  load(pageId: number, frame: Uint8Array): void {
    const pageSizeBytes = this.header.pageSizeBytes;
    if (frame.length !== pageSizeBytes) {
      throw new LightningError('ERR_BAD_ARGUMENT', `a frame is ${pageSizeBytes} bytes, got ${frame.length}`);
    }
    const read = readSync(this.#descriptor(), frame, 0, pageSizeBytes, pageId * pageSizeBytes);
    if (read !== pageSizeBytes) {
      throw corruption(`page ${pageId} lies beyond the end of page file ${this.path} (read ${read} bytes)`);
    }
    const problem = pageImageProblem(this.#api, frame, pageId);
    if (problem !== null) throw corruption(`page ${pageId} of ${this.path}: ${problem}`);
    // The checksum word is the latch in memory: a loaded page starts unlatched.
    frame.fill(0, kPageChecksum, kPageChecksum + 4);
  }

  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  #descriptor(): number {
    if (this.#fd < 0) throw new LightningError('ERR_CLOSED', `page file ${this.path} reader is closed`);
    return this.#fd;
  }
}
