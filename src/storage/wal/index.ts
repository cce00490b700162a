/** The write-ahead log of one partition: its file format, writer, reader, verifier and repair tool. */
export {
  flushBytesMax,
  lsnFirst,
  recordPayloadBytesMax,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
  segmentBytesMax,
  segmentFileName,
  segmentHeaderBytes,
  segmentTargetBytesDefault,
  segmentTargetBytesMax,
  segmentTargetBytesMin,
  type WalRecordType,
  walFormatVersion,
} from './wal-format.js';
export {
  type ReadWalOptions,
  type ReadWalResult,
  readWal,
  type TornTail,
  truncateTornTail,
  type WalRecord,
} from './wal-reader.js';
export {
  repairWal,
  verifyWal,
  type WalCutPoint,
  type WalDroppedRange,
  type WalProblem,
  type WalRepairResult,
  type WalSegmentReport,
  type WalVerifyReport,
} from './wal-verify.js';
export { WalWriter, type WalWriterOptions, type WalWriterStats } from './wal-writer.js';
