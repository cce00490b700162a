import { assert } from '../../shared-memory/assert.js';
import {
  type H32Raw,
  isWalRecordType,
  kRecordChecksum,
  kRecordPayload,
  kRecordPayloadLength,
  kRecordType,
  readRecordLsn,
  recordAlignBytes,
  recordBytes,
  recordBytesMin,
  recordChecksum,
  recordHeaderBytes,
  recordPayloadBytesMax,
  segmentHeaderBytes,
} from './wal-format.js';

/**
 * Verifies the records of one segment held in memory, and says where and how the valid records stop.
 * It decides nothing about errors: the reader turns breaks into a torn tail or ERR_CORRUPTION, the
 * verifier into a report. The header was checked by the caller.
 */

/** A place where the segment stops being a valid, gap-free sequence of records. */
export interface ScanBreak {
  /** Byte offset in the segment of the first byte that is not part of a valid record. */
  readonly offset: number;
  readonly reason: string;
  /**
   * True if the record at `offset` itself verifies but does not belong there (wrong LSN, unknown
   * type): that is never a torn write.
   */
  readonly verified: boolean;
  /**
   * The next record after `offset` whose checksum verifies and whose LSN is higher than the last
   * valid one, or null if nothing valid follows in this segment. Null is what makes a bad record at
   * the end of the last segment a torn tail rather than damage.
   */
  readonly resumeOffset: number | null;
  readonly resumeLsn: number | null;
}

export interface SegmentScan {
  readonly sizeBytes: number;
  /** Records that verified anywhere in the segment (past breaks too, when the scan went on). */
  readonly records: number;
  readonly firstLsn: number | null;
  readonly lastLsn: number | null;
  /** End of the valid prefix: the offset of the first break, or the segment's size. */
  readonly prefixEnd: number;
  readonly prefixRecords: number;
  /** The LSN after the valid prefix: what a writer continues with if the log is cut at `prefixEnd`. */
  readonly prefixNextLsn: number;
  readonly breaks: readonly ScanBreak[];
}

/** Where `probeRecord` leaves what it decoded, so that the per-record path allocates nothing. */
interface Probe {
  lsn: number;
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
  if (lsn < 0) return 'record LSN beyond 2^53'; // Checksummed, yet impossible: never written by us.
  probe.lsn = lsn;
  probe.type = bytes[offset + kRecordType]!;
  probe.payloadBytes = payloadBytes;
  probe.end = end;
  return null;
}

/**
 * Looks past a bad record at `badOffset` for a record that verifies and has an LSN above `lastLsn`,
 * at every 8-byte step. Cheap tests come before the checksum: the LSN must also be within reach (at
 * most one lost record per smallest record size skipped), so random bytes are almost never hashed.
 */
function findValidRecordAfter(
  h32Raw: H32Raw,
  bytes: Buffer,
  badOffset: number,
  lastLsn: number,
  probe: Probe,
): number | null {
  for (
    let offset = badOffset + recordAlignBytes;
    offset + recordBytesMin <= bytes.length;
    offset += recordAlignBytes
  ) {
    const lsn = readRecordLsn(bytes, offset);
    if (lsn <= lastLsn || lsn > lastLsn + 1 + Math.floor((offset - badOffset) / recordBytesMin)) continue;
    if (!isWalRecordType(bytes[offset + kRecordType]!)) continue;
    if (probeRecord(h32Raw, bytes, offset, probe) === null) return offset;
  }
  return null;
}

export interface ScanOptions {
  /** The LSN the segment's first record must have (from its header). */
  readonly firstLsn: number;
  /** Stop after this many breaks; the reader needs one, the verifier all of them. */
  readonly breaksMax: number;
}

/** Scans the records of a segment held whole in `bytes`. Cost: one xxh32 pass over the segment. */
export function scanSegment(h32Raw: H32Raw, bytes: Buffer, options: ScanOptions): SegmentScan {
  assert(bytes.length >= segmentHeaderBytes && options.breaksMax >= 1, 'scan of a segment with a header');
  const probe: Probe = { lsn: 0, type: 0, payloadBytes: 0, end: 0 };
  const breaks: ScanBreak[] = [];
  let offset = segmentHeaderBytes;
  let expectedLsn = options.firstLsn;
  let records = 0;
  let firstLsn: number | null = null;
  let lastLsn: number | null = null;
  let prefix: { end: number; records: number; nextLsn: number } | null = null;

  while (offset < bytes.length && breaks.length < options.breaksMax) {
    const problem = probeRecord(h32Raw, bytes, offset, probe);
    let reason: string | null = problem;
    if (reason === null && probe.lsn !== expectedLsn) {
      reason =
        probe.lsn < expectedLsn
          ? `LSN ${probe.lsn} does not increase (expected ${expectedLsn})`
          : `LSN gap: expected ${expectedLsn}, found ${probe.lsn}`;
    } else if (reason === null && !isWalRecordType(probe.type)) {
      reason = `unknown record type ${probe.type} at LSN ${probe.lsn}`;
    }
    if (reason === null) {
      records++;
      firstLsn ??= probe.lsn;
      lastLsn = probe.lsn;
      expectedLsn = probe.lsn + 1;
      offset = probe.end;
      continue;
    }
    prefix ??= { end: offset, records, nextLsn: expectedLsn };
    if (problem === null) {
      // The record verifies but is out of place. Report it and, when scanning on, take it as the
      // new reference so that one misplaced record does not make everything after it a break.
      breaks.push({ offset, reason, verified: true, resumeOffset: offset, resumeLsn: probe.lsn });
      records++;
      firstLsn ??= probe.lsn;
      lastLsn = probe.lsn;
      expectedLsn = probe.lsn + 1;
      offset = probe.end;
      continue;
    }
    const resumeOffset = findValidRecordAfter(h32Raw, bytes, offset, expectedLsn - 1, probe);
    if (resumeOffset === null) {
      breaks.push({ offset, reason, verified: false, resumeOffset: null, resumeLsn: null });
      break;
    }
    const lost =
      probe.lsn > expectedLsn
        ? `; LSN ${expectedLsn}..${probe.lsn - 1} lost`
        : '; no LSN lost: stray bytes before it';
    breaks.push({
      offset,
      reason: `${reason} (a valid record with LSN ${probe.lsn} follows at byte ${resumeOffset}${lost})`,
      verified: false,
      resumeOffset,
      resumeLsn: probe.lsn,
    });
    // The probe holds the resumed record; the next loop turn verifies it again and moves on.
    expectedLsn = probe.lsn;
    offset = resumeOffset;
  }
  prefix ??= { end: offset, records, nextLsn: expectedLsn };
  return {
    sizeBytes: bytes.length,
    records,
    firstLsn,
    lastLsn,
    prefixEnd: prefix.end,
    prefixRecords: prefix.records,
    prefixNextLsn: prefix.nextLsn,
    breaks,
  };
}

/** One record of a verified range, as a view into the segment's bytes. */
export interface SegmentRecordView {
  readonly offset: number;
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
      lsn: readRecordLsn(bytes, offset),
      type: bytes[offset + kRecordType]!,
      payloadOffset: offset + kRecordPayload,
      payloadBytes,
    };
    offset += recordBytes(payloadBytes);
  }
  assert(offset === end, 'a verified range ends on a record boundary');
}
