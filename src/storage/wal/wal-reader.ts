import { basename, dirname } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { fileLayer } from '../file-layer.js';
import { listSegments, readSegmentFile, type SegmentFile, syncDirectory } from './wal-files.js';
import {
  decodeSegmentHeader,
  type H32Raw,
  isSegmentHeaderProblem,
  loadH32Raw,
  lsnFirst,
  parseSegmentFileName,
  recordAlignBytes,
  type SegmentHeader,
  segmentHeaderBytes,
  validatePartition,
  type WalRecordType,
} from './wal-format.js';
import { recordsIn, scanSegment } from './wal-segment-scan.js';

/** One record of the log, as `readWal` delivers it. */
export interface WalRecord {
  readonly lsn: number;
  readonly type: WalRecordType;
  /**
   * A view into the buffer of the segment it came from: no copy is made. Keeping it keeps that
   * whole segment in memory, so copy it (`Buffer.from(payload)`) to keep it for long.
   */
  readonly payload: Buffer;
  readonly file: string;
  readonly offset: number;
}

/** An incomplete or damaged end of the last segment with nothing valid after it: a crash mid-write. */
export interface TornTail {
  readonly file: string;
  /** Where the valid records end; `truncateTornTail(file, offset)` cuts the file there. */
  readonly offset: number;
  readonly bytesDropped: number;
}

export interface ReadWalOptions {
  /**
   * Deliver records with an LSN at or above this one. Segments wholly before it are not opened.
   * When given, the log must reach back to it: a log that starts later has lost records and is
   * ERR_CORRUPTION. When omitted, the log is read from its first segment, wherever that starts.
   */
  readonly fromLsn?: number;
  /** Called for each record in LSN order; a returned promise is awaited before the next record. */
  readonly onRecord: (record: WalRecord) => void | Promise<void>;
}

export interface ReadWalResult {
  /** Segments opened and verified. */
  readonly segments: number;
  /** Records delivered to `onRecord`. */
  readonly records: number;
  /** LSN of the last valid record in the segments read, or null if they hold none. */
  readonly lastLsn: number | null;
  /**
   * Where a writer must continue: one past the last valid record, or the start of the last segment
   * if the log holds no record. Null if the directory holds no segment.
   */
  readonly nextLsn: number | null;
  readonly tornTail: TornTail | null;
}

function corruption(partition: number, file: string, offset: number, reason: string): LightningError {
  return new LightningError(
    'ERR_CORRUPTION',
    `WAL of partition ${partition}: ${file} at byte ${offset}: ${reason}`,
  );
}

/**
 * Reads the log of one partition in LSN order across its segments, verifying every segment header
 * and record checksum, and the LSN sequence within and across segments.
 *
 * A torn tail (the last segment ends in a partial or failing record with no valid record after it)
 * is not delivered and is reported in the result; recovery cuts it with `truncateTornTail`. Anything
 * else wrong is an ERR_CORRUPTION naming the file and byte offset (ERR_FORMAT_VERSION for a segment
 * of a newer format).
 *
 * Memory: one segment at a time is read whole (at most `segmentBytesMax`, normally about its 64 MiB
 * target); its records are delivered only after the whole segment verified. Records of earlier
 * segments may have been delivered when a later segment turns out damaged: a caller that must be
 * all-or-nothing discards what it applied on error (recovery fails the open anyway).
 *
 * Cost: one xxh32 pass over every byte read; O(segment) memory.
 */
export async function readWal(
  dir: string,
  partition: number,
  options: ReadWalOptions,
): Promise<ReadWalResult> {
  validatePartition(partition);
  const { fromLsn, onRecord } = options;
  if (fromLsn !== undefined && (!Number.isSafeInteger(fromLsn) || fromLsn < lsnFirst)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `fromLsn must be a safe integer >= ${lsnFirst}, got ${fromLsn}`,
    );
  }
  if (typeof onRecord !== 'function')
    throw new LightningError('ERR_BAD_ARGUMENT', 'onRecord must be a function');
  const h32Raw = await loadH32Raw();
  const segments = await listSegments(dir);
  const first = segments[0];
  if (first === undefined) return { segments: 0, records: 0, lastLsn: null, nextLsn: null, tornTail: null };
  if (fromLsn !== undefined && first.nameLsn > fromLsn) {
    throw corruption(
      partition,
      first.path,
      0,
      `the log starts at LSN ${first.nameLsn}, so records ${fromLsn}..${first.nameLsn - 1} are missing`,
    );
  }
  // Segments before the last one starting at or below fromLsn hold only LSNs below fromLsn.
  let start = 0;
  if (fromLsn !== undefined)
    while (start + 1 < segments.length && segments[start + 1]!.nameLsn <= fromLsn) start++;

  let expectedLsn: number | null = null;
  let lastLsn: number | null = null;
  let records = 0;
  let tornTail: TornTail | null = null;
  for (let i = start; i < segments.length; i++) {
    const segment = segments[i]!;
    const isLast = i === segments.length - 1;
    const bytes = await readSegmentFile(segment.path);
    if (bytes.length < segmentHeaderBytes) {
      // A crash while a segment was being created leaves a file without a whole header; only the
      // newest segment can be in that state, because a writer syncs each header before it writes on.
      if (!isLast)
        throw corruption(partition, segment.path, 0, `${bytes.length} bytes, shorter than a header`);
      tornTail = { file: segment.path, offset: 0, bytesDropped: bytes.length };
      expectedLsn ??= segment.nameLsn;
      break;
    }
    const header = checkHeader(h32Raw, bytes, partition, segment, expectedLsn, segments[i - 1]);
    const scan = scanSegment(h32Raw, bytes, { firstLsn: header.firstLsn, breaksMax: 1 });
    const broken = scan.breaks[0];
    if (broken !== undefined) {
      // Only the newest segment can end in a torn write: a writer syncs a segment before it starts
      // the next one. A failing record followed by a valid one is damage, never a torn write.
      if (broken.verified || broken.resumeOffset !== null || !isLast) {
        const where =
          isLast || broken.resumeOffset !== null ? '' : ' (not the last segment, so not a torn tail)';
        throw corruption(partition, segment.path, broken.offset, `${broken.reason}${where}`);
      }
      tornTail = { file: segment.path, offset: broken.offset, bytesDropped: bytes.length - broken.offset };
    }
    for (const view of recordsIn(bytes, segmentHeaderBytes, scan.prefixEnd)) {
      if (fromLsn !== undefined && view.lsn < fromLsn) continue;
      const delivered = onRecord({
        lsn: view.lsn,
        type: view.type as WalRecordType,
        payload: bytes.subarray(view.payloadOffset, view.payloadOffset + view.payloadBytes),
        file: segment.path,
        offset: view.offset,
      });
      if (delivered !== undefined) await delivered;
      records++;
    }
    expectedLsn = scan.prefixNextLsn;
    if (scan.prefixRecords > 0) lastLsn = scan.prefixNextLsn - 1;
  }
  return { segments: segments.length - start, records, lastLsn, nextLsn: expectedLsn, tornTail };
}

/** Checks a segment's header, its agreement with the file name and its place after the previous segment. */
function checkHeader(
  h32Raw: H32Raw,
  bytes: Buffer,
  partition: number,
  segment: SegmentFile,
  expectedLsn: number | null,
  previous: SegmentFile | undefined,
): SegmentHeader {
  const header = decodeSegmentHeader(h32Raw, bytes, partition);
  if (isSegmentHeaderProblem(header)) {
    throw new LightningError(
      header.code,
      `WAL of partition ${partition}: ${segment.path} at byte 0: ${header.reason}`,
    );
  }
  if (header.firstLsn !== segment.nameLsn) {
    throw corruption(
      partition,
      segment.path,
      0,
      `header says first LSN ${header.firstLsn}, the name says ${segment.nameLsn}`,
    );
  }
  if (expectedLsn !== null && header.firstLsn !== expectedLsn) {
    const what = header.firstLsn > expectedLsn ? 'a segment is missing' : 'segments overlap';
    throw corruption(
      partition,
      segment.path,
      0,
      `segment starts at LSN ${header.firstLsn} but ${previous?.name ?? 'the previous segment'} ends before LSN ${expectedLsn}: ${what}`,
    );
  }
  return header;
}

/**
 * Cuts a torn tail that `readWal` reported: truncates the segment at `offset` and fsyncs it, so the
 * cut survives a crash before the next writer opens. An offset of 0 (a segment without a whole
 * header) removes the file instead and syncs the directory: an empty file there would only be
 * reported as torn again.
 */
export async function truncateTornTail(file: string, offset: number): Promise<void> {
  if (parseSegmentFileName(basename(file)) === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', `${file} is not a WAL segment`);
  }
  const aligned = Number.isSafeInteger(offset) && offset % recordAlignBytes === 0;
  if (!aligned || (offset !== 0 && offset < segmentHeaderBytes)) {
    throw new LightningError('ERR_BAD_ARGUMENT', `${file}: ${offset} is not a record boundary`);
  }
  const handle = await fileLayer().open(file, 'r+');
  try {
    const sizeBytes = (await handle.stat()).size;
    if (offset > sizeBytes) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `${file}: cannot cut at ${offset}, the file has ${sizeBytes} bytes`,
      );
    }
    if (offset > 0) {
      await handle.truncate(offset);
      // A full fsync: the new size is metadata that must reach the disk with the cut.
      await handle.sync();
    }
  } finally {
    await handle.close();
  }
  if (offset === 0) {
    await fileLayer().unlink(file);
    await syncDirectory(dirname(file));
  }
}
