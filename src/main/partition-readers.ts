import { TreeReader } from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import type { BufferPool } from '../shared-memory/pool/buffer-pool.js';
import type { TreeHandle } from '../shared-memory/tree/tree-handle.js';
import {
  type AttachedPartitionTree,
  attachPartitionTree,
  type PartitionTreeHandle,
} from '../storage/page-file/paged-tree-handle.js';

/** This thread's readers of every partition, and what closes the page files they opened. */
export interface PartitionReaders {
  readers: VersionedReader[];
  /** The pools of the trees over page files, attached on this thread. */
  pools: BufferPool[];
  /** Each partition's pool, null for a tree in an arena. */
  partitionPools: (BufferPool | null)[];
  /** Gives back each pool's holder slot and page file descriptor; no read may be under way. */
  close(): void;
}

/**
 * Attaches this thread to every partition's tree and version store. A tree over a page file takes a
 * holder slot in its pool and a descriptor of its own for the misses this thread serves itself.
 */
export async function attachPartitionReaders(
  trees: readonly PartitionTreeHandle[],
  versionTrees: readonly TreeHandle[],
  mvcc: MvccState,
): Promise<PartitionReaders> {
  const attached: AttachedPartitionTree[] = [];
  const close = (): void => {
    for (const tree of attached) tree.close();
    attached.length = 0;
  };
  try {
    for (const tree of trees) attached.push(await attachPartitionTree(tree));
  } catch (error) {
    close();
    throw error;
  }
  const readers = attached.map(
    ({ reader }, partition) => new VersionedReader(reader, TreeReader.attach(versionTrees[partition]!), mvcc),
  );
  const partitionPools = attached.map(({ pool }) => pool);
  const pools = partitionPools.flatMap((pool) => (pool === null ? [] : [pool]));
  return { readers, pools, partitionPools, close };
}
