import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import type { BufferPool } from '../../shared-memory/pool/buffer-pool.js';
import { writeFileDurably } from '../durable-file.js';
import { xxhashApi } from '../xxhash.js';
import { readDoubleWriteImages } from './double-write-images.js';
import {
  decodePageSpaceState,
  doubleWriteFileName,
  encodePageFileHeader,
  headerImageError,
  type PageFileHeader,
  pageFileName,
  pageIdOf,
  pageImageProblem,
} from './page-file-format.js';
import { exists, PageSetWriter, type PageSetWritten, withFile } from './page-set-writer.js';
/**
 * Creates `dir`'s page file holding only its header, and its empty double-write file, both durable
 * (names included). An existing page file is never overwritten.
 */
export async function createPageFile(dir: string, header: PageFileHeader): Promise<void> {
  const path = join(dir, pageFileName);
  if (await exists(path)) throw new LightningError('ERR_BAD_ARGUMENT', `page file ${path} already exists`);
  await writeFileDurably(join(dir, doubleWriteFileName), new Uint8Array(0));
  await writeFileDurably(path, encodePageFileHeader(await xxhashApi(), header));
}

/**
 * Writes every dirty page of `pool` to `dir`'s page file as one set, recording `redoLsn` (the log
 * position the pages reflect) with them: `PageSetWriter` open, capture and write in one call, for a
 * pool whose owner does nothing meanwhile, or whose changes meanwhile the next set writes.
 */
export async function writeDirtyPages(
  pool: BufferPool,
  dir: string,
  redoLsn: number,
  timestampHigh = 0,
): Promise<PageSetWritten> {
  const writer = await PageSetWriter.open(pool, dir);
  try {
    return await writer.write(writer.capture(redoLsn, timestampHigh));
  } finally {
    writer.close();
  }
}

/**
 * Puts back, at open, the images of a whole double-write file whose pages in place differ (a crash
 * tore them, or never wrote them), so that the page file holds the whole set. A double-write file
 * that is not whole (a torn header, an image missing or unsound, or the batch checksum not matching)
 * was never synced: the crash came while it was written, before any page was written in place, and
 * none of it is used, since a part of a set belongs to no state of the pages. Pages past the file's
 * end (a set writes page 0 before the pages it appends, so a crash can cut the file short, even
 * inside a page) are written there, extending the file. Returns the pages rewritten (with `write`
 * false, only counted: the pages that need it, for a read-only open). An empty
 * double-write file means the last checkpoint finished; a missing one is ERR_CORRUPTION
 * (createPageFile makes it with the page file).
 */
export async function repairTornPages(dir: string, pageSizeBytes: number, write = true): Promise<number> {
  const images = await readDoubleWriteImages(dir, pageSizeBytes);
  if (images.length === 0) return 0;
  const pagePath = join(dir, pageFileName);
  let repaired = 0;
  await withFile(pagePath, write ? 'r+' : 'r', async (handle) => {
    // Only the pages the area names are read: a page file may be larger than one Buffer can hold.
    const current = Buffer.alloc(pageSizeBytes);
    for (const image of images) {
      const pageId = pageIdOf(image);
      current.fill(0);
      await handle.read(current, 0, pageSizeBytes, pageId * pageSizeBytes);
      if (Buffer.compare(current, image) === 0) continue;
      if (write) await handle.write(image, 0, pageSizeBytes, pageId * pageSizeBytes);
      repaired++;
    }
    if (repaired > 0) await handle.datasync();
  });
  return repaired;
}

/**
 * Every page of the page file whose image is not sound, with why: a check for tests, of the file as
 * it is (after repairTornPages, say), the double-write file not consulted. Verify uses checkPageFile.
 * As there and at open, bytes past the pages the page set counts allocated are not looked at: nothing
 * reads them (a crash while the file grew leaves zero pages there).
 */
export async function pageFileProblems(dir: string, pageSizeBytes: number): Promise<string[]> {
  const api = await xxhashApi();
  const path = join(dir, pageFileName);
  const bytes = await readFile(path);
  const problems: string[] = [];
  // These lines carry no code apart, so the header's error keeps its code in front.
  const header = headerImageError(api, bytes.subarray(0, pageSizeBytes), path);
  if (header !== null) problems.push(`page 0 (the header): ${header.message}`);
  const state = header === null ? decodePageSpaceState(api, bytes.subarray(0, pageSizeBytes), path) : null;
  const end = state === null ? bytes.length : Math.min(bytes.length, state.pagesAllocated * pageSizeBytes);
  if (end % pageSizeBytes !== 0) problems.push(`length ${bytes.length} is not a whole number of pages`);
  for (let pageId = 1; (pageId + 1) * pageSizeBytes <= end; pageId++) {
    const image = bytes.subarray(pageId * pageSizeBytes, (pageId + 1) * pageSizeBytes);
    const problem = pageImageProblem(api, image, pageId);
    if (problem !== null) problems.push(`page ${pageId}: ${problem}`);
  }
  return problems;
}
