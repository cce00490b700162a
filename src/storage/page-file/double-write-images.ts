import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { xxhashApi } from '../xxhash.js';
import { missingDoubleWriteError } from './double-write-missing.js';
import {
  batchChecksumHasher,
  decodeDoubleWriteHeader,
  doubleWriteFileName,
  headerImageProblem,
  pageIdOf,
  pageImageProblem,
} from './page-file-format.js';

/**
 * The images of `dir`'s double-write file if it is whole, else none. Whole means its header, every
 * image and the batch checksum are sound: only such a file was synced, and only then can pages have
 * been written in place (see page-file-format.ts). An empty file means the last set finished; a torn
 * or partial one was cut short by the crash before any page was written in place, and no part of it
 * belongs to a state of the pages. A missing file is ERR_CORRUPTION saying what to do
 * (missingDoubleWriteError; createPageFile makes it with the page file); one of another page size
 * than the page file's is ERR_CORRUPTION too.
 *
 * Reads the header, then one image at a time into a buffer of its own: a large set never needs one
 * buffer as large as the file. O(file bytes).
 */
export async function readDoubleWriteImages(dir: string, pageSizeBytes: number): Promise<Uint8Array[]> {
  const api = await xxhashApi();
  const path = join(dir, doubleWriteFileName);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw await missingDoubleWriteError(dir, pageSizeBytes);
    throw error;
  }
  try {
    const bytes = (await handle.stat()).size;
    if (bytes === 0) return [];
    const first = Buffer.alloc(pageSizeBytes);
    const headerRead = await readFully(handle, first, 0);
    let header: { pageSizeBytes: number; imageCount: number; batchChecksum: number };
    try {
      header = decodeDoubleWriteHeader(api, first.subarray(0, headerRead), path);
    } catch (error) {
      // A torn header: the crash came before the file was synced, so no page was written in place.
      if (error instanceof LightningError && error.code === 'ERR_CORRUPTION') return [];
      throw error;
    }
    if (header.pageSizeBytes !== pageSizeBytes) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `double-write file ${path} has ${header.pageSizeBytes}-byte pages, the page file ${pageSizeBytes}`,
      );
    }
    // Too short for the images its header counts: cut short while it was written, never synced. Checked
    // first, so that a count no file could hold costs nothing.
    if (bytes < (header.imageCount + 1) * pageSizeBytes) return [];
    const images: Uint8Array[] = [];
    const hasher = batchChecksumHasher(api);
    for (let at = 1; at <= header.imageCount; at++) {
      const image = Buffer.alloc(pageSizeBytes);
      if ((await readFully(handle, image, at * pageSizeBytes)) !== pageSizeBytes) return [];
      const pageId = pageIdOf(image);
      // Page 0 is the header with the page space's state; every other page checks its own checksum.
      const problem =
        pageId === 0 ? headerImageProblem(api, image, path) : pageImageProblem(api, image, pageId);
      if (problem !== null) return [];
      hasher.update(image);
      images.push(image);
    }
    return hasher.digest() === header.batchChecksum ? images : [];
  } finally {
    await handle.close();
  }
}

/** Reads `into` whole from `position`, or up to the end of the file; returns the bytes read. */
export async function readFully(
  handle: Awaited<ReturnType<typeof open>>,
  into: Uint8Array,
  position: number,
  length = into.length,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * The page size a whole-looking double-write file's header names, or null if it has none (empty,
 * missing, or a header that fails its checksum). For a page file whose own header a crash tore: the
 * next open takes the page size from its options and rewrites page 0 from its image, and a check
 * must read the file the same way. The images themselves are checked by `readDoubleWriteImages`.
 */
export async function doubleWritePageSize(dir: string, headerBytes: number): Promise<number | null> {
  const api = await xxhashApi();
  const path = join(dir, doubleWriteFileName);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const first = Buffer.alloc(headerBytes);
    const read = await readFully(handle, first, 0);
    try {
      return decodeDoubleWriteHeader(api, first.subarray(0, read), path).pageSizeBytes;
    } catch (error) {
      if (error instanceof LightningError) return null;
      throw error;
    }
  } finally {
    await handle.close();
  }
}
