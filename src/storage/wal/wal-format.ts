import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import { keyBytesMax, valueBytesMax } from '../../shared-memory/limits.js';
import { xxhashApi } from '../xxhash.js';

/**
 * The on-disk layout of the write-ahead logs, and every limit of them, in one place.
 *
 * Each owner worker writes ONE log per run for all the partitions it owns (as RocksDB shares one WAL
 * across column families), so a batch costs one write and at most one fdatasync per owner. A log is
 * named by the run's epoch (one more than any epoch already in the directory when the database
 * opened) and the worker's index; it is a sequence of segment files in `<db>/wal/`, named
 * `wal-<epoch as 16 hex digits>-<worker as 4 hex digits>-<segment ordinal as 8 hex digits>.log`, so
 * that sorting the names sorts the logs by run and each log's segments in order. Every number is
 * little-endian.
 *
 * Every record carries its partition and that partition's LSN: a per-partition sequence, 1, 2, 3, ...
 * across all the logs the partition was ever written to. A checkpoint records the LSN its replay
 * starts at; recovery reads every log, routes records by partition and replays each partition in
 * LSN order, which must be gap-free from the checkpoint's start.
 *
 * Segment header (32 bytes):
 *
 *     0  magic "LWAL"                    4 bytes
 *     4  format version                  u32 (2)
 *     8  worker index                    u32 (the log's writer in its run)
 *    12  segment ordinal                 u32 (0 for a log's first segment, then 1, 2, ...)
 *    16  run epoch                       u64
 *    24  reserved, zero                  u32
 *    28  header checksum                 u32 = xxh32(bytes 0..27, seed 0)
 *
 * Records follow the header back to back, each starting at an 8-byte aligned offset:
 *
 *     0  payload length                  u32 (of the payload alone; see below)
 *     4  checksum                        u32 = xxh32(bytes 8 .. 21 + payload length, seed 0),
 *                                             that is over [LSN u64 | partition u32 | type u8 | payload]
 *     8  LSN                             u64 (the partition's sequence: +1 per record of the partition)
 *    16  partition                       u32
 *    20  type                            u8  (1 operation, 2 prepare, 3 decision)
 *    21  payload                         `payload length` bytes
 *        zero padding up to the next multiple of 8
 *
 * The length field holds the payload length rather than the record length because the padding
 * would otherwise hide the payload's exact size; the record's size on disk follows from it
 * (`recordBytes`). The length itself is not inside the checksum, but a wrong length moves the
 * checksummed range and so fails the checksum all the same.
 *
 * Magic and format version stay at offsets 0 and 4 in every version, so that a reader can tell
 * "another format" (ERR_FORMAT_VERSION) from "damaged" (ERR_CORRUPTION) before it trusts the rest.
 * Version 1 was one log per partition under `partitions/NNNN/wal/`; this build does not read it.
 *
 * LSNs are u64 on disk but JavaScript numbers in memory: at a million records a second a partition
 * needs 285 years to pass 2^53, and numbers keep the hot path free of bigint arithmetic. A reader
 * treats an LSN above Number.MAX_SAFE_INTEGER as damage. LSN 0 means "no record": a partition's
 * sequence starts at 1. Epochs are safe integers for the same reason.
 */

export const segmentMagic = 0x4c_41_57_4c; // "LWAL" read as a little-endian u32
export const walFormatVersion = 2;
/** The per-partition layout this format replaced: met only to say how to upgrade. */
export const walFormatVersionPerPartition = 1;

export const segmentHeaderBytes = 32;
export const kHeaderMagic = 0;
export const kHeaderFormatVersion = 4;
export const kHeaderWorker = 8;
export const kHeaderOrdinal = 12;
export const kHeaderEpoch = 16;
export const kHeaderChecksum = 28;

export const recordAlignBytes = 8;
export const recordHeaderBytes = 21;
export const kRecordPayloadLength = 0;
export const kRecordChecksum = 4;
export const kRecordLsn = 8;
export const kRecordPartition = 16;
export const kRecordType = 20;
export const kRecordPayload = 21;
/** The checksum covers the record from its LSN to the end of its payload. */
export const kRecordChecksumStart = kRecordLsn;

export const recordTypeOperation = 1;
/** Two-phase commit: a participant's durable PREPARE. */
export const recordTypePrepare = 2;
/** Two-phase commit: a participant's record of the COMMIT/ABORT decision it applied. */
export const recordTypeDecision = 3;
export type WalRecordType = typeof recordTypeOperation | typeof recordTypePrepare | typeof recordTypeDecision;

/** Worker indexes are 4 hex digits in segment names. */
export const workerIndexMax = 0xffff;
/** Segment ordinals are u32 in headers and 8 hex digits in names. */
export const segmentOrdinalMax = 0xffff_ffff;

/** One log: the run that wrote it and the worker that wrote it in that run. */
export interface LogId {
  readonly epoch: number;
  readonly worker: number;
}

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
assert(kRecordType === kRecordPartition + 4, 'the type follows the partition');
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

const segmentNamePattern = /^wal-([0-9a-f]{16})-([0-9a-f]{4})-([0-9a-f]{8})\.log$/;
/** How version 1 named a partition's segments: met only to report the old layout. */
const perPartitionSegmentNamePattern = /^wal-[0-9a-f]{16}\.log$/;

/** Validates a log's id: a positive safe-integer epoch and a worker index that fits a name. */
export function validateLogId(log: LogId): void {
  if (!Number.isSafeInteger(log.epoch) || log.epoch < 1) {
    throw new LightningError('ERR_BAD_ARGUMENT', `a run epoch is a safe integer >= 1, got ${log.epoch}`);
  }
  if (!Number.isInteger(log.worker) || log.worker < 0 || log.worker > workerIndexMax) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `a worker index is an integer in 0..${workerIndexMax}, got ${log.worker}`,
    );
  }
}

export function segmentFileName(log: LogId, ordinal: number): string {
  assert(Number.isSafeInteger(log.epoch) && log.epoch >= 1, 'an epoch is a positive safe integer');
  assert(Number.isInteger(ordinal) && ordinal >= 0 && ordinal <= segmentOrdinalMax, 'an ordinal is a u32');
  const epoch = log.epoch.toString(16).padStart(16, '0');
  const worker = log.worker.toString(16).padStart(4, '0');
  return `wal-${epoch}-${worker}-${ordinal.toString(16).padStart(8, '0')}.log`;
}

/** What a segment's name claims. */
export interface SegmentName extends LogId {
  readonly ordinal: number;
}

/**
 * The log and ordinal a segment's name claims, or null if the name is not a segment's. A name whose
 * epoch does not fit a safe integer also returns null: such a segment cannot have been written by us.
 */
export function parseSegmentFileName(name: string): SegmentName | null {
  const match = segmentNamePattern.exec(name);
  if (match === null) return null;
  const epoch = Number.parseInt(match[1]!, 16);
  if (!Number.isSafeInteger(epoch) || epoch < 1) return null;
  return { epoch, worker: Number.parseInt(match[2]!, 16), ordinal: Number.parseInt(match[3]!, 16) };
}

/** True for the name of a version-1 (one log per partition) segment. */
export function isPerPartitionSegmentName(name: string): boolean {
  return perPartitionSegmentNamePattern.test(name);
}

/** "epoch 7, worker 1": how messages name a log. */
export function describeLog(log: LogId): string {
  return `log of run ${log.epoch}, worker ${log.worker}`;
}

/**
 * What to do with a database whose logs this build cannot read: the message of every
 * ERR_FORMAT_VERSION about the per-partition layout.
 */
export const perPartitionUpgradeAdvice =
  'it was written by an earlier lightning-db with one write-ahead log per partition (WAL format version 1); ' +
  `this build reads WAL format version ${walFormatVersion}. To upgrade, open it with the previous version ` +
  'and export it with `lightning-cli dump <db> <file>`, then `lightning-cli load <new db> <file> --create` ' +
  'with this version';

export interface SegmentHeader extends SegmentName {
  readonly formatVersion: number;
}

export function encodeSegmentHeader(h32Raw: H32Raw, log: LogId, ordinal: number): Buffer {
  assert(Number.isSafeInteger(log.epoch) && log.epoch >= 1, 'a segment belongs to a run');
  const header = Buffer.alloc(segmentHeaderBytes);
  header.writeUInt32LE(segmentMagic, kHeaderMagic);
  header.writeUInt32LE(walFormatVersion, kHeaderFormatVersion);
  header.writeUInt32LE(log.worker, kHeaderWorker);
  header.writeUInt32LE(ordinal, kHeaderOrdinal);
  writeU64(header, kHeaderEpoch, log.epoch);
  header.writeUInt32LE(h32Raw(header.subarray(0, kHeaderChecksum), 0), kHeaderChecksum);
  return header;
}

/** What is wrong with a segment header: ERR_CORRUPTION, or ERR_FORMAT_VERSION for another format. */
export interface SegmentHeaderProblem {
  readonly code: 'ERR_CORRUPTION' | 'ERR_FORMAT_VERSION';
  readonly reason: string;
}

/**
 * Decodes and checks the header at the start of `bytes` (which must hold at least the header):
 * magic, format version, checksum, then that it names the segment its file name names. Magic and
 * version are checked before the checksum because another format may checksum its header differently.
 */
export function decodeSegmentHeader(
  h32Raw: H32Raw,
  bytes: Buffer,
  name: SegmentName,
): SegmentHeader | SegmentHeaderProblem {
  assert(bytes.length >= segmentHeaderBytes, 'the caller read a whole header');
  if (bytes.readUInt32LE(kHeaderMagic) !== segmentMagic) {
    return { code: 'ERR_CORRUPTION', reason: 'not a WAL segment (bad magic)' };
  }
  const formatVersion = bytes.readUInt32LE(kHeaderFormatVersion);
  if (formatVersion === walFormatVersionPerPartition) {
    return { code: 'ERR_FORMAT_VERSION', reason: perPartitionUpgradeAdvice };
  }
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
  const epoch = readU64(bytes, kHeaderEpoch);
  const worker = bytes.readUInt32LE(kHeaderWorker);
  const ordinal = bytes.readUInt32LE(kHeaderOrdinal);
  if (epoch !== name.epoch || worker !== name.worker || ordinal !== name.ordinal) {
    return {
      code: 'ERR_CORRUPTION',
      reason: `header names segment ${ordinal} of the ${describeLog({ epoch, worker })}, the file name segment ${name.ordinal} of the ${describeLog(name)}`,
    };
  }
  return { formatVersion, epoch, worker, ordinal };
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
  partition: number,
  lsn: number,
  type: WalRecordType,
  payload: Uint8Array,
): number {
  const end = offset + recordBytes(payload.length);
  assert(offset % recordAlignBytes === 0 && end <= target.length, 'a record is framed in bounds');
  target.writeUInt32LE(payload.length, offset + kRecordPayloadLength);
  writeU64(target, offset + kRecordLsn, lsn);
  target.writeUInt32LE(partition, offset + kRecordPartition);
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

/** Reads a record's partition. */
export function readRecordPartition(bytes: Buffer, offset: number): number {
  return bytes.readUInt32LE(offset + kRecordPartition);
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
