import { BTree } from '../shared-memory/index.js';
import { partitionDirectory } from '../storage/layout.js';
import type { OwnerConfig } from './owner-protocol.js';
import { PagedTree } from './paged-tree.js';

/** One partition's tree as its owner opens it, before recovery. */
export interface OwnerTree {
  partition: number;
  tree: BTree;
  /** Its page file and pool, when the database keeps its partitions in page files. */
  pages: PagedTree | null;
}

/**
 * Creates (and first-touches) the owner's partitions' trees: each a fresh arena, or, with
 * `poolFrames`, the tree over the partition's page file (its pages load as they are read). On failure
 * nothing stays open.
 */
export async function openOwnerTrees(config: OwnerConfig): Promise<OwnerTree[]> {
  const { pageSizeBytes, partitionBytesMax, poolFrames } = config;
  if (poolFrames === null) {
    return config.partitions.map((partition) => ({
      partition,
      tree: BTree.create({ pageSizeBytes, maxBytes: partitionBytesMax }),
      pages: null,
    }));
  }
  const opened: OwnerTree[] = [];
  try {
    for (const partition of config.partitions) {
      const pages = await PagedTree.open({
        dir: partitionDirectory(config.path, partition),
        partition,
        pageSizeBytes,
        pagesMax: Math.floor(partitionBytesMax / pageSizeBytes),
        framesMax: poolFrames,
        readOnly: config.readOnly,
      });
      opened.push({ partition, tree: pages.tree, pages });
    }
  } catch (error) {
    closeOwnerTrees(opened);
    throw error;
  }
  return opened;
}

/** Frees the pools and closes the page files of trees over page files. */
export function closeOwnerTrees(trees: readonly OwnerTree[]): void {
  for (const { pages } of trees) pages?.close();
}
