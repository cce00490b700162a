import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import { keyBytesMax, valueBytesMax } from '../../shared-memory/limits.js';
import type { XxhashApi } from '../xxhash.js';

/**
 * The checkpoint file format, version 1. A checkpoint holds one partition's sorted entries as of a
 * fuzzy walk of its tree, and the WAL position from which replay must begin to bring it up to date.
 * All integers are little-endian.
 *
 *   header  magic "LCKP" | format version u32 | partition u32 | start LSN u64 | xxh32 of the above
 *   block*  compressed length u32 | uncompressed length u32 | entry count u32 |
 *           xxh32 of the compressed bytes | compressed bytes (an lz4 block with its u32 size prefix)
 *   footer  magic "LEND" | block count u32 | entry count u64 (lo, hi u32) |
 *           uncompressed bytes u64 (lo, hi u32) | xxh32 of the above, seeded with the header checksum
 *
 * A block's uncompressed content is its entries back to back: key length u16 | value length u32 |
 * key | value, keys strictly ascending across the whole file. The block checksum covers only the
 * compressed bytes; every field of the block header is cross-checked instead (the lz4 size prefix
 * must equal the uncompressed length, decoding must yield exactly the entry count), so any single
 * corrupted byte is still detected. Seeding the footer checksum with the header's ties the footer to
 * its file, and a file is only complete when it ends with a valid footer: a reader checks it before
 * trusting anything else, so a truncated file is "incomplete", never a silently shorter checkpoint.
 */
export const checkpointFormatVersion = 1;

/** Byte offsets in the file header. */
export const kHeaderMagic = 0;
export const kHeaderFormatVersion = 4;
export const kHeaderPartition = 8;
export const kHeaderStartLsn = 12;
export const kHeaderChecksum = 20;
export const checkpointHeaderBytes = 24;

/** Byte offsets in a block header; the compressed bytes follow it. */
export const kBlockCompressedBytes = 0;
export const kBlockUncompressedBytes = 4;
export const kBlockEntryCount = 8;
export const kBlockChecksum = 12;
export const blockHeaderBytes = 16;

/** Byte offsets in the footer, which ends the file. */
export const kFooterMagic = 0;
export const kFooterBlockCount = 4;
export const kFooterEntryCount = 8;
export const kFooterUncompressedBytes = 16;
export const kFooterChecksum = 24;
export const checkpointFooterBytes = 28;

export const headerMagic = Buffer.from('LCKP', 'latin1');
export const footerMagic = Buffer.from('LEND', 'latin1');

/** Per-entry header inside a block: key length u16, value length u32. */
export const entryHeaderBytes = 6;
/**
 * A block is cut once it holds about this many uncompressed bytes: large enough for lz4 to find
 * repeats across neighbouring keys and to amortize a syscall and a checksum, small enough that a
 * reader holds little memory and one block's compression is a short job on the libuv pool.
 */
export const blockTargetBytes = 64 * 1024;
/** Largest entry the engine can hold; such an entry gets a block of its own. */
export const entryBytesMax = entryHeaderBytes + keyBytesMax + valueBytesMax;
export const blockBytesMax = Math.max(blockTargetBytes, entryBytesMax);
/** lz4-napi prefixes each compressed block with its uncompressed size as a u32. */
export const lz4SizePrefixBytes = 4;

/** Worst-case lz4 block output for `bytes` of input (LZ4_COMPRESSBOUND), plus the size prefix. */
export function compressedBytesMax(bytes: number): number {
  return lz4SizePrefixBytes + bytes + Math.floor(bytes / 255) + 16;
}

export const u32Max = 0xffff_ffff;
export const lsnMax = (1n << 64n) - 1n;

assert(keyBytesMax <= 0xffff, 'a key length fits the u16 of an entry header');
assert(valueBytesMax <= u32Max, 'a value length fits the u32 of an entry header');
assert(compressedBytesMax(blockBytesMax) <= u32Max, 'a block length fits the u32 of a block header');

export interface CheckpointHeader {
  partition: number;
  /** The WAL position from which replay must begin to bring this checkpoint up to date. */
  startLsn: bigint;
}

export interface CheckpointFooter {
  blockCount: number;
  entryCount: number;
  uncompressedBytes: number;
}

const fileNamePattern = /^checkpoint-([0-9a-f]{16})\.ckp(\.tmp)?$/;

/** `checkpoint-<start LSN as 16 hex digits>.ckp`: names sort in LSN order. */
export function checkpointFileName(startLsn: bigint): string {
  return `checkpoint-${startLsn.toString(16).padStart(16, '0')}.ckp`;
}

export function temporaryFileName(startLsn: bigint): string {
  return `${checkpointFileName(startLsn)}.tmp`;
}

/** The start LSN a checkpoint file name carries, or null if the name is not a checkpoint's. */
export function parseCheckpointFileName(name: string): { startLsn: bigint; temporary: boolean } | null {
  const match = fileNamePattern.exec(name);
  if (match === null) return null;
  return { startLsn: BigInt(`0x${match[1]!}`), temporary: match[2] !== undefined };
}

/** The error for a damaged checkpoint: it names the file and the byte offset of the damaged part. */
export function corruption(file: string, offset: number, what: string, cause?: unknown): LightningError {
  return new LightningError('ERR_CORRUPTION', `${file}: at byte offset ${offset}: ${what}`, { cause });
}

/** The error for a checkpoint without a valid footer: its writer never finished it. */
export function incomplete(file: string, why: string): LightningError {
  return new LightningError('ERR_CORRUPTION', `${file}: incomplete checkpoint (${why})`);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a non-negative safe integer as two u32 (low word first), so no BigInt on the hot path. */
function setU64(dataView: DataView, offset: number, value: number): void {
  dataView.setUint32(offset, value % 0x1_0000_0000, true);
  dataView.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

/** Reads two u32 as one integer; null if it exceeds 2^53, which no valid checkpoint reaches. */
function getU64(dataView: DataView, offset: number): number | null {
  const value = dataView.getUint32(offset + 4, true) * 0x1_0000_0000 + dataView.getUint32(offset, true);
  return Number.isSafeInteger(value) ? value : null;
}

export function encodeHeader(api: XxhashApi, header: CheckpointHeader): Buffer {
  const bytes = Buffer.alloc(checkpointHeaderBytes);
  const dataView = view(bytes);
  headerMagic.copy(bytes, kHeaderMagic);
  dataView.setUint32(kHeaderFormatVersion, checkpointFormatVersion, true);
  dataView.setUint32(kHeaderPartition, header.partition, true);
  dataView.setBigUint64(kHeaderStartLsn, header.startLsn, true);
  dataView.setUint32(kHeaderChecksum, api.h32Raw(bytes.subarray(0, kHeaderChecksum)), true);
  return bytes;
}

/**
 * Verifies and decodes a file header. The version is checked before the checksum because a later
 * format may lay out (and checksum) its header differently; only magic and version are fixed forever.
 */
export function decodeHeader(
  api: XxhashApi,
  bytes: Uint8Array,
  file: string,
): CheckpointHeader & { checksum: number } {
  if (bytes.length < checkpointHeaderBytes) throw incomplete(file, 'shorter than its header');
  const dataView = view(bytes);
  if (!headerMagic.equals(bytes.subarray(kHeaderMagic, kHeaderMagic + 4))) {
    throw corruption(file, kHeaderMagic, 'not a checkpoint file (bad magic)');
  }
  const version = dataView.getUint32(kHeaderFormatVersion, true);
  if (version !== checkpointFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `${file}: checkpoint format version ${version}; this build reads version ${checkpointFormatVersion}`,
    );
  }
  const checksum = dataView.getUint32(kHeaderChecksum, true);
  if (checksum !== api.h32Raw(bytes.subarray(0, kHeaderChecksum))) {
    throw corruption(file, 0, 'header checksum mismatch');
  }
  return {
    partition: dataView.getUint32(kHeaderPartition, true),
    startLsn: dataView.getBigUint64(kHeaderStartLsn, true),
    checksum,
  };
}

export function encodeFooter(api: XxhashApi, footer: CheckpointFooter, headerChecksum: number): Buffer {
  const bytes = Buffer.alloc(checkpointFooterBytes);
  const dataView = view(bytes);
  footerMagic.copy(bytes, kFooterMagic);
  dataView.setUint32(kFooterBlockCount, footer.blockCount, true);
  setU64(dataView, kFooterEntryCount, footer.entryCount);
  setU64(dataView, kFooterUncompressedBytes, footer.uncompressedBytes);
  const checksum = api.h32Raw(bytes.subarray(0, kFooterChecksum), headerChecksum);
  dataView.setUint32(kFooterChecksum, checksum, true);
  return bytes;
}

/** Verifies and decodes the footer; any failure means the file was never completely written. */
export function decodeFooter(
  api: XxhashApi,
  bytes: Uint8Array,
  headerChecksum: number,
  file: string,
): CheckpointFooter {
  assert(bytes.length === checkpointFooterBytes, 'footer read whole');
  const dataView = view(bytes);
  if (!footerMagic.equals(bytes.subarray(kFooterMagic, kFooterMagic + 4))) {
    throw incomplete(file, 'no footer at the end of the file');
  }
  const checksum = api.h32Raw(bytes.subarray(0, kFooterChecksum), headerChecksum);
  if (dataView.getUint32(kFooterChecksum, true) !== checksum) {
    throw incomplete(file, 'footer checksum mismatch');
  }
  const entryCount = getU64(dataView, kFooterEntryCount);
  const uncompressedBytes = getU64(dataView, kFooterUncompressedBytes);
  if (entryCount === null || uncompressedBytes === null) {
    throw incomplete(file, 'footer counts out of range');
  }
  return { blockCount: dataView.getUint32(kFooterBlockCount, true), entryCount, uncompressedBytes };
}

export function encodeBlockHeader(
  compressed: Uint8Array,
  uncompressedBytes: number,
  entryCount: number,
  api: XxhashApi,
): Buffer {
  const bytes = Buffer.alloc(blockHeaderBytes);
  const dataView = view(bytes);
  dataView.setUint32(kBlockCompressedBytes, compressed.length, true);
  dataView.setUint32(kBlockUncompressedBytes, uncompressedBytes, true);
  dataView.setUint32(kBlockEntryCount, entryCount, true);
  dataView.setUint32(kBlockChecksum, api.h32Raw(compressed), true);
  return bytes;
}

export interface BlockHeader {
  compressedBytes: number;
  uncompressedBytes: number;
  entryCount: number;
  checksum: number;
}

/** Decodes a block header as stored; the reader checks each field against what follows. */
export function decodeBlockHeader(bytes: Uint8Array): BlockHeader {
  assert(bytes.length >= blockHeaderBytes, 'block header read whole');
  const dataView = view(bytes);
  return {
    compressedBytes: dataView.getUint32(kBlockCompressedBytes, true),
    uncompressedBytes: dataView.getUint32(kBlockUncompressedBytes, true),
    entryCount: dataView.getUint32(kBlockEntryCount, true),
    checksum: dataView.getUint32(kBlockChecksum, true),
  };
}
