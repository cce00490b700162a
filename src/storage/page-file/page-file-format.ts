import { LightningError, messageWithoutCode } from '../../shared-memory/errors.js';
import { pPageId } from '../../shared-memory/page-layout.js';
import type { XxhashApi } from '../xxhash.js';

/**
 * The page file, format version 3: one partition's pages at `pageId * pageSizeBytes`, page 0 being
 * the file header. Little-endian.
 *
 *   header (page 0)  magic "LPGF" | format version u32 | page size u32 | partition u32 | xxh32 of those
 *                    and at byte 64, once pages were written back, the page space's state as of them:
 *                    magic "LPGS" | pages allocated u32 | free-list head u32 | free pages u32 |
 *                    redo LSN u64 | timestamp high-water u64 | xxh32 of those (version 2 added the
 *                    state, version 3 the redo LSN and the high-water)
 *   page             xxh32 of bytes [4, page size) u32 | page content, with at byte 20 the page id u32
 *                    (bytes 24..31 are reserved for a page LSN, for page-level redo: not stamped yet)
 *
 * The first word of a page on disk is its checksum; in memory the same word is the page's latch,
 * which is zeroed when a page is loaded. Bytes 20..31 are reserved in every page header the tree
 * writes (page-layout.ts), so the file needs no bytes of its own. The page id catches a page written
 * to the wrong place or read from the wrong offset; the checksum catches a torn or damaged page.
 *
 * The state is written with the pages, through the double-write file as page 0's image, so that the
 * allocator's free list and page count always match the pages in the file. The redo LSN is where the
 * log's replay starts over these pages: they hold the effect of every record of the partition below
 * it and of none at or above it (a checkpoint copies all its dirty pages at one moment between the
 * owner's passes).
 *
 * The double-write file (`pages.dwb`), written and synced before a checkpoint writes any page in
 * place, repairs a page torn by a crash during the in-place write:
 *
 *   header  magic "LDWB" | format version u32 | page size u32 | image count u32 | xxh32 of those |
 *           at byte 32: xxh32 of the images' (page id, checksum) pairs, the batch's own checksum
 *           (padded to one page)
 *   images  image count sealed pages, each verified on its own
 *
 * The images are one consistent set: a repair writes back all of them or none. Only a double-write
 * file that is whole (every image sound and of this batch, as the batch checksum says) was synced,
 * and only then can pages have been written in place; a part of it that survived a power loss while
 * it was written belongs to no state of the tree.
 */
export const pageFileFormatVersion = 3;
export const pageFileName = 'pages.lpg';
export const doubleWriteFileName = 'pages.dwb';

export const kPageChecksum = 0;
export const kPageId = pPageId;

const fileMagic = 0x4647_504c; // "LPGF" little-endian
const doubleWriteMagic = 0x4257_444c; // "LDWB" little-endian
const headerFieldBytes = 16;

export interface PageFileHeader {
  pageSizeBytes: number;
  partition: number;
}

/** What a tree's page allocator keeps beside its pages (the pool's header words, in memory). */
export interface PageSpaceState {
  /** Page ids handed out, page 0 included. */
  pagesAllocated: number;
  freeListHead: number;
  freePageCount: number;
}

/** What page 0 records beside the pages: the allocator's state, and where the log's replay starts. */
export interface PageSetState extends PageSpaceState {
  /** The pages hold every log record of the partition below this LSN, and none from it on. */
  redoLsn: number;
  /**
   * No cell in the pages carries a commit timestamp above this (0: none may). Heads keep the
   * timestamps open snapshots needed; after a restart the timestamp oracle must start above this, or
   * new snapshots would take those heads for newer than themselves.
   */
  timestampHigh: number;
}

const stateMagic = 0x5347_504c; // "LPGS" little-endian
const kStateBlock = 64;
const stateFieldBytes = 32;

function encodeHeader(
  api: XxhashApi,
  magic: number,
  fields: readonly number[],
  pageSizeBytes: number,
): Uint8Array {
  const page = new Uint8Array(pageSizeBytes);
  const view = new DataView(page.buffer);
  view.setUint32(0, magic, true);
  view.setUint32(4, pageFileFormatVersion, true);
  for (const [at, field] of fields.entries()) view.setUint32(8 + 4 * at, field, true);
  view.setUint32(headerFieldBytes, api.h32Raw(page.subarray(0, headerFieldBytes)), true);
  return page;
}

/** Reads a header's two fields after checking magic, version and checksum; `what` names the file. */
function decodeHeader(api: XxhashApi, magic: number, bytes: Uint8Array, what: string): [number, number] {
  if (bytes.length < headerFieldBytes + 4) throw corruption(`${what}: shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== magic) throw corruption(`${what}: bad magic number`);
  const version = view.getUint32(4, true);
  if (version !== pageFileFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `${what}: format version ${version}; this build reads version ${pageFileFormatVersion}`,
    );
  }
  if (view.getUint32(headerFieldBytes, true) !== api.h32Raw(bytes.subarray(0, headerFieldBytes))) {
    throw corruption(`${what}: header checksum mismatch`);
  }
  return [view.getUint32(8, true), view.getUint32(12, true)];
}

/** Page 0: the header, and the page space's state when pages are written back with it. */
export function encodePageFileHeader(
  api: XxhashApi,
  header: PageFileHeader,
  state: PageSetState | null = null,
): Uint8Array {
  const page = encodeHeader(api, fileMagic, [header.pageSizeBytes, header.partition], header.pageSizeBytes);
  if (state === null) return page;
  const view = new DataView(page.buffer);
  view.setUint32(kStateBlock, stateMagic, true);
  view.setUint32(kStateBlock + 4, state.pagesAllocated, true);
  view.setUint32(kStateBlock + 8, state.freeListHead, true);
  view.setUint32(kStateBlock + 12, state.freePageCount, true);
  setU64(view, kStateBlock + 16, state.redoLsn);
  setU64(view, kStateBlock + 24, state.timestampHigh);
  view.setUint32(
    kStateBlock + stateFieldBytes,
    api.h32Raw(page.subarray(kStateBlock, kStateBlock + stateFieldBytes)),
    true,
  );
  return page;
}

/** A u64 field as a safe integer (LSNs and timestamps stay below 2^53). */
function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

function getU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
}

/**
 * The page space's state in page 0 (checked with `decodePageFileHeader` first), or null if no page
 * was ever written back. A damaged state is ERR_CORRUPTION.
 */
export function decodePageSpaceState(api: XxhashApi, bytes: Uint8Array, path: string): PageSetState | null {
  if (bytes.length < kStateBlock + stateFieldBytes + 4)
    throw corruption(`page file ${path}: header page is short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(kStateBlock, true);
  if (magic === 0 && view.getUint32(kStateBlock + stateFieldBytes, true) === 0) return null;
  if (
    magic !== stateMagic ||
    view.getUint32(kStateBlock + stateFieldBytes, true) !==
      api.h32Raw(bytes.subarray(kStateBlock, kStateBlock + stateFieldBytes))
  ) {
    throw corruption(`page file ${path}: the page space's state is damaged (torn or overwritten)`);
  }
  return {
    pagesAllocated: view.getUint32(kStateBlock + 4, true),
    freeListHead: view.getUint32(kStateBlock + 8, true),
    freePageCount: view.getUint32(kStateBlock + 12, true),
    redoLsn: getU64(view, kStateBlock + 16),
    timestampHigh: getU64(view, kStateBlock + 24),
  };
}

/**
 * Why `image` is not a sound page 0 (header and state) of the file at `path`, or null if it is: the
 * error's message without its code, as `pageImageProblem` says why (callers show the code apart).
 */
export function headerImageProblem(api: XxhashApi, image: Uint8Array, path: string): string | null {
  const error = headerImageError(api, image, path);
  return error === null ? null : messageWithoutCode(error);
}

/** The error (ERR_CORRUPTION or ERR_FORMAT_VERSION) that `image` is not a sound page 0, or null. */
export function headerImageError(api: XxhashApi, image: Uint8Array, path: string): LightningError | null {
  try {
    decodePageFileHeader(api, image, path);
    decodePageSpaceState(api, image, path);
    return null;
  } catch (error) {
    if (error instanceof LightningError) return error;
    throw error;
  }
}

export function decodePageFileHeader(api: XxhashApi, bytes: Uint8Array, path: string): PageFileHeader {
  const [pageSizeBytes, partition] = decodeHeader(api, fileMagic, bytes, `page file ${path}`);
  return { pageSizeBytes, partition };
}

const kBatchChecksum = 32;

export function encodeDoubleWriteHeader(
  api: XxhashApi,
  pageSizeBytes: number,
  images: readonly Uint8Array[],
): Uint8Array {
  const page = encodeHeader(api, doubleWriteMagic, [pageSizeBytes, images.length], pageSizeBytes);
  new DataView(page.buffer).setUint32(kBatchChecksum, batchChecksum(api, images), true);
  return page;
}

/** The double-write file's page size, image count and batch checksum. */
export function decodeDoubleWriteHeader(
  api: XxhashApi,
  bytes: Uint8Array,
  path: string,
): { pageSizeBytes: number; imageCount: number; batchChecksum: number } {
  const [pageSizeBytes, imageCount] = decodeHeader(api, doubleWriteMagic, bytes, `double-write file ${path}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { pageSizeBytes, imageCount, batchChecksum: view.getUint32(kBatchChecksum, true) };
}

/**
 * A checksum of a whole set of images, in order: tells a set that was written whole from one a power
 * loss left partly written, even where a sound image of a former set survived in its place.
 */
export function batchChecksum(api: XxhashApi, images: readonly Uint8Array[]): number {
  const hasher = batchChecksumHasher(api);
  for (const image of images) hasher.update(image);
  return hasher.digest();
}

/** `batchChecksum` one image at a time: `update` each image in order, then `digest`. */
export function batchChecksumHasher(api: XxhashApi): ReturnType<XxhashApi['create32']> {
  return api.create32();
}

/** Stamps `image` (a copy of a frame) with its page id and checksum, ready to be written. */
export function sealPage(api: XxhashApi, image: Uint8Array, pageId: number): void {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  view.setUint32(kPageId, pageId, true);
  view.setUint32(kPageChecksum, api.h32Raw(image.subarray(4)), true);
}

/** Why `image` is not a sound copy of page `pageId`, or null if it is. */
export function pageImageProblem(api: XxhashApi, image: Uint8Array, pageId: number): string | null {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint32(kPageChecksum, true) !== api.h32Raw(image.subarray(4)))
    return 'checksum mismatch (torn or damaged)';
  const stored = view.getUint32(kPageId, true);
  if (stored !== pageId) return `holds page ${stored}`;
  return null;
}

/** The image's own page id (after a successful `pageImageProblem` check of it). */
export function pageIdOf(image: Uint8Array): number {
  return new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(kPageId, true);
}

export function corruption(message: string): LightningError {
  return new LightningError('ERR_CORRUPTION', message);
}
