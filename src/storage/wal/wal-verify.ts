import { LightningError } from '../../shared-memory/errors.js';
import type { LogCoverage } from './log-coverage.js';
import { type LogFiles, listLogs, readSegmentFile } from './wal-files.js';
import {
  decodeSegmentHeader,
  describeLog,
  type H32Raw,
  isSegmentHeaderProblem,
  type LogId,
  loadH32Raw,
  segmentHeaderBytes,
} from './wal-format.js';
import type { SkippedDamage, TornTail } from './wal-reader.js';
import { type PartitionSpan, type ScanOptions, scanSegment } from './wal-segment-scan.js';

/**
 * `verifyWal` checks every log of a database and reports what it found without throwing for
 * damage; `repairWal` (wal-repair.ts) cuts logs where their valid prefix ends. Neither is ever called
 * automatically: opening only cuts torn tails, and damage anywhere else stops it until an operator
 * looks.
 */

export interface WalProblem {
  readonly file: string;
  readonly offset: number;
  /** ERR_FORMAT_VERSION for a segment of another format, which is not damage. */
  readonly code: 'ERR_CORRUPTION' | 'ERR_FORMAT_VERSION';
  readonly message: string;
  /** The partition whose sequence the problem breaks, when it is about one (a gap across logs). */
  readonly partition: number | null;
}

export interface WalSegmentReport {
  readonly file: string;
  readonly ordinal: number;
  /** Size in bytes, or -1 if the file was too large to read. */
  readonly bytes: number;
  /** Records that verified, past damage too. */
  readonly records: number;
}

/** Where a log's valid prefix ends: its first problem or its torn tail. */
export interface WalCutPoint {
  readonly segmentIndex: number;
  readonly file: string;
  /** Byte offset to truncate the segment at; 0 means the whole segment goes. */
  readonly offset: number;
}

export interface WalLogReport {
  readonly log: LogId;
  readonly segments: readonly WalSegmentReport[];
  readonly records: number;
  readonly bytes: number;
  /** A torn tail is what a crash leaves and opening cuts, so it is not counted as a problem. */
  readonly tornTail: TornTail | null;
  /** Null if the log needs no cut (no problem, no torn tail in it). */
  readonly cut: WalCutPoint | null;
}

/** One partition's records across all the logs. */
export interface WalPartitionReport {
  readonly partition: number;
  readonly records: number;
  /** Bytes its records take in the logs, padding included. */
  readonly bytes: number;
  readonly firstLsn: number;
  readonly lastLsn: number;
  /** Logs holding its records. */
  readonly logs: number;
}

export interface WalVerifyReport {
  readonly dir: string;
  readonly logs: readonly WalLogReport[];
  readonly segments: number;
  readonly records: number;
  readonly bytes: number;
  /** Partitions with records in the logs, by partition id. */
  readonly partitions: readonly WalPartitionReport[];
  readonly tornTails: readonly TornTail[];
  readonly problems: readonly WalProblem[];
  /** Damage that every partition's checkpoint covers: no recovery needs it, opening skips it. */
  readonly skippedDamage: readonly SkippedDamage[];
  readonly ok: boolean;
}

export interface VerifyWalOptions {
  /**
   * Where each partition's replay starts (its checkpoint's start LSN; 1 without a checkpoint): its
   * records from there on must be gap-free across the logs, and records below it are not needed.
   * A partition not named here is checked from its first record in the logs.
   */
  readonly replayStarts?: ReadonlyMap<number, number>;
  /** Where the checkpoints cover the logs: damage they all cover is skipped, as opening skips it. */
  readonly coverage?: LogCoverage;
}

/** A partition's records in one log, for the check across logs. */
interface LogSpan extends PartitionSpan {
  readonly file: string;
}

/**
 * Verifies every log in `dir`: segment headers, record checksums, each log's segment sequence and
 * each partition's LSN sequence within a log and across logs (see `VerifyWalOptions`). Damage is
 * reported, never thrown; the scan goes on past it (resynchronising on the next valid record) so one
 * report shows all of it. File-system errors other than a missing directory still throw. Reads one
 * segment into memory at a time; O(log bytes) time.
 */
export async function verifyWal(dir: string, options: VerifyWalOptions = {}): Promise<WalVerifyReport> {
  const h32Raw = await loadH32Raw();
  const logs = await listLogs(dir);
  const problems: WalProblem[] = [];
  const skippedDamage: SkippedDamage[] = [];
  const reports: WalLogReport[] = [];
  /** Per partition, its span in each log that holds it, oldest log first. */
  const spans = new Map<number, LogSpan[]>();
  for (const log of logs) {
    const { report, partitions } = await verifyLog(h32Raw, log, problems, {
      coverage: options.coverage ?? null,
      skippedDamage,
    });
    reports.push(report);
    for (const [partition, span] of partitions) {
      const list = spans.get(partition) ?? [];
      list.push(span);
      spans.set(partition, list);
    }
  }
  const partitions: WalPartitionReport[] = [];
  for (const partition of [...spans.keys()].sort((a, b) => a - b)) {
    const list = spans.get(partition)!;
    checkAcrossLogs(partition, list, options.replayStarts?.get(partition), problems);
    partitions.push({
      partition,
      records: list.reduce((sum, span) => sum + span.records, 0),
      bytes: list.reduce((sum, span) => sum + span.bytes, 0),
      firstLsn: Math.min(...list.map((span) => span.firstLsn)),
      lastLsn: Math.max(...list.map((span) => span.lastLsn)),
      logs: list.length,
    });
  }
  // A gap across logs is a problem of the later log: its valid prefix ends at the record past the gap.
  const withCuts = reports.map((report) => withGapCut(report, problems));
  return {
    dir,
    logs: withCuts,
    segments: reports.reduce((sum, report) => sum + report.segments.length, 0),
    records: reports.reduce((sum, report) => sum + report.records, 0),
    bytes: reports.reduce((sum, report) => sum + report.bytes, 0),
    partitions,
    tornTails: reports.flatMap((report) => (report.tornTail === null ? [] : [report.tornTail])),
    problems,
    skippedDamage,
    ok: problems.length === 0,
  };
}

/** One log's segments, in order; problems go to `problems`, spans by partition are returned. */
async function verifyLog(
  h32Raw: H32Raw,
  log: LogFiles,
  problems: WalProblem[],
  skipping: { coverage: LogCoverage | null; skippedDamage: SkippedDamage[] },
): Promise<{ report: WalLogReport; partitions: Map<number, LogSpan> }> {
  const segments: WalSegmentReport[] = [];
  const partitions = new Map<number, LogSpan>();
  const scanOptions: ScanOptions = { lastLsns: new Map(), breaksMax: Number.POSITIVE_INFINITY };
  let cut: WalCutPoint | null = null;
  let tornTail: TornTail | null = null;
  for (let index = 0; index < log.segments.length; index++) {
    const file = log.segments[index]!;
    const isLast = index === log.segments.length - 1;
    const problem = (offset: number, message: string, code: WalProblem['code'] = 'ERR_CORRUPTION'): void => {
      problems.push({ file: file.path, offset, code, message, partition: null });
      cut ??= { segmentIndex: index, file: file.path, offset };
    };
    /** Damage up to `endOffset`: skipped, as opening skips it, where every checkpoint covers it. */
    const damage = (offset: number, endOffset: number, reason: string): void => {
      if (skipping.coverage?.covers(file.name, endOffset) === true) {
        skipping.skippedDamage.push({ file: file.path, offset, endOffset, reason });
      } else problem(offset, reason);
    };
    const report = { file: file.path, ordinal: file.name.ordinal, bytes: -1, records: 0 };
    segments.push(report);
    const previous = log.segments[index - 1];
    if (previous !== undefined && file.name.ordinal !== previous.name.ordinal + 1) {
      const missing = `${previous.name.ordinal + 1}..${file.name.ordinal - 1}`;
      const reason = `segments ${missing} of the ${describeLog(log.log)} are missing`;
      const lastMissing = { ...file.name, ordinal: file.name.ordinal - 1 };
      if (skipping.coverage?.covers(lastMissing, Number.POSITIVE_INFINITY) === true) {
        skipping.skippedDamage.push({ file: file.path, offset: 0, endOffset: 0, reason });
      } else problem(0, reason);
      // What follows a hole cannot be checked against what came before it: the hole is the report.
      scanOptions.lastLsns.clear();
    }
    let bytes: Buffer;
    try {
      bytes = await readSegmentFile(file.path);
    } catch (error) {
      if (!(error instanceof LightningError) || error.code !== 'ERR_CORRUPTION') throw error;
      problem(0, error.message);
      continue;
    }
    report.bytes = bytes.length;
    if (bytes.length < segmentHeaderBytes) {
      if (isLast) {
        tornTail = { file: file.path, offset: 0, bytesDropped: bytes.length };
        cut ??= { segmentIndex: index, file: file.path, offset: 0 };
      } else {
        damage(0, bytes.length, `${bytes.length} bytes, shorter than a segment header`);
      }
      continue;
    }
    const header = decodeSegmentHeader(h32Raw, bytes, file.name);
    if (isSegmentHeaderProblem(header)) {
      problem(0, header.reason, header.code);
      continue;
    }
    const scan = scanSegment(h32Raw, bytes, scanOptions);
    for (const broken of scan.breaks) {
      if (broken.resumeOffset === null && !broken.verified && isLast) {
        tornTail = { file: file.path, offset: broken.offset, bytesDropped: bytes.length - broken.offset };
        cut ??= { segmentIndex: index, file: file.path, offset: broken.offset };
      } else if (broken.verified) {
        problem(broken.offset, broken.reason);
      } else {
        const where = broken.resumeOffset === null ? ' (not the last segment of its log)' : '';
        damage(broken.offset, broken.resumeOffset ?? bytes.length, `${broken.reason}${where}`);
      }
    }
    report.records = scan.records;
    for (const [partition, span] of scan.partitions) {
      const seen = partitions.get(partition);
      if (seen === undefined) partitions.set(partition, { ...span, file: file.path });
      else {
        seen.records += span.records;
        seen.bytes += span.bytes;
        seen.lastLsn = span.lastLsn;
      }
    }
  }
  const report: WalLogReport = {
    log: log.log,
    segments,
    records: segments.reduce((sum, segment) => sum + segment.records, 0),
    bytes: segments.reduce((sum, segment) => sum + Math.max(0, segment.bytes), 0),
    tornTail,
    cut,
  };
  return { report, partitions };
}

/**
 * Checks one partition's records across the logs, oldest first: from its replay start on, each log
 * must continue where the previous one ended. Below the start, gaps are fine (those records are in
 * the checkpoint, and their segments may be gone).
 */
function checkAcrossLogs(
  partition: number,
  spans: readonly LogSpan[],
  replayStart: number | undefined,
  problems: WalProblem[],
): void {
  let nextLsn = replayStart ?? spans[0]!.firstLsn;
  let started = false;
  for (const span of spans) {
    if (span.lastLsn < nextLsn && !started) continue;
    if (span.firstLsn > nextLsn) {
      const after = started
        ? `the previous log ends at LSN ${nextLsn - 1}`
        : `its replay starts at LSN ${nextLsn}`;
      problems.push({
        file: span.file,
        offset: span.firstOffset,
        code: 'ERR_CORRUPTION',
        message: `partition ${partition}: records ${nextLsn}..${span.firstLsn - 1} are missing: this log continues at LSN ${span.firstLsn}, and ${after}`,
        partition,
      });
    } else if (started && span.firstLsn < nextLsn) {
      problems.push({
        file: span.file,
        offset: span.firstOffset,
        code: 'ERR_CORRUPTION',
        message: `partition ${partition}: this log starts at LSN ${span.firstLsn}, which an earlier log already holds (up to LSN ${nextLsn - 1})`,
        partition,
      });
    }
    nextLsn = span.lastLsn + 1;
    started = true;
  }
}

/** The log's cut, moved earlier to the first problem across logs that lies in it. */
function withGapCut(report: WalLogReport, problems: readonly WalProblem[]): WalLogReport {
  let cut = report.cut;
  for (const problem of problems) {
    if (problem.partition === null) continue;
    const segmentIndex = report.segments.findIndex((segment) => segment.file === problem.file);
    if (segmentIndex < 0) continue;
    const earlier =
      cut === null ||
      segmentIndex < cut.segmentIndex ||
      (segmentIndex === cut.segmentIndex && problem.offset < cut.offset);
    if (earlier) cut = { segmentIndex, file: problem.file, offset: problem.offset };
  }
  return cut === report.cut ? report : { ...report, cut };
}
