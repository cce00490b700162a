/**
 * Checkpoints: a partition's sorted entries as lz4-compressed, checksummed blocks in one file, and
 * the manifest that names each partition's current checkpoint.
 */
export { type CheckpointFileEntry, listCheckpoints } from './checkpoint-files.js';
export {
  blockTargetBytes,
  type CheckpointFooter,
  type CheckpointHeader,
  checkpointFileName,
  checkpointFormatVersion,
  parseCheckpointFileName,
} from './checkpoint-format.js';
export {
  type CheckpointInfo,
  readCheckpoint,
  readCheckpointHeader,
  verifyCheckpoint,
} from './checkpoint-reader.js';
export {
  type CheckpointBatch,
  type CheckpointEntry,
  type CheckpointWriteResult,
  writeCheckpoint,
} from './checkpoint-writer.js';
export {
  type CheckpointRecord,
  type DurableMark,
  type LogPosition,
  type Manifest,
  manifestFileName,
  manifestFormatVersion,
  type RecordCheckpointResult,
  readManifest,
  recordCheckpoint,
  recordDurableMark,
  recordPageSet,
  resetDurableMark,
  writeManifest,
} from './manifest.js';
