import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError, messageWithoutCode } from '../../shared-memory/errors.js';
import { xxhashApi } from '../xxhash.js';
import { doubleWritePageSize, readDoubleWriteImages, readFully } from './double-write-images.js';
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
  /** Whole pages in the file, page 0 (the header) included. */
  readonly pages: number;
  /**
   * True if page 0 was read and found sound, in place or as its image in a whole double-write file:
   * `state` is then what the file holds (or will hold once the next open has written that image).
   */
  readonly headerSound: boolean;
  /**
   * The page set the file holds (page 0's state; its double-write image's, if a whole double-write
   * file holds page 0, since the next open writes that image in place), or null if none was written
   * or page 0 is unsound (see `headerSound`).
   */
  readonly state: PageSetState | null;
  /**
   * Pages whose sound image only a whole double-write file holds: pages a crash tore while a set was
   * written in place, and pages past the file's end (the crash came after the set wrote page 0 and
   * before it appended them). The next open writes them from there: not damage.
   */
  readonly repairable: number;
  /**
   * What lies past the pages the file's page set counts allocated, or null if nothing does (or no
   * page set is known). Not damage: the open never reads there (it starts the allocator at that
   * count, and a page allocated there later starts zeroed in memory and is written by the next set).
   */
  readonly pastRecordedEnd: PastRecordedEnd | null;
  readonly problems: readonly PageFileProblem[];
}

/** Bytes past the pages a page set counts allocated. */
export interface PastRecordedEnd {
  /** The page set's count of pages allocated (page 0 included): where these bytes start, in pages. */
  readonly pagesAllocated: number;
  readonly offset: number;
  readonly bytes: number;
  /**
   * Whole pages there not all zero bytes. Zero pages are what a crash leaves while the file grows (its
   * size made durable before the data); anything else there was never written by a page set counted.
   */
  readonly nonZeroPages: number;
}

export interface PageFileCheckOptions {
  /** Count unsound pages the double-write file holds as repairable (true), or as problems. */
  doubleWrite?: boolean;
  /** The partition whose directory holds the file: a header naming another is a finding, as at open. */
  partition?: number;
  /** Called after each chunk read, with the bytes read so far and the file's size. */
  onProgress?: (bytesRead: number, bytesTotal: number) => void;
}

/** Pages read per chunk: the file is streamed, since it may be larger than one Buffer can hold. */
const chunkPages = 256;
/** Enough of page 0 for its header, whatever the page size. */
const headerBytes = 128;

/**
 * Reads every page of `dir`'s page file and checks it: page 0's header and state, then each page's
 * checksum and page id, and that the file holds every page its state counts allocated. The file is
 * judged as the next open will leave it: a whole double-write file's images stand for the pages a
 * crash tore in place and for those it cut off the file's end (`repairable`), and page 0's image for
 * the state. Damage is collected, not thrown, so that one run reports all of it; other I/O failures
 * throw. Reads the file once, in chunks, and the double-write file once; O(file bytes).
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
  const empty = {
    file,
    bytes: 0,
    pages: 0,
    headerSound: false,
    state: null,
    repairable: 0,
    pastRecordedEnd: null,
    problems,
  };
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
      const header = decodePageFileHeader(api, first.subarray(0, bytesRead), file);
      pageSizeBytes = header.pageSizeBytes;
      if (options.partition !== undefined && header.partition !== options.partition) {
        // PageFileReader.open refuses it: a file copied or moved from another partition's directory.
        problem(
          `page file ${file} is partition ${header.partition}'s, in partition ${options.partition}'s directory`,
          0,
        );
      }
    } catch (error) {
      if (!(error instanceof LightningError)) throw error;
      // A crash may have torn page 0 in place while a set was written: the next open rewrites it from
      // the double-write file, whose header names the page size. Page 0 is judged by its image below.
      const fromDoubleWrite =
        error.code === 'ERR_CORRUPTION' && options.doubleWrite !== false
          ? await doubleWritePageSize(dir, headerBytes)
          : null;
      if (fromDoubleWrite === null) {
        // Without a sound header the page size is unknown: nothing further can be read.
        problem(
          messageWithoutCode(error),
          0,
          error.code === 'ERR_FORMAT_VERSION' ? 'ERR_FORMAT_VERSION' : 'ERR_CORRUPTION',
        );
        return { ...empty, bytes };
      }
      pageSizeBytes = fromDoubleWrite;
    }
    const pages = Math.floor(bytes / pageSizeBytes);
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
    const stateOf = (image: Uint8Array): PageSetState | null => decodePageSpaceState(api, image, file);
    // The next open writes page 0's double-write image in place, over whatever the crash left there.
    const headerImage = inDoubleWrite.get(0);
    let state = headerImage === undefined ? null : stateOf(headerImage);
    let headerSound = headerImage !== undefined;
    let repairable = 0;
    let nonZeroPastEnd = 0;
    const chunk = Buffer.alloc(chunkPages * pageSizeBytes);
    for (let firstPage = 0; firstPage < pages; firstPage += chunkPages) {
      const count = Math.min(chunkPages, pages - firstPage);
      const length = count * pageSizeBytes;
      const read = await readFully(handle, chunk, firstPage * pageSizeBytes, length);
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
        // Past the page set's count (known from page 0, which comes first): never read, not damage.
        if (state !== null && pageId > 0 && pageId >= state.pagesAllocated) {
          if (image.some((byte) => byte !== 0)) nonZeroPastEnd++;
          continue;
        }
        const why =
          pageId === 0 ? headerImageProblem(api, image, file) : pageImageProblem(api, image, pageId);
        // A torn page the double-write file holds whole: the set's own image stands for it.
        const sound = why === null ? image : inDoubleWrite.get(pageId);
        if (why !== null && sound !== undefined) repairable++;
        if (sound === undefined) {
          // Page 0's decoders name the file already.
          const reason = why?.startsWith(`page file ${file}: `)
            ? why.slice(`page file ${file}: `.length)
            : why;
          problem(`page file ${file}: page ${pageId}: ${reason}`, pageId * pageSizeBytes);
        } else if (pageId === 0 && headerImage === undefined) {
          state = stateOf(sound);
          headerSound = true;
        }
      }
      options.onProgress?.(firstPage * pageSizeBytes + length, bytes);
    }
    // Pages at or past the file's end: a set writes page 0 (counting them allocated) before it appends
    // them, so a crash between leaves the file short, and the next open appends them from a whole
    // double-write file. Only pages it holds are written: any other page up to its last is a hole.
    let reach = pages;
    for (const pageId of inDoubleWrite.keys()) {
      if (pageId < pages) continue;
      repairable++;
      reach = Math.max(reach, pageId + 1);
    }
    const allocated = state?.pagesAllocated ?? 0;
    // A partial last page past the count is as unread as the whole pages there.
    const partialPastEnd = state !== null && pages >= allocated;
    if (bytes % pageSizeBytes !== 0 && !inDoubleWrite.has(pages) && !partialPastEnd) {
      problem(
        `page file ${file}: ${bytes} bytes is not a whole number of ${pageSizeBytes}-byte pages`,
        pages * pageSizeBytes,
      );
    }
    const holes = holesPastEnd(pages, reach, inDoubleWrite);
    if (holes.count > 0) {
      problem(
        `page file ${file}: holds ${pages} pages; the double-write file holds pages up to ${reach - 1} ` +
          `past its end but not ${holes.count} of them (the first: page ${holes.first})`,
        holes.first * pageSizeBytes,
      );
    }
    if (allocated > reach) {
      const repaired = reach > pages ? ` (${reach} once the double-write file's images are written)` : '';
      problem(
        `page file ${file}: holds ${pages} pages${repaired}, but its page set counts ${allocated} allocated (cut short?)`,
        bytes,
      );
    }
    const pastRecordedEnd =
      state !== null && bytes > allocated * pageSizeBytes
        ? {
            pagesAllocated: allocated,
            offset: allocated * pageSizeBytes,
            bytes: bytes - allocated * pageSizeBytes,
            nonZeroPages: nonZeroPastEnd,
          }
        : null;
    return { file, bytes, pages, headerSound, state, repairable, pastRecordedEnd, problems };
  } finally {
    await handle.close();
  }
}

/**
 * The page ids in [from, to) that `images` holds no image of: how many, and the lowest (-1 if none).
 * O(images), however far past `from` an image lies.
 */
function holesPastEnd(
  from: number,
  to: number,
  images: ReadonlyMap<number, Uint8Array>,
): { count: number; first: number } {
  let held = 0;
  for (const pageId of images.keys()) if (pageId >= from && pageId < to) held++;
  const count = to - from - held;
  if (count === 0) return { count, first: -1 };
  let first = from;
  while (images.has(first)) first++;
  return { count, first };
}
