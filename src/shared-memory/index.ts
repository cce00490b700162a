/** The shared-memory layer: what lives in SharedArrayBuffers and is safe to use from any thread. */
export { type ArenaOptions, PageArena } from './arena.js';
export { bytesName, compareBytes, keyToBytes, valueToBytes } from './bytes.js';
export * from './control-layout.js';
export { isLightningError, LightningError, type LightningErrorCode } from './errors.js';
export {
  keyBytesMax,
  pageSizeBytesDefault,
  pageSizeBytesMax,
  pageSizeBytesMin,
  partitionBytesDefault,
  partitionBytesMax,
  valueBytesMax,
} from './limits.js';
export { PageAllocator } from './page-allocator.js';
export { CommandRing, RingConsumer, RingProducer } from './ring/command-ring.js';
export { BTree, type BTreeOptions } from './tree/btree.js';
export { checkTree, type TreeCheckReport } from './tree/check-tree.js';
export type { RangeOptions } from './tree/range-options.js';
export type { TreeHandle } from './tree/tree-handle.js';
export { TreeReader, type TreeStats } from './tree/tree-reader.js';
