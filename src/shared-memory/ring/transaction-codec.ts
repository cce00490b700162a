import { assert } from '../assert.js';
import type { KeyInterval } from '../tree/range-options.js';
import {
  type BatchEntry,
  batchEncodedBytes,
  decodeOperation,
  encodeBatch,
  read16,
  read32,
} from './operation-codec.js';

/**
 * Encoding of a transaction's part in one partition, sent to the partition's owner. Little-endian.
 *
 *   kind u8 (4 commit, 5 prepare) | isolation u8 | partition u16 | status reference u64
 *   | transaction id u64 | read timestamp u64 | read count u32 | range count u32
 *   | reads: key length u16 | key
 *   | ranges: flags u8 | lower length u16 | lower | upper length u16 | upper
 *   | writes: one batch operation (operation-codec.ts), logged as it is
 *
 * `commit` is a whole transaction in one partition: the owner validates it and applies its writes
 * atomically. `prepare` is one participant of a two-phase commit: the owner validates, installs the
 * writes as intents and logs them; the decision arrives through the transaction status table.
 */
export const operationTxCommit = 4;
export const operationTxPrepare = 5;

export const isolationSerializable = 0;
export const isolationSnapshot = 1;

const rangeHasLower = 1;
const rangeLowerInclusive = 2;
const rangeHasUpper = 4;
const rangeUpperInclusive = 8;
const noKey = new Uint8Array(0);

export interface TransactionPart {
  kind: typeof operationTxCommit | typeof operationTxPrepare;
  isolation: number;
  partition: number;
  statusReference: number;
  transactionId: number;
  readTimestamp: number;
  reads: Uint8Array[];
  /** Ranges scanned, as key intervals. */
  ranges: KeyInterval[];
  writes: BatchEntry[];
}

const headerBytes = 36;

export function transactionEncodedBytes(part: TransactionPart): number {
  let bytes = headerBytes;
  for (const key of part.reads) bytes += 2 + key.length;
  for (const range of part.ranges) bytes += 5 + (range.lower?.length ?? 0) + (range.upper?.length ?? 0);
  return bytes + batchEncodedBytes(part.writes);
}

export function encodeTransaction(u8: Uint8Array, at: number, part: TransactionPart): void {
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  u8[at] = part.kind;
  u8[at + 1] = part.isolation;
  view.setUint16(at + 2, part.partition, true);
  writeU64(view, at + 4, part.statusReference);
  writeU64(view, at + 12, part.transactionId);
  writeU64(view, at + 20, part.readTimestamp);
  view.setUint32(at + 28, part.reads.length, true);
  view.setUint32(at + 32, part.ranges.length, true);
  let offset = at + headerBytes;
  for (const key of part.reads) {
    view.setUint16(offset, key.length, true);
    u8.set(key, offset + 2);
    offset += 2 + key.length;
  }
  for (const range of part.ranges) {
    const lower = range.lower ?? noKey;
    const upper = range.upper ?? noKey;
    u8[offset] =
      (range.lower === null ? 0 : rangeHasLower | (range.lowerInclusive ? rangeLowerInclusive : 0)) |
      (range.upper === null ? 0 : rangeHasUpper | (range.upperInclusive ? rangeUpperInclusive : 0));
    view.setUint16(offset + 1, lower.length, true);
    u8.set(lower, offset + 3);
    offset += 3 + lower.length;
    view.setUint16(offset, upper.length, true);
    u8.set(upper, offset + 2);
    offset += 2 + upper.length;
  }
  encodeBatch(u8, offset, part.partition, part.writes);
}

/** A decoded transaction part, plus where its writes' batch encoding lies (what the log records). */
export interface DecodedTransaction extends TransactionPart {
  writesStart: number;
  end: number;
}

export function decodeTransaction(u8: Uint8Array, at: number, end: number): DecodedTransaction {
  const kind = u8[at]!;
  assert(kind === operationTxCommit || kind === operationTxPrepare, `transaction kind (got ${kind})`);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const readCount = read32(u8, at + 28);
  const rangeCount = read32(u8, at + 32);
  let offset = at + headerBytes;
  const reads: Uint8Array[] = [];
  for (let i = 0; i < readCount; i++) {
    const length = read16(u8, offset);
    reads.push(u8.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  const ranges: KeyInterval[] = [];
  for (let i = 0; i < rangeCount; i++) {
    const flags = u8[offset]!;
    const lowerLength = read16(u8, offset + 1);
    const lower = u8.subarray(offset + 3, offset + 3 + lowerLength);
    offset += 3 + lowerLength;
    const upperLength = read16(u8, offset);
    const upper = u8.subarray(offset + 2, offset + 2 + upperLength);
    offset += 2 + upperLength;
    ranges.push({
      lower: (flags & rangeHasLower) === 0 ? null : lower,
      lowerInclusive: (flags & rangeLowerInclusive) !== 0,
      upper: (flags & rangeHasUpper) === 0 ? null : upper,
      upperInclusive: (flags & rangeUpperInclusive) !== 0,
    });
  }
  assert(offset <= end, 'transaction header fits its record');
  const writes = decodeOperation(u8, offset, end);
  return {
    kind,
    isolation: u8[at + 1]!,
    partition: read16(u8, at + 2),
    statusReference: readU64(view, at + 4),
    transactionId: readU64(view, at + 12),
    readTimestamp: readU64(view, at + 20),
    reads,
    ranges,
    writes: writes.entries,
    writesStart: offset,
    end: writes.end,
  };
}

export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

export function readU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}
