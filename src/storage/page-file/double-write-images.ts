import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { xxhashApi } from '../xxhash.js';
import {
  batchChecksum,
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
 * belongs to a state of the pages. A missing file is ERR_CORRUPTION (createPageFile makes it with the
 * page file); one of another page size than the page file's is ERR_CORRUPTION too.
 */
export async function readDoubleWriteImages(dir: string, pageSizeBytes: number): Promise<Uint8Array[]> {
  const api = await xxhashApi();
  const path = join(dir, doubleWriteFileName);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LightningError('ERR_CORRUPTION', `double-write file ${path} is missing`);
    }
    throw error;
  }
  if (bytes.length === 0) return [];
  let header: { pageSizeBytes: number; imageCount: number; batchChecksum: number };
  try {
    header = decodeDoubleWriteHeader(api, bytes.subarray(0, pageSizeBytes), path);
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
  const images: Uint8Array[] = [];
  for (let at = 1; at <= header.imageCount; at++) {
    const image = bytes.subarray(at * pageSizeBytes, (at + 1) * pageSizeBytes);
    if (image.length !== pageSizeBytes) return [];
    const pageId = pageIdOf(image);
    // Page 0 is the header with the page space's state; every other page checks its own checksum.
    const problem =
      pageId === 0 ? headerImageProblem(api, image, path) : pageImageProblem(api, image, pageId);
    if (problem !== null) return [];
    images.push(image);
  }
  return batchChecksum(api, images) === header.batchChecksum ? images : [];
}
