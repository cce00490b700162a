/**
 * lightning-db: an embedded key-value engine for Node.js whose data lives in SharedArrayBuffers.
 *
 * This build ships the foundation: the shared-memory B+Tree that holds one partition, readable from
 * any thread while its owner writes. The database API of the design (`open`, partitions owned by
 * worker threads, durability, transactions) is built on top of it.
 */
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
