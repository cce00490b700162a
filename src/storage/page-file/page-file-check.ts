import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError, messageWithoutCode } from '../../shared-memory/errors.js';
import { xxhashApi } from '../xxhash.js';
import { readDoubleWriteImages } from './double-write-images.js';
import {
  decodePageFileHeader,
  decodePageSpaceState,
  doubleWriteFileName,
  headerImageProblem,
  type PageSetState,
  pageFileName,
  pageIdOf,
  pageImageProblem,
} from './page-file-format.js';

/** One piece of damage in a page file (or its double-write file), at a byte offset when known. */
export interface PageFileProblem {
  readonly code: 'ERR_CORRUPTION' | 'ERR_FORMAT_VERSION';
  readonly file: string;
  readonly offset: number | null;
  readonly message: string;
}

export interface PageFileCheck {
  readonly file: string;
  readonly bytes: number;
  /** Pages in the file, page 0 (the header) included. */
  readonly pages: number;
  /** The page set the file holds (page 0's state), or null if none was written or page 0 is unsound. */
  readonly state: PageSetState | null;
  /**
   * Unsound pages whose image a whole double-write file holds: a crash tore them while a set was
   * written in place, and the next open rewrites them from there. Not damage.
   */
  readonly repairable: number;
  readonly problems: readonly PageFileProblem[];
}

export interface PageFileCheckOptions {
  /** Count unsound pages the double-write file holds as repairable (true), or as problems. */
  doubleWrite?: boolean;
  /** Called after each chunk read, with the bytes read so far and the file's size. */
  onProgress?: (bytesRead: number, bytesTotal: number) => void;
}

/** Pages read per chunk: the file is streamed, since it may be larger than one Buffer can hold. */
const chunkPages = 256;
/** Enough of page 0 for its header, whatever the page size. */
const headerBytes = 128;

/**
 * Reads every page of `dir`'s page file and checks it: page 0's header and state, then each page's
 * checksum and page id. Damage is collected, not thrown, so that one run reports all of it; other I/O
 * failures throw. Reads the file once, in chunks; O(file bytes).
 */
export async function checkPageFile(dir: string, options: PageFileCheckOptions = {}): Promise<PageFileCheck> {
  const api = await xxhashApi();
  const file = join(dir, pageFileName);
  const problems: PageFileProblem[] = [];
  const problem = (
    message: string,
    offset: number | null,
    code: PageFileProblem['code'] = 'ERR_CORRUPTION',
  ) => problems.push({ code, file, offset, message });
  const empty = { file, bytes: 0, pages: 0, state: null, repairable: 0, problems };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    problem(`page file ${file} is missing`, null);
    return empty;
  }
  try {
    const bytes = (await handle.stat()).size;
    const first = Buffer.alloc(headerBytes);
    const { bytesRead } = await handle.read(first, 0, headerBytes, 0);
    let pageSizeBytes: number;
    try {
      pageSizeBytes = decodePageFileHeader(api, first.subarray(0, bytesRead), file).pageSizeBytes;
    } catch (error) {
      // Without a sound header the page size is unknown: nothing further can be read.
      if (!(error instanceof LightningError)) throw error;
      problem(
        messageWithoutCode(error),
        0,
        error.code === 'ERR_FORMAT_VERSION' ? 'ERR_FORMAT_VERSION' : 'ERR_CORRUPTION',
      );
      return { ...empty, bytes };
    }
    const pages = Math.floor(bytes / pageSizeBytes);
    if (bytes % pageSizeBytes !== 0) {
      problem(
        `page file ${file}: ${bytes} bytes is not a whole number of ${pageSizeBytes}-byte pages`,
        pages * pageSizeBytes,
      );
    }
    const inDoubleWrite = new Map<number, Uint8Array>();
    if (options.doubleWrite !== false) {
      try {
        for (const image of await readDoubleWriteImages(dir, pageSizeBytes))
          inDoubleWrite.set(pageIdOf(image), image);
      } catch (error) {
        if (!(error instanceof LightningError) || error.code !== 'ERR_CORRUPTION') throw error;
        problems.push({
          code: 'ERR_CORRUPTION',
          file: join(dir, doubleWriteFileName),
          offset: null,
          message: messageWithoutCode(error),
        });
      }
    }
    let state: PageSetState | null = null;
    let repairable = 0;
    const chunk = Buffer.alloc(chunkPages * pageSizeBytes);
    for (let firstPage = 0; firstPage < pages; firstPage += chunkPages) {
      const count = Math.min(chunkPages, pages - firstPage);
      const length = count * pageSizeBytes;
      const read = await readFully(handle, chunk, length, firstPage * pageSizeBytes);
      if (read < length) {
        problem(
          `page file ${file}: ended at byte ${firstPage * pageSizeBytes + read} while it was read`,
          null,
        );
        break;
      }
      for (let at = 0; at < count; at++) {
        const pageId = firstPage + at;
        const image = chunk.subarray(at * pageSizeBytes, (at + 1) * pageSizeBytes);
        const why =
          pageId === 0 ? headerImageProblem(api, image, file) : pageImageProblem(api, image, pageId);
        // A torn page the double-write file holds whole: the set's own image stands for it.
        const sound = why === null ? image : inDoubleWrite.get(pageId);
        if (why !== null && sound !== undefined) repairable++;
        if (sound === undefined) problem(`page file ${file}: page ${pageId}: ${why}`, pageId * pageSizeBytes);
        else if (pageId === 0) state = decodePageSpaceState(api, sound, file);
      }
      options.onProgress?.(firstPage * pageSizeBytes + length, bytes);
    }
    const allocated = state?.pagesAllocated ?? 0;
    if (allocated > pages) {
      problem(
        `page file ${file}: holds ${pages} pages, but its page set counts ${allocated} allocated (cut short?)`,
        bytes,
      );
    }
    return { file, bytes, pages, state, repairable, problems };
  } finally {
    await handle.close();
  }
}

async function readFully(
  handle: Awaited<ReturnType<typeof open>>,
  into: Buffer,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
