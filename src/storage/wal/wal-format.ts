import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import { keyBytesMax, valueBytesMax } from '../../shared-memory/limits.js';
import { xxhashApi } from '../xxhash.js';

/**
 * The on-disk layout of a partition's write-ahead log, and every limit of it, in one place.
 *
 * A partition's log is a directory of segment files named `wal-<first LSN as 16 lowercase hex
 * digits>.log`, so that sorting the names sorts the segments by LSN. Every number is little-endian.
 *
 * Segment header (32 bytes):
 *
 *     0  magic "LWAL"                    4 bytes
 *     4  format version                  u32 (1)
 *     8  partition id                    u32
 *    12  reserved, zero                  u32 (keeps the LSN 8-byte aligned)
 *    16  first LSN                       u64 (the LSN of the segment's first record, or of the next
 *                                             record if the segment holds none)
 *    24  reserved, zero                  u32
 *    28  header checksum                 u32 = xxh32(bytes 0..27, seed 0)
 *
 * Records follow the header back to back, each starting at an 8-byte aligned offset:
 *
 *     0  payload length                  u32 (of the payload alone; see below)
 *     4  checksum                        u32 = xxh32(bytes 8 .. 17 + payload length, seed 0),
 *                                             that is over [LSN u64 | type u8 | payload]
 *     8  LSN                             u64 (strictly increasing by 1 within a partition's log)
 *    16  type                            u8  (1 operation, 2 prepare, 3 decision)
 *    17  payload                         `payload length` bytes
 *        zero padding up to the next multiple of 8
 *
 * The length field holds the payload length rather than the record length because the padding
 * would otherwise hide the payload's exact size; the record's size on disk follows from it
 * (`recordBytes`). The length itself is not inside the checksum, but a wrong length moves the
 * checksummed range and so fails the checksum all the same.
 *
 * Magic and format version stay at offsets 0 and 4 in every future version, so that a reader can
 * tell "newer format" (ERR_FORMAT_VERSION) from "damaged" (ERR_CORRUPTION) before it trusts the rest.
 *
 * LSNs are u64 on disk but JavaScript numbers in memory: at a million records a second a partition
 * needs 285 years to pass 2^53, and numbers keep the hot path free of bigint arithmetic. A reader
 * treats an LSN above Number.MAX_SAFE_INTEGER as damage. LSN 0 means "no record": a log starts at 1.
 */

export const segmentMagic = 0x4c_41_57_4c; // "LWAL" read as a little-endian u32
export const walFormatVersion = 1;

export const segmentHeaderBytes = 32;
export const kHeaderMagic = 0;
export const kHeaderFormatVersion = 4;
export const kHeaderPartition = 8;
export const kHeaderFirstLsn = 16;
export const kHeaderChecksum = 28;

export const recordAlignBytes = 8;
export const recordHeaderBytes = 17;
export const kRecordPayloadLength = 0;
export const kRecordChecksum = 4;
export const kRecordLsn = 8;
export const kRecordType = 16;
export const kRecordPayload = 17;
/** The checksum covers the record from its LSN to the end of its payload. */
export const kRecordChecksumStart = kRecordLsn;

export const recordTypeOperation = 1;
/** Reserved for two-phase commit: a participant's durable PREPARE. */
export const recordTypePrepare = 2;
/** Reserved for two-phase commit: the coordinator's durable COMMIT/ABORT decision. */
export const recordTypeDecision = 3;
export type WalRecordType = typeof recordTypeOperation | typeof recordTypePrepare | typeof recordTypeDecision;

export function isWalRecordType(type: number): type is WalRecordType {
  return type === recordTypeOperation || type === recordTypePrepare || type === recordTypeDecision;
}

/** Partition ids are u32 in segment headers. */
export function validatePartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition > 0xffff_ffff) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `partition must be an integer in 0..2^32-1, got ${partition}`,
    );
  }
}

/** The first LSN of a partition's log; 0 means "no record". */
export const lsnFirst = 1;
export const lsnMax = Number.MAX_SAFE_INTEGER;

/** Largest payload of one record: a largest value plus a largest key plus 1 KiB for the operation's framing. */
export const recordPayloadBytesMax = 64 * 1024 * 1024 + 1024;
/** A segment is closed and the next one opened after the flush that takes it past this size. */
export const segmentTargetBytesDefault = 64 * 1024 * 1024;
export const segmentTargetBytesMax = segmentTargetBytesDefault;
/** Tests use small segments to exercise rotation; below this a segment would be mostly header. */
export const segmentTargetBytesMin = 4096;
/**
 * Most bytes one flush writes (what was appended since the previous flush). Bounding it bounds a
 * segment: a segment is rotated once it passes its target, so it never exceeds
 * `segmentBytesMax`, which is what lets a reader load a whole segment into memory.
 */
export const flushBytesMax = 128 * 1024 * 1024;
export const segmentBytesMax = segmentHeaderBytes + segmentTargetBytesMax + flushBytesMax;
/** The smallest record on disk: a header and an empty payload, padded. */
export const recordBytesMin = alignRecord(recordHeaderBytes);

/** Bytes a record with `payloadBytes` of payload takes on disk, padding included. */
export function recordBytes(payloadBytes: number): number {
  return alignRecord(recordHeaderBytes + payloadBytes);
}

function alignRecord(bytes: number): number {
  return Math.ceil(bytes / recordAlignBytes) * recordAlignBytes;
}

assert(segmentHeaderBytes % recordAlignBytes === 0, 'the first record is aligned');
assert(kHeaderChecksum + 4 === segmentHeaderBytes, 'the header checksum is the header last field');
assert(kRecordPayload === recordHeaderBytes, 'the payload follows the record header');
assert(recordPayloadBytesMax >= valueBytesMax + keyBytesMax, 'a largest operation fits one record');
assert(recordBytes(recordPayloadBytesMax) <= flushBytesMax, 'a largest record fits one flush');
assert(segmentBytesMax < 2 ** 31, 'segment offsets are small integers and a segment fits a Buffer');
assert(segmentTargetBytesMin > segmentHeaderBytes + recordBytesMin, 'a smallest segment holds a record');

// ---------------------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------------------

/** xxh32 of a byte range with seed 0 (xxhash-wasm's `h32Raw`). */
export type H32Raw = (input: Uint8Array, seed?: number) => number;

let hasherPromise: Promise<H32Raw> | undefined;

/**
 * The xxh32 function, loaded once per thread: xxhash-wasm's factory compiles a WebAssembly module,
 * which is too slow to repeat per segment, and it is async, so callers await it once when they open.
 */
export function loadH32Raw(): Promise<H32Raw> {
  hasherPromise ??= xxhashApi().then((api) => api.h32Raw);
  return hasherPromise;
}

/** The checksum of the record at `offset` whose payload is `payloadBytes` long. */
export function recordChecksum(
  h32Raw: H32Raw,
  bytes: Uint8Array,
  offset: number,
  payloadBytes: number,
): number {
  return h32Raw(bytes.subarray(offset + kRecordChecksumStart, offset + kRecordPayload + payloadBytes), 0);
}

// ---------------------------------------------------------------------------------------------------
// Segment names and headers
// ---------------------------------------------------------------------------------------------------

const segmentNamePattern = /^wal-([0-9a-f]{16})\.log$/;

export function segmentFileName(firstLsn: number): string {
  assert(Number.isSafeInteger(firstLsn) && firstLsn >= 0, 'an LSN is a non-negative safe integer');
  return `wal-${firstLsn.toString(16).padStart(16, '0')}.log`;
}

/**
 * The first LSN a segment's name claims, or null if the name is not a segment's. A name whose LSN
 * does not fit a safe integer also returns null: such a segment cannot have been written by us.
 */
export function parseSegmentFileName(name: string): number | null {
  const match = segmentNamePattern.exec(name);
  if (match === null) return null;
  const lsn = Number.parseInt(match[1]!, 16);
  return Number.isSafeInteger(lsn) ? lsn : null;
}

export interface SegmentHeader {
  readonly formatVersion: number;
  readonly partition: number;
  readonly firstLsn: number;
}

export function encodeSegmentHeader(h32Raw: H32Raw, partition: number, firstLsn: number): Buffer {
  assert(Number.isSafeInteger(firstLsn) && firstLsn >= lsnFirst, 'a segment starts at a valid LSN');
  const header = Buffer.alloc(segmentHeaderBytes);
  header.writeUInt32LE(segmentMagic, kHeaderMagic);
  header.writeUInt32LE(walFormatVersion, kHeaderFormatVersion);
  header.writeUInt32LE(partition, kHeaderPartition);
  writeU64(header, kHeaderFirstLsn, firstLsn);
  header.writeUInt32LE(h32Raw(header.subarray(0, kHeaderChecksum), 0), kHeaderChecksum);
  return header;
}

/** What is wrong with a segment header: ERR_CORRUPTION, or ERR_FORMAT_VERSION for a newer format. */
export interface SegmentHeaderProblem {
  readonly code: 'ERR_CORRUPTION' | 'ERR_FORMAT_VERSION';
  readonly reason: string;
}

/**
 * Decodes and checks the header at the start of `bytes` (which must hold at least the header):
 * magic, format version, checksum, then the partition it belongs to. Magic and version are checked
 * before the checksum because a newer format may checksum its header differently.
 */
export function decodeSegmentHeader(
  h32Raw: H32Raw,
  bytes: Buffer,
  partition: number,
): SegmentHeader | SegmentHeaderProblem {
  assert(bytes.length >= segmentHeaderBytes, 'the caller read a whole header');
  if (bytes.readUInt32LE(kHeaderMagic) !== segmentMagic) {
    return { code: 'ERR_CORRUPTION', reason: 'not a WAL segment (bad magic)' };
  }
  const formatVersion = bytes.readUInt32LE(kHeaderFormatVersion);
  if (formatVersion !== walFormatVersion) {
    return {
      code: 'ERR_FORMAT_VERSION',
      reason: `WAL format version ${formatVersion}; this build reads version ${walFormatVersion}`,
    };
  }
  const stored = bytes.readUInt32LE(kHeaderChecksum);
  if (stored !== h32Raw(bytes.subarray(0, kHeaderChecksum), 0)) {
    return { code: 'ERR_CORRUPTION', reason: 'segment header checksum mismatch' };
  }
  const headerPartition = bytes.readUInt32LE(kHeaderPartition);
  if (headerPartition !== partition) {
    return {
      code: 'ERR_CORRUPTION',
      reason: `segment belongs to partition ${headerPartition}, not partition ${partition}`,
    };
  }
  const firstLsn = readU64(bytes, kHeaderFirstLsn);
  if (firstLsn < lsnFirst) {
    return { code: 'ERR_CORRUPTION', reason: 'segment header has an impossible first LSN' };
  }
  return { formatVersion, partition: headerPartition, firstLsn };
}

export function isSegmentHeaderProblem(
  value: SegmentHeader | SegmentHeaderProblem,
): value is SegmentHeaderProblem {
  return 'reason' in value;
}

// ---------------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------------

/**
 * Frames one record into `target` at `offset` (which the caller sized with `recordBytes`) and
 * returns the offset after it. The padding is zeroed so that a segment's bytes depend only on what
 * was appended, never on what a reused buffer held before.
 */
export function encodeRecord(
  h32Raw: H32Raw,
  target: Buffer,
  offset: number,
  lsn: number,
  type: WalRecordType,
  payload: Uint8Array,
): number {
  const end = offset + recordBytes(payload.length);
  assert(offset % recordAlignBytes === 0 && end <= target.length, 'a record is framed in bounds');
  target.writeUInt32LE(payload.length, offset + kRecordPayloadLength);
  writeU64(target, offset + kRecordLsn, lsn);
  target[offset + kRecordType] = type;
  target.set(payload, offset + kRecordPayload);
  target.fill(0, offset + kRecordPayload + payload.length, end);
  target.writeUInt32LE(recordChecksum(h32Raw, target, offset, payload.length), offset + kRecordChecksum);
  return end;
}

/** Reads a record's LSN, or -1 if it does not fit a safe integer (which only damage produces). */
export function readRecordLsn(bytes: Buffer, offset: number): number {
  return readU64(bytes, offset + kRecordLsn);
}

/** Writes a safe integer as a u64 as two u32 halves, which is cheaper than a bigint per record. */
function writeU64(bytes: Buffer, offset: number, value: number): void {
  bytes.writeUInt32LE(value % 2 ** 32, offset);
  bytes.writeUInt32LE(Math.floor(value / 2 ** 32), offset + 4);
}

/** Reads a u64, or -1 if it does not fit a safe integer. */
function readU64(bytes: Buffer, offset: number): number {
  const high = bytes.readUInt32LE(offset + 4);
  if (high > 0x1f_ffff) return -1;
  return high * 2 ** 32 + bytes.readUInt32LE(offset);
}
