import { dirname } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { fileLayer } from '../file-layer.js';
import { listSegments, readSegmentFile, type SegmentFile, syncDirectory } from './wal-files.js';
import {
  decodeSegmentHeader,
  type H32Raw,
  isSegmentHeaderProblem,
  loadH32Raw,
  segmentHeaderBytes,
  validatePartition,
} from './wal-format.js';
import { type TornTail, truncateTornTail } from './wal-reader.js';
import { type SegmentScan, scanSegment } from './wal-segment-scan.js';

/**
 * `verifyWal` checks a partition's whole log and reports what it found without throwing for damage;
 * `repairWal` cuts the log where its valid prefix ends. Neither is ever called automatically:
 * recovery only cuts a torn tail, and damage anywhere else stops it until an operator looks.
 */

export interface WalProblem {
  readonly file: string;
  readonly offset: number;
  /** ERR_FORMAT_VERSION for a segment of a newer format, which is not damage. */
  readonly code: 'ERR_CORRUPTION' | 'ERR_FORMAT_VERSION';
  readonly message: string;
}

export interface WalSegmentReport {
  readonly file: string;
  /** Size in bytes, or -1 if the file was too large to read. */
  readonly bytes: number;
  /** From the header, or null if the header is unreadable. */
  readonly headerLsn: number | null;
  /** Records that verified, past damage too, and the LSNs of the first and last of them in file order. */
  readonly records: number;
  readonly firstLsn: number | null;
  readonly lastLsn: number | null;
}

/** Where the valid prefix of the log ends: the first problem or torn tail in log order. */
export interface WalCutPoint {
  readonly segmentIndex: number;
  readonly file: string;
  /** Byte offset to truncate the segment at; 0 means the whole segment goes. */
  readonly offset: number;
  /** The LSN a writer continues with after the cut, if known. */
  readonly nextLsn: number | null;
  /** Records after the cut in this segment that verified (so are lost by cutting), in file order. */
  readonly records: number;
  readonly firstLsn: number | null;
  readonly lastLsn: number | null;
}

export interface WalVerifyReport {
  readonly dir: string;
  readonly partition: number;
  readonly segments: readonly WalSegmentReport[];
  readonly records: number;
  readonly firstLsn: number | null;
  readonly lastLsn: number | null;
  readonly bytes: number;
  /** A torn tail is what a crash leaves and recovery cuts, so it is not counted as a problem. */
  readonly tornTail: TornTail | null;
  readonly problems: readonly WalProblem[];
  /** Null if the log needs no cut (no problem, no torn tail). */
  readonly cut: WalCutPoint | null;
  readonly ok: boolean;
}

/**
 * Verifies every segment of the log in `dir`: headers, record checksums, LSN continuity within and
 * across segments. Damage is reported, never thrown; the scan goes on past it (resynchronising on the
 * next valid record) so that one report shows all of it. File-system errors other than a missing
 * directory still throw. Reads one segment into memory at a time; O(log bytes) time.
 */
export async function verifyWal(dir: string, partition: number): Promise<WalVerifyReport> {
  validatePartition(partition);
  const h32Raw = await loadH32Raw();
  const files = await listSegments(dir);
  const state: VerifyState = { problems: [], tornTail: null, cut: null, expectedLsn: null };
  const segments: WalSegmentReport[] = [];
  for (let i = 0; i < files.length; i++) {
    const { report, scan } = await examineSegment(h32Raw, files, i, partition, state);
    segments.push(report);
    const cut = state.cut;
    if (cut?.segmentIndex !== i) continue;
    if (cut.offset === 0) {
      state.cut = { ...cut, records: report.records, firstLsn: report.firstLsn, lastLsn: report.lastLsn };
    } else if (scan !== null) {
      const records = scan.records - scan.prefixRecords;
      const firstLsn = records > 0 ? (scan.breaks[0]?.resumeLsn ?? null) : null;
      state.cut = { ...cut, records, firstLsn, lastLsn: records > 0 ? scan.lastLsn : null };
    }
  }
  const withRecords = segments.filter((segment) => segment.records > 0);
  return {
    dir,
    partition,
    segments,
    records: segments.reduce((sum, segment) => sum + segment.records, 0),
    firstLsn: withRecords[0]?.firstLsn ?? null,
    lastLsn: withRecords.at(-1)?.lastLsn ?? null,
    bytes: segments.reduce((sum, segment) => sum + Math.max(0, segment.bytes), 0),
    tornTail: state.tornTail,
    problems: state.problems,
    cut: state.cut,
    ok: state.problems.length === 0,
  };
}

interface VerifyState {
  problems: WalProblem[];
  tornTail: TornTail | null;
  cut: WalCutPoint | null;
  /** The LSN the next record must have, from what was verified so far. */
  expectedLsn: number | null;
}

async function examineSegment(
  h32Raw: H32Raw,
  files: readonly SegmentFile[],
  index: number,
  partition: number,
  state: VerifyState,
): Promise<{ report: WalSegmentReport; scan: SegmentScan | null }> {
  const file = files[index]!;
  const isLast = index === files.length - 1;
  const problem = (offset: number, message: string, code: WalProblem['code'] = 'ERR_CORRUPTION'): void => {
    state.problems.push({ file: file.path, offset, code, message });
    state.cut ??= cutAt(index, file.path, offset, state.expectedLsn);
  };
  const empty = { file: file.path, bytes: -1, headerLsn: null, records: 0, firstLsn: null, lastLsn: null };
  let bytes: Buffer;
  try {
    bytes = await readSegmentFile(file.path);
  } catch (error) {
    if (!(error instanceof LightningError) || error.code !== 'ERR_CORRUPTION') throw error;
    problem(0, error.message);
    return { report: empty, scan: null };
  }
  const report = { ...empty, bytes: bytes.length };
  if (bytes.length < segmentHeaderBytes) {
    if (isLast) {
      state.tornTail = { file: file.path, offset: 0, bytesDropped: bytes.length };
      state.cut ??= cutAt(index, file.path, 0, state.expectedLsn ?? file.nameLsn);
    } else {
      problem(0, `${bytes.length} bytes, shorter than a segment header`);
    }
    return { report, scan: null };
  }
  const header = decodeSegmentHeader(h32Raw, bytes, partition);
  if (isSegmentHeaderProblem(header)) {
    problem(0, header.reason, header.code);
    return { report, scan: null };
  }
  if (header.firstLsn !== file.nameLsn) {
    problem(0, `header says first LSN ${header.firstLsn}, the name says ${file.nameLsn}`);
  }
  if (state.expectedLsn !== null && header.firstLsn !== state.expectedLsn) {
    const what = header.firstLsn > state.expectedLsn ? 'a segment is missing' : 'segments overlap';
    problem(0, `segment starts at LSN ${header.firstLsn}, expected ${state.expectedLsn}: ${what}`);
  }
  const scan = scanSegment(h32Raw, bytes, { firstLsn: header.firstLsn, breaksMax: Number.POSITIVE_INFINITY });
  for (const broken of scan.breaks) {
    state.expectedLsn = scan.prefixNextLsn; // Matters for the first break only: a cut there continues here.
    if (broken.resumeOffset === null && !broken.verified && isLast) {
      state.tornTail = { file: file.path, offset: broken.offset, bytesDropped: bytes.length - broken.offset };
      state.cut ??= cutAt(index, file.path, broken.offset, scan.prefixNextLsn);
    } else {
      const where = broken.resumeOffset === null && !broken.verified ? ' (not the last segment)' : '';
      problem(broken.offset, `${broken.reason}${where}`);
    }
  }
  state.expectedLsn = scan.lastLsn === null ? header.firstLsn : scan.lastLsn + 1;
  const verified = {
    headerLsn: header.firstLsn,
    records: scan.records,
    firstLsn: scan.firstLsn,
    lastLsn: scan.lastLsn,
  };
  return { report: { ...report, ...verified }, scan };
}

function cutAt(segmentIndex: number, file: string, offset: number, nextLsn: number | null): WalCutPoint {
  return { segmentIndex, file, offset, nextLsn, records: 0, firstLsn: null, lastLsn: null };
}

/** One stretch of the log that `repairWal` removed. */
export interface WalDroppedRange {
  readonly file: string;
  readonly fromOffset: number;
  /** The file's size before the repair; the range is [fromOffset, toOffset). */
  readonly toOffset: number;
  readonly fileDeleted: boolean;
  /** Records in the range that verified, with their first and last LSN in file order. */
  readonly records: number;
  readonly firstLsn: number | null;
  readonly lastLsn: number | null;
}

export interface WalRepairResult {
  /** The verification the repair acted on. */
  readonly report: WalVerifyReport;
  readonly dropped: readonly WalDroppedRange[];
  /** The LSN a writer continues with after the repair, if the log says (null if it is now empty). */
  readonly nextLsn: number | null;
}

/**
 * Cuts the log at the end of its valid prefix: truncates the segment holding the first problem or
 * torn tail (deleting it if its header is bad) and deletes every later segment, returning exactly
 * what was dropped. Later segments go first, newest first, so that a crash during the repair leaves a
 * log that a second repair cuts at the same place. Refuses (ERR_FORMAT_VERSION) to touch a log with a
 * segment of a newer format: that is not damage. Never called automatically.
 */
export async function repairWal(dir: string, partition: number): Promise<WalRepairResult> {
  const report = await verifyWal(dir, partition);
  const newer = report.problems.find((problem) => problem.code === 'ERR_FORMAT_VERSION');
  if (newer !== undefined)
    throw new LightningError('ERR_FORMAT_VERSION', `${newer.file}: ${newer.message}; not repairing`);
  const cut = report.cut;
  if (cut === null) return { report, dropped: [], nextLsn: nextLsnOf(report) };
  const dropped: WalDroppedRange[] = [];
  for (let i = report.segments.length - 1; i > cut.segmentIndex; i--) {
    const segment = report.segments[i]!;
    await fileLayer().unlink(segment.file);
    const { file, records, firstLsn, lastLsn } = segment;
    dropped.unshift({
      file,
      fromOffset: 0,
      toOffset: Math.max(0, segment.bytes),
      fileDeleted: true,
      records,
      firstLsn,
      lastLsn,
    });
  }
  if (dropped.length > 0) await syncDirectory(dirname(cut.file));
  const { records, firstLsn, lastLsn } = cut;
  const cutSegment = report.segments[cut.segmentIndex]!;
  const toOffset = Math.max(0, cutSegment.bytes);
  if (cut.offset === 0) {
    await fileLayer().unlink(cut.file);
    await syncDirectory(dirname(cut.file));
  } else {
    await truncateTornTail(cut.file, cut.offset);
  }
  dropped.unshift({
    file: cut.file,
    fromOffset: cut.offset,
    toOffset,
    fileDeleted: cut.offset === 0,
    records,
    firstLsn,
    lastLsn,
  });
  return { report, dropped, nextLsn: cut.nextLsn };
}

function nextLsnOf(report: WalVerifyReport): number | null {
  const last = report.segments.at(-1);
  if (last === undefined) return null;
  return last.lastLsn === null ? last.headerLsn : last.lastLsn + 1;
}
