import { dirname } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { fileLayer } from '../file-layer.js';
import { listLogs, readSegmentFile, syncDirectory } from './wal-files.js';
import {
  decodeSegmentHeader,
  isSegmentHeaderProblem,
  type LogId,
  loadH32Raw,
  segmentHeaderBytes,
} from './wal-format.js';
import { truncateTornTail } from './wal-reader.js';
import { scanSegment } from './wal-segment-scan.js';
import { type VerifyWalOptions, verifyWal, type WalLogReport, type WalVerifyReport } from './wal-verify.js';

/** Records of one partition that a cut drops. */
export interface WalDroppedRecords {
  readonly partition: number;
  readonly records: number;
  readonly firstLsn: number;
  readonly lastLsn: number;
}

/** One stretch of a log that a repair removes. */
export interface WalDroppedRange {
  readonly file: string;
  readonly fromOffset: number;
  /** The file's size before the repair; the range is [fromOffset, toOffset). */
  readonly toOffset: number;
  readonly fileDeleted: boolean;
  /** Records in the range that verified, and by partition. */
  readonly records: number;
  readonly partitions: readonly WalDroppedRecords[];
}

export interface WalLogRepair {
  readonly log: LogId;
  readonly dropped: readonly WalDroppedRange[];
}

export interface WalRepairPlan {
  /** The verification the plan was made from. */
  readonly report: WalVerifyReport;
  /** Logs to cut, oldest first. */
  readonly logs: readonly WalLogRepair[];
  /** Each partition that loses records it needs (at or past its replay start), from which LSN on. */
  readonly lost: readonly { partition: number; fromLsn: number }[];
}

/** A verified record's place in its log. */
interface PlacedRecord {
  segmentIndex: number;
  offset: number;
  end: number;
  partition: number;
  lsn: number;
}

/**
 * Plans the only repair that never invents data: each damaged log is cut at the end of its valid
 * prefix, and everything after goes, even records that verified. Because a partition's sequence runs
 * on in later logs, a cut that drops a partition's records also cuts every later log at that
 * partition's first record past them: replaying later writes without earlier ones would be worse
 * than losing both. The plan changes nothing; `repairWal` applies it.
 */
export async function planWalRepair(dir: string, options: VerifyWalOptions = {}): Promise<WalRepairPlan> {
  const report = await verifyWal(dir, options);
  const logs = await listLogs(dir);
  const h32Raw = await loadH32Raw();
  const starts = options.replayStarts ?? new Map<number, number>();
  /** The first LSN each partition lost to the cuts so far. */
  const lost = new Map<number, number>();
  /** The last LSN of each partition that the cuts so far keep. */
  const lastKept = new Map<number, number>();
  const repairs: WalLogRepair[] = [];
  for (let i = 0; i < logs.length; i++) {
    const files = logs[i]!;
    const logReport = report.logs[i]!;
    const records: PlacedRecord[] = [];
    const sizes: number[] = [];
    for (let segmentIndex = 0; segmentIndex < files.segments.length; segmentIndex++) {
      const bytes = await readSegmentFile(files.segments[segmentIndex]!.path).catch(() => null);
      sizes.push(bytes?.length ?? 0);
      if (bytes === null || bytes.length < segmentHeaderBytes) continue;
      if (isSegmentHeaderProblem(decodeSegmentHeader(h32Raw, bytes, files.segments[segmentIndex]!.name)))
        continue;
      scanSegment(h32Raw, bytes, {
        lastLsns: new Map(),
        breaksMax: Number.POSITIVE_INFINITY,
        onRecord: (offset, partition, lsn, end) =>
          records.push({ segmentIndex, offset, end, partition, lsn }),
      });
    }
    let cut =
      logReport.cut === null
        ? null
        : { segmentIndex: logReport.cut.segmentIndex, offset: logReport.cut.offset };
    for (const record of records) {
      if (cut !== null && before(cut, record) === false) break;
      const threshold = lost.get(record.partition);
      if (threshold !== undefined && record.lsn >= Math.max(threshold, starts.get(record.partition) ?? 0)) {
        cut = { segmentIndex: record.segmentIndex, offset: record.offset };
        break;
      }
    }
    const finalCut = cut;
    for (const record of records) {
      if (finalCut === null || before(finalCut, record)) lastKept.set(record.partition, record.lsn);
    }
    if (finalCut === null) continue;
    const dropped = records.filter((record) => !before(finalCut, record));
    for (const record of dropped) {
      // What a partition loses starts right after what it keeps (the damaged record, whose LSN is
      // unreadable, included), and only what its checkpoint does not hold counts.
      const start = starts.get(record.partition) ?? 0;
      if (record.lsn < start) continue;
      const kept = lastKept.get(record.partition);
      const from = Math.max(kept === undefined ? record.lsn : kept + 1, start);
      lost.set(record.partition, Math.min(lost.get(record.partition) ?? from, from));
    }
    repairs.push({ log: files.log, dropped: droppedRanges(logReport, finalCut, dropped, sizes) });
  }
  return {
    report,
    logs: repairs,
    lost: [...lost].sort((a, b) => a[0] - b[0]).map(([partition, fromLsn]) => ({ partition, fromLsn })),
  };
}

/** True if the record lies wholly before the cut. */
function before(cut: { segmentIndex: number; offset: number }, record: PlacedRecord): boolean {
  return (
    record.segmentIndex < cut.segmentIndex ||
    (record.segmentIndex === cut.segmentIndex && record.end <= cut.offset)
  );
}

function droppedRanges(
  log: WalLogReport,
  cut: { segmentIndex: number; offset: number },
  dropped: readonly PlacedRecord[],
  sizes: readonly number[],
): WalDroppedRange[] {
  const ranges: WalDroppedRange[] = [];
  for (let segmentIndex = cut.segmentIndex; segmentIndex < log.segments.length; segmentIndex++) {
    const fromOffset = segmentIndex === cut.segmentIndex ? cut.offset : 0;
    const inRange = dropped.filter((record) => record.segmentIndex === segmentIndex);
    const byPartition = new Map<number, WalDroppedRecords>();
    for (const record of inRange) {
      const seen = byPartition.get(record.partition);
      byPartition.set(record.partition, {
        partition: record.partition,
        records: (seen?.records ?? 0) + 1,
        firstLsn: Math.min(seen?.firstLsn ?? record.lsn, record.lsn),
        lastLsn: Math.max(seen?.lastLsn ?? record.lsn, record.lsn),
      });
    }
    ranges.push({
      file: log.segments[segmentIndex]!.file,
      fromOffset,
      toOffset: sizes[segmentIndex]!,
      fileDeleted: fromOffset === 0,
      records: inRange.length,
      partitions: [...byPartition.values()].sort((a, b) => a.partition - b.partition),
    });
  }
  return ranges;
}

export type WalRepairResult = WalRepairPlan;

/**
 * Applies `planWalRepair`: in each log to cut, deletes the segments after the cut newest first, then
 * truncates the cut segment (or deletes it, when the cut is at its start). A crash during the
 * repair leaves logs that a second repair cuts at the same places. Refuses (ERR_FORMAT_VERSION) to
 * touch logs with a segment of another format: that is not damage. Never called automatically.
 */
export async function repairWal(dir: string, options: VerifyWalOptions = {}): Promise<WalRepairResult> {
  const plan = await planWalRepair(dir, options);
  const other = plan.report.problems.find((problem) => problem.code === 'ERR_FORMAT_VERSION');
  if (other !== undefined)
    throw new LightningError('ERR_FORMAT_VERSION', `${other.file}: ${other.message}; not repairing`);
  for (const log of [...plan.logs].reverse()) {
    const ranges = [...log.dropped].reverse();
    for (const range of ranges) {
      if (range.fileDeleted) await fileLayer().unlink(range.file);
      else await truncateTornTail(range.file, range.fromOffset);
    }
    if (ranges.some((range) => range.fileDeleted)) await syncDirectory(dirname(ranges[0]!.file));
  }
  return plan;
}
