import { assert } from '../../shared-memory/assert.js';
import {
  type H32Raw,
  isWalRecordType,
  kRecordChecksum,
  kRecordPayload,
  kRecordPayloadLength,
  kRecordType,
  lsnFirst,
  readRecordLsn,
  readRecordPartition,
  recordAlignBytes,
  recordBytes,
  recordBytesMin,
  recordChecksum,
  recordHeaderBytes,
  recordPayloadBytesMax,
  segmentHeaderBytes,
} from './wal-format.js';

/**
 * Verifies the records of one segment held in memory, and says where and how the valid records stop:
 * checksums, record types, and that each partition's LSNs go up by one within the log.
 * It decides nothing about errors: the reader turns breaks into a torn tail or ERR_CORRUPTION, the
 * verifier into a report. The header was checked by the caller.
 */

/** A place where the segment stops being a valid sequence of records. */
export interface ScanBreak {
  /** Byte offset in the segment of the first byte that is not part of a valid record. */
  readonly offset: number;
  readonly reason: string;
  /**
   * True if the record at `offset` itself verifies but does not belong there (an LSN that does not
   * follow its partition's previous one, an unknown type): that is never a torn write.
   */
  readonly verified: boolean;
  /**
   * The next record after `offset` whose checksum verifies and that can follow what came before,
   * or null if nothing valid follows in this segment. Null is what makes a bad record at the end of
   * a log's last segment a torn tail rather than damage.
   */
  readonly resumeOffset: number | null;
}

/** The records of one partition in a segment (or a log). */
export interface PartitionSpan {
  records: number;
  /** Offset in the segment of the partition's first record in it. */
  firstOffset: number;
  /** Bytes on disk, padding included. */
  bytes: number;
  firstLsn: number;
  lastLsn: number;
}

export interface SegmentScan {
  readonly sizeBytes: number;
  /** Records that verified anywhere in the segment (past breaks too, when the scan went on). */
  readonly records: number;
  /** The same records by partition. */
  readonly partitions: ReadonlyMap<number, PartitionSpan>;
  /** End of the valid prefix: the offset of the first break, or the segment's size. */
  readonly prefixEnd: number;
  readonly prefixRecords: number;
  readonly breaks: readonly ScanBreak[];
}

/** Where `probeRecord` leaves what it decoded, so that the per-record path allocates nothing. */
interface Probe {
  lsn: number;
  partition: number;
  type: number;
  payloadBytes: number;
  end: number;
}

/**
 * Checks the record at `offset`: returns null and fills `probe` if its length is possible, it lies
 * within the segment and its checksum verifies; otherwise the reason it does not.
 */
function probeRecord(h32Raw: H32Raw, bytes: Buffer, offset: number, probe: Probe): string | null {
  if (offset + recordHeaderBytes > bytes.length) return 'partial record header at the end of the segment';
  const payloadBytes = bytes.readUInt32LE(offset + kRecordPayloadLength);
  if (payloadBytes > recordPayloadBytesMax) return `impossible payload length ${payloadBytes}`;
  const end = offset + recordBytes(payloadBytes);
  if (end > bytes.length) return `record of ${end - offset} bytes runs past the end of the segment`;
  if (bytes.readUInt32LE(offset + kRecordChecksum) !== recordChecksum(h32Raw, bytes, offset, payloadBytes)) {
    return 'record checksum mismatch';
  }
  const lsn = readRecordLsn(bytes, offset);
  // Checksummed, yet impossible: never written by us.
  if (lsn < lsnFirst) return lsn < 0 ? 'record LSN beyond 2^53' : 'record LSN 0';
  probe.lsn = lsn;
  probe.partition = readRecordPartition(bytes, offset);
  probe.type = bytes[offset + kRecordType]!;
  probe.payloadBytes = payloadBytes;
  probe.end = end;
  return null;
}

/**
 * Looks past a bad record at `badOffset` for a record that verifies and can follow what came
 * before (its partition's LSN above the last one seen), at every 8-byte step. Cheap tests come
 * before the checksum (a known type, a length that fits), so random bytes are almost never hashed.
 */
function findValidRecordAfter(
  h32Raw: H32Raw,
  bytes: Buffer,
  badOffset: number,
  lastLsns: ReadonlyMap<number, number>,
  probe: Probe,
): number | null {
  for (
    let offset = badOffset + recordAlignBytes;
    offset + recordBytesMin <= bytes.length;
    offset += recordAlignBytes
  ) {
    if (!isWalRecordType(bytes[offset + kRecordType]!)) continue;
    if (offset + recordBytes(bytes.readUInt32LE(offset + kRecordPayloadLength)) > bytes.length) continue;
    if (probeRecord(h32Raw, bytes, offset, probe) !== null) continue;
    if (probe.lsn > (lastLsns.get(probe.partition) ?? 0)) return offset;
  }
  return null;
}

export interface ScanOptions {
  /**
   * The last LSN of each partition in the log's earlier segments, which the segment's records must
   * continue (+1 each); updated as the scan goes. A partition not in it may start at any LSN: its
   * previous records are in another log, or in segments already removed.
   */
  readonly lastLsns: Map<number, number>;
  /** Stop after this many breaks; the reader needs one, the verifier all of them. */
  readonly breaksMax: number;
  /** Told of every record that verified, past breaks too, in file order (the repair planner). */
  readonly onRecord?: (offset: number, partition: number, lsn: number, end: number) => void;
}

/** Scans the records of a segment held whole in `bytes`. Cost: one xxh32 pass over the segment. */
export function scanSegment(h32Raw: H32Raw, bytes: Buffer, options: ScanOptions): SegmentScan {
  assert(bytes.length >= segmentHeaderBytes && options.breaksMax >= 1, 'scan of a segment with a header');
  const probe: Probe = { lsn: 0, partition: 0, type: 0, payloadBytes: 0, end: 0 };
  const lastLsns = options.lastLsns;
  const partitions = new Map<number, PartitionSpan>();
  const breaks: ScanBreak[] = [];
  let offset = segmentHeaderBytes;
  let records = 0;
  let prefix: { end: number; records: number } | null = null;
  /**
   * Records that damaged bytes skipped by a resynchronisation can have held: a partition whose next
   * record shows that many or fewer missing LSNs lost them there, which that break already reports.
   */
  let skippedRecordsMax = 0;
  const take = (): void => {
    records++;
    const span = partitions.get(probe.partition);
    const bytesOnDisk = probe.end - offset;
    if (span === undefined) {
      partitions.set(probe.partition, {
        records: 1,
        firstOffset: offset,
        bytes: bytesOnDisk,
        firstLsn: probe.lsn,
        lastLsn: probe.lsn,
      });
    } else {
      span.records++;
      span.bytes += bytesOnDisk;
      span.lastLsn = probe.lsn;
    }
    lastLsns.set(probe.partition, probe.lsn);
    options.onRecord?.(offset, probe.partition, probe.lsn, probe.end);
    offset = probe.end;
  };

  while (offset < bytes.length && breaks.length < options.breaksMax) {
    const problem = probeRecord(h32Raw, bytes, offset, probe);
    let reason: string | null = problem;
    const previous = problem === null ? lastLsns.get(probe.partition) : undefined;
    const missing = previous === undefined ? 0 : probe.lsn - previous - 1;
    if (reason === null && missing > 0 && missing <= skippedRecordsMax) {
      skippedRecordsMax -= missing;
    } else if (reason === null && previous !== undefined && probe.lsn !== previous + 1) {
      reason =
        probe.lsn <= previous
          ? `partition ${probe.partition}: LSN ${probe.lsn} does not increase (expected ${previous + 1})`
          : `partition ${probe.partition}: LSN gap: expected ${previous + 1}, found ${probe.lsn}`;
    } else if (reason === null && !isWalRecordType(probe.type)) {
      reason = `unknown record type ${probe.type} at LSN ${probe.lsn} of partition ${probe.partition}`;
    }
    if (reason === null) {
      take();
      continue;
    }
    prefix ??= { end: offset, records };
    if (problem === null) {
      // The record verifies but is out of place. Report it and, when scanning on, take it as the
      // new reference so that one misplaced record does not make everything after it a break.
      breaks.push({ offset, reason, verified: true, resumeOffset: offset });
      take();
      continue;
    }
    const resumeOffset = findValidRecordAfter(h32Raw, bytes, offset, lastLsns, probe);
    if (resumeOffset === null) {
      breaks.push({ offset, reason, verified: false, resumeOffset: null });
      break;
    }
    breaks.push({
      offset,
      reason: `${reason} (a valid record of partition ${probe.partition}, LSN ${probe.lsn}, follows at byte ${resumeOffset})`,
      verified: false,
      resumeOffset,
    });
    // The resumed record is the new reference of its partition, so the records it lost are reported
    // once, here. The next loop turn verifies it again and moves on.
    lastLsns.set(probe.partition, probe.lsn - 1);
    skippedRecordsMax += Math.floor((resumeOffset - offset) / recordBytesMin);
    offset = resumeOffset;
  }
  prefix ??= { end: offset, records };
  return {
    sizeBytes: bytes.length,
    records,
    partitions,
    prefixEnd: prefix.end,
    prefixRecords: prefix.records,
    breaks,
  };
}

/** One record of a verified range, as a view into the segment's bytes. */
export interface SegmentRecordView {
  readonly offset: number;
  readonly partition: number;
  readonly lsn: number;
  readonly type: number;
  readonly payloadOffset: number;
  readonly payloadBytes: number;
}

/**
 * Walks the records between `start` and `end`, a range `scanSegment` verified, so only lengths are
 * read: the second pass over a segment costs no hashing.
 */
export function* recordsIn(bytes: Buffer, start: number, end: number): Generator<SegmentRecordView> {
  let offset = start;
  while (offset < end) {
    const payloadBytes = bytes.readUInt32LE(offset + kRecordPayloadLength);
    yield {
      offset,
      partition: readRecordPartition(bytes, offset),
      lsn: readRecordLsn(bytes, offset),
      type: bytes[offset + kRecordType]!,
      payloadOffset: offset + kRecordPayload,
      payloadBytes,
    };
    offset += recordBytes(payloadBytes);
  }
  assert(offset === end, 'a verified range ends on a record boundary');
}
