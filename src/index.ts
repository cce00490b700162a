/**
 * lightning-db: an embedded key-value engine for Node.js whose data lives in SharedArrayBuffers.
 *
 * This build ships the foundation: the shared-memory B+Tree that holds one partition, readable from
 * any thread while its owner writes. The database API of the design (`open`, partitions owned by
 * worker threads, durability, transactions) is built on top of it.
 */

export { attach } from './main/attach.js';
export {
  type BatchOperation,
  Database,
  type DatabaseStats,
  type RecoveryStats,
  type WorkerStats,
} from './main/database.js';
export type { DatabaseHandle } from './main/database-handle.js';
export { open } from './main/open.js';
export type { Durability, OpenOptions } from './main/open-options.js';
export {
  BTree,
  type BTreeOptions,
  checkTree,
  isLightningError,
  keyBytesMax,
  LightningError,
  type LightningErrorCode,
  pageSizeBytesDefault,
  type RangeOptions,
  type TreeCheckReport,
  type TreeHandle,
  TreeReader,
  type TreeStats,
  valueBytesMax,
} from './shared-memory/index.js';
export type { CheckpointResult } from './workers/partition-checkpoint.js';
