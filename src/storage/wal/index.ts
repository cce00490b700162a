/**
 * The owners' write-ahead logs: the file format, the writer (one log per owner worker per run), the
 * per-partition views the owner loop appends through, the reader, run start, segment removal, and
 * the verifier and repair tool.
 */

export { LogCoverage } from './log-coverage.js';
export type { SegmentContents } from './wal-files.js';
export {
  type LogId,
  lsnFirst,
  recordPayloadBytesMax,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
  segmentFileName,
  segmentHeaderBytes,
  segmentTargetBytesDefault,
  segmentTargetBytesMax,
  segmentTargetBytesMin,
  type WalRecordType,
  walFormatVersion,
} from './wal-format.js';
export {
  flushOwnerLogs,
  PartitionLog,
  type PartitionLogMark,
  type PartitionLogStats,
  syncOwnerLogs,
} from './wal-partition-log.js';
export {
  type ReadWalOptions,
  type ReadWalResult,
  readWal,
  type SkippedDamage,
  type TornTail,
  truncateTornTail,
  type WalRecord,
} from './wal-reader.js';
export {
  planWalRepair,
  repairWal,
  type WalDroppedRange,
  type WalDroppedRecords,
  type WalLogRepair,
  type WalRepairPlan,
  type WalRepairResult,
} from './wal-repair.js';
export { type CheckpointStart, SegmentRemoval } from './wal-segment-removal.js';
export { cutTornTails, refusePerPartitionLayout, startWalRun } from './wal-startup.js';
export {
  type VerifyWalOptions,
  verifyWal,
  type WalCutPoint,
  type WalLogReport,
  type WalPartitionReport,
  type WalProblem,
  type WalSegmentReport,
  type WalVerifyReport,
} from './wal-verify.js';
export { WalWriter, type WalWriterOptions, type WalWriterStats } from './wal-writer.js';
