import { xxh32 } from '../main/xxh32.js';
import { LightningError } from '../shared-memory/errors.js';
import {
  isWalRecordType,
  kRecordChecksum,
  kRecordChecksumStart,
  kRecordPartition,
  kRecordPayload,
  kRecordPayloadLength,
  kRecordType,
  recordBytes,
  recordHeaderBytes,
  type WalRecordType,
} from '../storage/wal/wal-format.js';

/**
 * The records a leader ships are its owners' write-ahead log records, framed exactly as the log
 * holds them (wal-format.ts: length, checksum, LSN, partition, type, payload, padding). An envelope's
 * payload is one partition's records of one pass, in order; their checksums travel with them, so a
 * follower checks each record as recovery does. The LSNs are the leader's and are not used by a
 * follower: the envelope's sequences count records (see leader-shipping.ts).
 */

/** One partition's records of a shipped batch, in log order. */
export interface PartitionRecords {
  readonly partition: number;
  readonly count: number;
  readonly bytes: Uint8Array;
}

/** Splits an owner's framed records by partition, keeping each partition's order. */
export function splitByPartition(records: Uint8Array): PartitionRecords[] {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const parts = new Map<number, { count: number; pieces: Uint8Array[]; bytes: number }>();
  let offset = 0;
  while (offset < records.length) {
    const size = recordBytes(view.getUint32(offset + kRecordPayloadLength, true));
    const partition = view.getUint32(offset + kRecordPartition, true);
    let part = parts.get(partition);
    if (part === undefined) {
      part = { count: 0, pieces: [], bytes: 0 };
      parts.set(partition, part);
    }
    part.count++;
    part.pieces.push(records.subarray(offset, offset + size));
    part.bytes += size;
    offset += size;
  }
  return [...parts].map(([partition, part]) => ({
    partition,
    count: part.count,
    bytes: part.pieces.length === 1 ? part.pieces[0]! : concat(part.pieces, part.bytes),
  }));
}

/** One record as a follower applies it. */
export interface ShippedRecord {
  readonly type: WalRecordType;
  readonly payload: Uint8Array;
}

/**
 * The records of an envelope's payload, each checked (its checksum, its partition, its type), and
 * exactly `count` of them: anything else is ERR_CORRUPTION naming `where`.
 */
export function readShippedRecords(
  bytes: Uint8Array,
  partition: number,
  count: number,
  where: string,
): ShippedRecord[] {
  const fail = (why: string): never => {
    throw new LightningError('ERR_CORRUPTION', `replicated records at ${where}: ${why}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ShippedRecord[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < recordHeaderBytes) fail(`a record header is cut at byte ${offset}`);
    const length = view.getUint32(offset + kRecordPayloadLength, true);
    const size = recordBytes(length);
    if (offset + size > bytes.length) fail(`the record at byte ${offset} runs past the envelope`);
    const checksum = xxh32(bytes.subarray(offset + kRecordChecksumStart, offset + kRecordPayload + length));
    if (checksum !== view.getUint32(offset + kRecordChecksum, true))
      fail(`checksum mismatch at byte ${offset}`);
    if (view.getUint32(offset + kRecordPartition, true) !== partition)
      fail(`a record of another partition at byte ${offset}`);
    const type = bytes[offset + kRecordType]!;
    if (!isWalRecordType(type)) fail(`unknown record type ${type} at byte ${offset}`);
    out.push({
      type: type as WalRecordType,
      payload: bytes.subarray(offset + kRecordPayload, offset + kRecordPayload + length),
    });
    offset += size;
  }
  if (out.length !== count) fail(`${out.length} records where the envelope's sequences say ${count}`);
  return out;
}

function concat(pieces: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}
