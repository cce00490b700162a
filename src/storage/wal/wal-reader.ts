import { basename, dirname } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { fileLayer } from '../file-layer.js';
import type { LogCoverage } from './log-coverage.js';
import {
  type LogFiles,
  listLogs,
  readSegmentFile,
  type SegmentContents,
  type SegmentFile,
  syncDirectory,
} from './wal-files.js';
import {
  decodeSegmentHeader,
  describeLog,
  type H32Raw,
  isSegmentHeaderProblem,
  loadH32Raw,
  lsnFirst,
  parseSegmentFileName,
  recordAlignBytes,
  segmentHeaderBytes,
  validatePartition,
  type WalRecordType,
} from './wal-format.js';
import { recordsIn, type SegmentScan, scanSegment } from './wal-segment-scan.js';

/** One record of a log, as `readWal` delivers it. */
export interface WalRecord {
  readonly partition: number;
  /** The partition's LSN. */
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

/** An incomplete or damaged end of a log's last segment with nothing valid after it: a crash mid-write. */
export interface TornTail {
  readonly file: string;
  /** Where the valid records end; `truncateTornTail(file, offset)` cuts the file there. */
  readonly offset: number;
  readonly bytesDropped: number;
}

export interface ReadWalOptions {
  /** Logs of this run and later are not read: the current run's writers append to them. */
  readonly beforeEpoch?: number;
  /**
   * The partitions whose records to deliver, each with the LSN its replay starts at (its
   * checkpoint's start LSN, or `lsnFirst` without one). Each partition's records from there on must
   * be gap-free across all the logs, or the read fails with ERR_CORRUPTION naming what is missing.
   * Records of other partitions are verified and counted, not delivered.
   */
  readonly partitions: ReadonlyMap<number, number>;
  /**
   * Called for each delivered record, each partition's in LSN order (records of different
   * partitions interleave as the logs hold them); a returned promise is awaited before the next.
   */
  readonly onRecord: (record: WalRecord) => void | Promise<void>;
  /**
   * Where the partitions' checkpoints cover the logs: damaged bytes (or missing segments) that every
   * partition's checkpoint covers are skipped and reported in `skippedDamage`, not fatal. Without
   * it, all damage is.
   */
  readonly coverage?: LogCoverage;
}

/** Damage in a log that no recovery needs: every partition's checkpoint covers it. */
export interface SkippedDamage {
  readonly file: string;
  readonly offset: number;
  /** Where valid records resume (the segment's size if none do). */
  readonly endOffset: number;
  readonly reason: string;
}

export interface ReadWalResult {
  readonly logs: number;
  /** Segments opened and verified. */
  readonly segments: number;
  /** Records delivered to `onRecord`. */
  readonly records: number;
  /**
   * For each partition asked for: one past its last record in the logs, or its start LSN if the
   * logs hold no record at or past it. Where the partition's sequence continues.
   */
  readonly nextLsns: Map<number, number>;
  /** Torn tails met, at most one per log (in its last segment); their records are not delivered. */
  readonly tornTails: readonly TornTail[];
  /** Every segment read, with the last LSN of each partition in its valid records. */
  readonly contents: readonly SegmentContents[];
  /** For each partition asked for that has records past its start: the segment of its last one. */
  readonly lastFiles: Map<number, string>;
  readonly skippedDamage: readonly SkippedDamage[];
}

function corruption(file: string, offset: number, reason: string): LightningError {
  return new LightningError('ERR_CORRUPTION', `WAL: ${file} at byte ${offset}: ${reason}`);
}

/** Where a partition's replay stands while the logs are read. */
interface PartitionCursor {
  readonly fromLsn: number;
  nextLsn: number;
  /** Where the previous delivered record was, for messages about a gap after it. */
  previous: string | null;
  /** The file name of the segment of the previous delivered record. */
  previousFile: string | null;
}

/**
 * Reads every log in `dir` (of runs before `beforeEpoch`), oldest run first, verifying every
 * segment header and record checksum, each log's segment sequence and each partition's LSN
 * sequence within a log, and delivers the records of the partitions asked for, each checked to
 * continue its partition's sequence from its start LSN across the logs: the worker count may have
 * changed between runs, so one partition's records may lie in several logs.
 *
 * A torn tail (a log's last segment ends in a partial or failing record with no valid record after
 * it) is not delivered and is reported in the result; opening cuts it with `truncateTornTail`.
 * Anything else wrong is an ERR_CORRUPTION naming the file and byte offset (ERR_FORMAT_VERSION for
 * a segment of another format).
 *
 * Memory: one segment at a time is read whole (at most `segmentBytesMax`); its records are
 * delivered only after the whole segment verified. Records of earlier segments may have been
 * delivered when a later one turns out damaged: recovery fails the open then anyway.
 *
 * Cost: one xxh32 pass over every byte of every log; O(segment) memory.
 */
export async function readWal(dir: string, options: ReadWalOptions): Promise<ReadWalResult> {
  const { beforeEpoch, partitions, onRecord, coverage } = options;
  if (beforeEpoch !== undefined && (!Number.isSafeInteger(beforeEpoch) || beforeEpoch < 1)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `beforeEpoch must be a safe integer >= 1, got ${beforeEpoch}`,
    );
  }
  if (!(partitions instanceof Map)) throw new LightningError('ERR_BAD_ARGUMENT', 'partitions must be a Map');
  const cursors = new Map<number, PartitionCursor>();
  for (const [partition, fromLsn] of partitions) {
    validatePartition(partition);
    if (!Number.isSafeInteger(fromLsn) || fromLsn < lsnFirst) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `the start LSN of partition ${partition} must be a safe integer >= ${lsnFirst}, got ${fromLsn}`,
      );
    }
    cursors.set(partition, { fromLsn, nextLsn: fromLsn, previous: null, previousFile: null });
  }
  if (typeof onRecord !== 'function')
    throw new LightningError('ERR_BAD_ARGUMENT', 'onRecord must be a function');
  const h32Raw = await loadH32Raw();
  const logs = (await listLogs(dir)).filter(
    (log) => beforeEpoch === undefined || log.log.epoch < beforeEpoch,
  );
  const state: ReadState = {
    records: 0,
    segments: 0,
    tornTails: [],
    contents: [],
    skippedDamage: [],
    coverage: coverage ?? null,
  };
  for (const log of logs) await readLog(h32Raw, log, cursors, onRecord, state);
  const nextLsns = new Map<number, number>();
  const lastFiles = new Map<number, string>();
  for (const [partition, cursor] of cursors) {
    nextLsns.set(partition, cursor.nextLsn);
    if (cursor.previousFile !== null) lastFiles.set(partition, cursor.previousFile);
  }
  return {
    lastFiles,
    skippedDamage: state.skippedDamage,
    logs: logs.length,
    segments: state.segments,
    records: state.records,
    nextLsns,
    tornTails: state.tornTails,
    contents: state.contents,
  };
}

interface ReadState {
  records: number;
  segments: number;
  tornTails: TornTail[];
  contents: SegmentContents[];
  skippedDamage: SkippedDamage[];
  coverage: LogCoverage | null;
}

/** Reads one log's segments in order; see `readWal`. */
async function readLog(
  h32Raw: H32Raw,
  log: LogFiles,
  cursors: Map<number, PartitionCursor>,
  onRecord: ReadWalOptions['onRecord'],
  state: ReadState,
): Promise<void> {
  /** The last LSN of each partition in this log so far: a log's records of a partition go +1 each. */
  const lastLsns = new Map<number, number>();
  for (let i = 0; i < log.segments.length; i++) {
    const segment = log.segments[i]!;
    const isLast = i === log.segments.length - 1;
    if (!checkSegmentOrder(log, i, state)) lastLsns.clear();
    const bytes = await readSegmentFile(segment.path);
    state.segments++;
    if (bytes.length < segmentHeaderBytes) {
      // A crash while a segment was being created leaves a file without a whole header; only a
      // log's newest segment can be in that state, because a writer syncs each header before it
      // writes on.
      if (!isLast) {
        const reason = `${bytes.length} bytes, shorter than a header`;
        if (!skippable(state, segment, bytes.length, 0, reason)) throw corruption(segment.path, 0, reason);
        continue;
      }
      state.tornTails.push({ file: segment.path, offset: 0, bytesDropped: bytes.length });
      break;
    }
    checkHeader(h32Raw, bytes, segment);
    const scan = scanSegment(h32Raw, bytes, { lastLsns, breaksMax: Number.POSITIVE_INFINITY });
    const ranges = validRanges(scan, segment, isLast, state);
    const contents = new Map<number, number>();
    for (const [partition, span] of scan.partitions) contents.set(partition, span.lastLsn);
    for (const [start, end] of ranges)
      await deliverRange(bytes, start, end, segment, cursors, onRecord, state);
    state.contents.push({
      path: segment.path,
      log: log.log,
      ordinal: segment.name.ordinal,
      lastLsns: contents,
    });
  }
}

/** Delivers the records of a verified range of a segment to the partitions asked for; see `readWal`. */
async function deliverRange(
  bytes: Buffer,
  start: number,
  end: number,
  segment: SegmentFile,
  cursors: Map<number, PartitionCursor>,
  onRecord: ReadWalOptions['onRecord'],
  state: ReadState,
): Promise<void> {
  for (const view of recordsIn(bytes, start, end)) {
    const cursor = cursors.get(view.partition);
    if (cursor === undefined) continue;
    if (view.lsn < cursor.nextLsn) {
      // Below the replay start: the checkpoint holds it. Past it: the same LSN twice.
      if (cursor.previous === null) continue;
      throw corruption(
        segment.path,
        view.offset,
        `partition ${view.partition}: LSN ${view.lsn} again, after LSN ${cursor.nextLsn - 1} ${cursor.previous}`,
      );
    }
    if (view.lsn > cursor.nextLsn) {
      const after =
        cursor.previous === null
          ? `its replay starts at LSN ${cursor.fromLsn}`
          : `its previous record, LSN ${cursor.nextLsn - 1}, is ${cursor.previous}`;
      throw corruption(
        segment.path,
        view.offset,
        `partition ${view.partition}: records ${cursor.nextLsn}..${view.lsn - 1} are missing: this record has LSN ${view.lsn}, and ${after}`,
      );
    }
    const delivered = onRecord({
      partition: view.partition,
      lsn: view.lsn,
      type: view.type as WalRecordType,
      payload: bytes.subarray(view.payloadOffset, view.payloadOffset + view.payloadBytes),
      file: segment.path,
      offset: view.offset,
    });
    if (delivered !== undefined) await delivered;
    cursor.nextLsn = view.lsn + 1;
    cursor.previous = `in ${segment.fileName}`;
    cursor.previousFile = segment.fileName;
    state.records++;
  }
}

/**
 * A log loses segments only from its start (segment removal goes oldest first), so from its first
 * segment on the ordinals must run without a hole, unless every checkpoint covers the hole (then it
 * is reported as skipped and false is returned: the log's sequence restarts after it).
 */
function checkSegmentOrder(log: LogFiles, index: number, state: ReadState): boolean {
  if (index === 0) return true;
  const previous = log.segments[index - 1]!;
  const segment = log.segments[index]!;
  if (segment.name.ordinal === previous.name.ordinal + 1) return true;
  const reason = `segment ${segment.name.ordinal} of the ${describeLog(log.log)} follows segment ${previous.name.ordinal}: segments ${previous.name.ordinal + 1}..${segment.name.ordinal - 1} are missing`;
  const lastMissing = { ...segment.name, ordinal: segment.name.ordinal - 1 };
  if (state.coverage?.covers(lastMissing, Number.POSITIVE_INFINITY) === true) {
    state.skippedDamage.push({ file: segment.path, offset: 0, endOffset: 0, reason });
    return false;
  }
  throw corruption(segment.path, 0, reason);
}

/**
 * The ranges of valid records of a scanned segment. A bad end of a log's last segment with nothing
 * valid after it is a torn tail (recorded, cut later); other damage is skipped when every
 * partition's checkpoint covers it, and ERR_CORRUPTION naming the file and offset otherwise. Only a
 * log's newest segment can end in a torn write: a writer syncs a segment before it starts the next,
 * and a failing record followed by a valid one is damage, never a torn write.
 */
function validRanges(
  scan: SegmentScan,
  segment: SegmentFile,
  isLast: boolean,
  state: ReadState,
): [number, number][] {
  const ranges: [number, number][] = [];
  let start = segmentHeaderBytes;
  for (const broken of scan.breaks) {
    if (broken.offset > start) ranges.push([start, broken.offset]);
    const end = broken.resumeOffset ?? scan.sizeBytes;
    start = end;
    const torn = !broken.verified && broken.resumeOffset === null && isLast;
    if (torn) {
      state.tornTails.push({
        file: segment.path,
        offset: broken.offset,
        bytesDropped: scan.sizeBytes - broken.offset,
      });
      continue;
    }
    // A record that verifies but is out of place was written so: that is never skipped.
    if (!broken.verified && skippable(state, segment, end, broken.offset, broken.reason)) continue;
    const where =
      isLast || broken.resumeOffset !== null ? '' : ' (not the last segment of its log, so not a torn tail)';
    throw corruption(segment.path, broken.offset, `${broken.reason}${where}`);
  }
  if (start < scan.sizeBytes) ranges.push([start, scan.sizeBytes]);
  return ranges;
}

/** Records damage that every checkpoint covers as skipped; false if some partition may need it. */
function skippable(
  state: ReadState,
  segment: SegmentFile,
  endOffset: number,
  offset: number,
  reason: string,
): boolean {
  if (state.coverage?.covers(segment.name, endOffset) !== true) return false;
  state.skippedDamage.push({ file: segment.path, offset, endOffset, reason });
  return true;
}

/** Checks a segment's header and its agreement with the file name. */
function checkHeader(h32Raw: H32Raw, bytes: Buffer, segment: SegmentFile): void {
  const header = decodeSegmentHeader(h32Raw, bytes, segment.name);
  if (isSegmentHeaderProblem(header)) {
    throw new LightningError(header.code, `WAL: ${segment.path} at byte 0: ${header.reason}`);
  }
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
