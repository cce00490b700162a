import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import type { BufferPool } from '../../shared-memory/pool/buffer-pool.js';
import { syncDirectory, writeFileDurably } from '../durable-file.js';
import { fileLayer, type LayerFileHandle } from '../file-layer.js';
import { xxhashApi } from '../xxhash.js';
import {
  batchChecksum,
  decodeDoubleWriteHeader,
  decodePageFileHeader,
  doubleWriteFileName,
  encodeDoubleWriteHeader,
  encodePageFileHeader,
  headerImageProblem,
  type PageFileHeader,
  pageFileName,
  pageIdOf,
  pageImageProblem,
  pageLsnOf,
  sealPage,
} from './page-file-format.js';

export interface DirtyPagesWritten {
  /** Pages written in place (and first to the double-write file). */
  pagesWritten: number;
  /** Dirty pages left dirty because their LSN is past the durable LSN: never written ahead of the log. */
  pagesAhead: number;
  /** Pages written but changed meanwhile: they stay dirty for the next checkpoint. */
  pagesChangedMeanwhile: number;
}

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
 * Writes the pool's dirty pages whose page LSN the log has made durable: first every image to the
 * double-write file and fdatasync, then each in place and fdatasync, then the double-write file is
 * emptied. A crash while pages are written in place leaves them torn, and `repairTornPages` puts the
 * images back; a crash while the double-write file is written leaves the page file as it was. Owner
 * only: the images are copied synchronously between its writes.
 *
 * Why a double-write area rather than a full page image in the log on each page's first change after
 * a checkpoint: the log stays a log of operations, its format and the replication stream do not
 * change, and the cost (each dirty page written twice per checkpoint) falls on the background
 * checkpoint instead of on the first write to each page, which the caller waits for.
 */
export async function writeDirtyPages(
  pool: BufferPool,
  dir: string,
  durableLsn: number,
): Promise<DirtyPagesWritten> {
  if (!Number.isSafeInteger(durableLsn) || durableLsn < 0) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `durableLsn must be a safe integer >= 0, got ${String(durableLsn)}`,
    );
  }
  // Two at once would interleave their double-write files and each mark the other's pages clean.
  if (checkpointsRunning.has(pool)) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'writeDirtyPages: this pool is already being written back');
  }
  checkpointsRunning.add(pool);
  try {
    const header = await checkPageFile(dir, pool.pageSizeBytes);
    return await writeDirtyPagesOnce(pool, dir, durableLsn, header);
  } finally {
    checkpointsRunning.delete(pool);
  }
}

const checkpointsRunning = new WeakSet<BufferPool>();

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

async function writeDirtyPagesOnce(
  pool: BufferPool,
  dir: string,
  durableLsn: number,
  header: PageFileHeader,
): Promise<DirtyPagesWritten> {
  const api = await xxhashApi();
  const pageSizeBytes = pool.pageSizeBytes;
  const images: { pageId: number; version: number; image: Uint8Array }[] = [];
  let pagesAhead = 0;
  pool.forEachDirty((pageId, offset) => {
    const image = pool.u8.slice(offset, offset + pageSizeBytes);
    if (pageLsnOf(image) > durableLsn) {
      pagesAhead++;
      return;
    }
    sealPage(api, image, pageId);
    images.push({ pageId, version: pool.versionOf(pageId), image });
  });
  if (images.length === 0) return { pagesWritten: 0, pagesAhead, pagesChangedMeanwhile: 0 };
  // The allocator's state as of the same moment as the pages, written with them as page 0.
  const pagesWritten = images.length;
  images.push({ pageId: 0, version: 0, image: encodePageFileHeader(api, header, pool.spaceState()) });
  images.sort((a, b) => a.pageId - b.pageId);
  const layer = fileLayer();
  const doubleWritePath = join(dir, doubleWriteFileName);
  // createPageFile made it; if it is gone, its new name must be durable before any page is written.
  const doubleWriteIsNew = !(await exists(doubleWritePath));
  await withFile(doubleWritePath, 'w', async (handle) => {
    await handle.writev(
      [
        encodeDoubleWriteHeader(
          api,
          pageSizeBytes,
          images.map((i) => i.image),
        ),
        ...images.map((i) => i.image),
      ],
      0,
    );
    await handle.datasync();
  });
  if (doubleWriteIsNew) await syncDirectory(dir);
  await withFile(join(dir, pageFileName), 'r+', async (handle) => {
    for (const { pageId, image } of images)
      await handle.write(image, 0, pageSizeBytes, pageId * pageSizeBytes);
    await handle.datasync();
  });
  // Emptied so that open() has nothing to repair; if this is lost, repairing writes the same images.
  await (await layer.open(doubleWritePath, 'w')).close();
  let pagesChangedMeanwhile = 0;
  for (const { pageId, version } of images) {
    if (pageId !== 0 && !pool.markCleanIf(pageId, version)) pagesChangedMeanwhile++;
  }
  return { pagesWritten, pagesAhead, pagesChangedMeanwhile };
}

/**
 * Puts back, at open, the images of a whole double-write file whose pages in place differ (a crash
 * tore them, or never wrote them), so that the page file holds the whole set. A double-write file
 * that is not whole (a torn header, an image missing or unsound, or the batch checksum not matching)
 * was never synced: the crash came while it was written, before any page was written in place, and
 * none of it is used, since a part of a set belongs to no state of the pages. Returns the pages
 * rewritten. An empty double-write file means the last checkpoint finished; a missing one is
 * ERR_CORRUPTION (createPageFile makes it with the page file).
 */
export async function repairTornPages(dir: string, pageSizeBytes: number): Promise<number> {
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
  if (bytes.length === 0) return 0;
  let header: { pageSizeBytes: number; imageCount: number; batchChecksum: number };
  try {
    header = decodeDoubleWriteHeader(api, bytes.subarray(0, pageSizeBytes), path);
  } catch (error) {
    // A torn header: the crash came before the file was synced, so no page was written in place.
    if (error instanceof LightningError && error.code === 'ERR_CORRUPTION') return 0;
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
    if (image.length !== pageSizeBytes) return 0;
    const pageId = pageIdOf(image);
    // Page 0 is the header with the page space's state; every other page checks its own checksum.
    const problem =
      pageId === 0 ? headerImageProblem(api, image, path) : pageImageProblem(api, image, pageId);
    if (problem !== null) return 0;
    images.push(image);
  }
  if (batchChecksum(api, images) !== header.batchChecksum) return 0;
  const pagePath = join(dir, pageFileName);
  const inPlace = await readFile(pagePath);
  let repaired = 0;
  await withFile(pagePath, 'r+', async (handle) => {
    for (const image of images) {
      const pageId = pageIdOf(image);
      const current = inPlace.subarray(pageId * pageSizeBytes, (pageId + 1) * pageSizeBytes);
      if (Buffer.compare(current, image) === 0) continue;
      await handle.write(image, 0, pageSizeBytes, pageId * pageSizeBytes);
      repaired++;
    }
    if (repaired > 0) await handle.datasync();
  });
  return repaired;
}

/** Every page of the page file whose image is not sound, with why: a check for verify and tests. */
export async function pageFileProblems(dir: string, pageSizeBytes: number): Promise<string[]> {
  const api = await xxhashApi();
  const bytes = await readFile(join(dir, pageFileName));
  const problems: string[] = [];
  if (bytes.length % pageSizeBytes !== 0)
    problems.push(`length ${bytes.length} is not a whole number of pages`);
  const header = headerImageProblem(api, bytes.subarray(0, pageSizeBytes), join(dir, pageFileName));
  if (header !== null) problems.push(`page 0 (the header): ${header}`);
  for (let pageId = 1; (pageId + 1) * pageSizeBytes <= bytes.length; pageId++) {
    const image = bytes.subarray(pageId * pageSizeBytes, (pageId + 1) * pageSizeBytes);
    const problem = pageImageProblem(api, image, pageId);
    if (problem !== null) problems.push(`page ${pageId}: ${problem}`);
  }
  return problems;
}

async function withFile(path: string, flags: 'w' | 'r+', use: (handle: LayerFileHandle) => Promise<void>) {
  const handle = await fileLayer().open(path, flags);
  try {
    await use(handle);
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
