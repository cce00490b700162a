import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import { poolBytesMax } from '../shared-memory/limits.js';
import { poolRegions } from '../shared-memory/pool/pool-layout.js';
import type { Manifest } from '../storage/checkpoint/index.js';
import { partitionDirectory } from '../storage/layout.js';
import { pageFileName } from '../storage/page-file/page-file-format.js';
import { readPageFileHeader } from '../storage/page-file/page-file-reader.js';
import { createPageFile } from '../storage/page-file/page-file-writer.js';

/**
 * The fewest frames a partition's buffer pool may have: a write needs its path, its overflow pages
 * and the pool's margin in frames at once, and cleanup needs two pages per level.
 */
export const poolFramesPerPartitionMin = 64;

/** Where a database's partitions live for this open, and with which page size. */
export interface PartitionStorage {
  /**
   * Frames of each partition's buffer pool (its pages in a page file, at most this many in memory),
   * or null: each partition lives whole in memory, in an arena, checkpointed to checkpoint files.
   */
  framesPerPartition: number | null;
  pageSizeBytes: number;
}

export interface StorageChoice {
  /** The `memoryMaxBytes` option, or null if not given. */
  memoryMaxBytes: number | null;
  /** The `pageSizeBytes` option as given (undefined: the default), and as resolved. */
  pageSizeBytesGiven: number | undefined;
  pageSizeBytes: number;
  partitionBytesMax: number;
  readOnly: boolean;
}

/** How one partition's files say it is stored. */
type PartitionKind = 'pages' | 'arena' | 'empty';

/**
 * Decides how this open keeps the partitions, from their files and the options, and creates the page
 * files a paged database lacks. A partition whose manifest names a checkpoint file lives in an
 * arena; one whose manifest names its page file, or that has a page file and no checkpoint yet, lives
 * over its page file. A database keeps the storage it has: `memoryMaxBytes` sets the memory of a paged
 * one, and makes a new database (or one that never checkpointed) paged; a database checkpointed in
 * memory cannot be opened with it (converting one is not supported). A paged database opened without
 * `memoryMaxBytes` keeps every page it reads in memory, as far as one pool can hold.
 *
 * `manifests`: each partition's manifest, or null for a new database (its manifests are just written).
 */
export async function decidePartitionStorage(
  directory: string,
  partitions: number,
  manifests: readonly Manifest[] | null,
  choice: StorageChoice,
): Promise<PartitionStorage> {
  const kinds: PartitionKind[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    kinds.push(await partitionKind(directory, partition, manifests?.[partition] ?? null));
  }
  const paged = kinds.includes('pages');
  if (paged && kinds.includes('arena')) {
    const arena = kinds.indexOf('arena');
    const pages = kinds.indexOf('pages');
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${pages} lives in a page file and partition ${arena} in checkpoint files: ` +
        `one database keeps all its partitions one way (${directory})`,
    );
  }
  if (choice.memoryMaxBytes !== null && kinds.includes('arena')) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `${directory} keeps its partitions in memory (it was created without memoryMaxBytes and has ` +
        'checkpoints); opening it with memoryMaxBytes would need a conversion, which is not supported: ' +
        'open it without memoryMaxBytes, or back it up and load the data into a new database',
    );
  }
  if (!paged && choice.memoryMaxBytes === null) {
    return { framesPerPartition: null, pageSizeBytes: choice.pageSizeBytes };
  }
  if (choice.readOnly) {
    throw new LightningError(
      'ERR_NOT_SUPPORTED',
      `${directory}: a database over page files (memoryMaxBytes) cannot be opened read-only yet`,
    );
  }
  const pageSizeBytes = paged ? await pagedPageSize(directory, kinds, choice) : choice.pageSizeBytes;
  // Partitions with no page file and no checkpoint: the whole log holds them, so a page file
  // created now (holding nothing) and the log replayed into it lose nothing.
  for (let partition = 0; partition < partitions; partition++) {
    if (kinds[partition] === 'empty')
      await createPageFile(partitionDirectory(directory, partition), { pageSizeBytes, partition });
  }
  return {
    framesPerPartition: framesPerPartition(partitions, pageSizeBytes, choice),
    pageSizeBytes,
  };
}

async function partitionKind(
  directory: string,
  partition: number,
  manifest: Manifest | null,
): Promise<PartitionKind> {
  const dir = partitionDirectory(directory, partition);
  const named = manifest?.checkpoints.find((record) => record.partition === partition)?.file ?? null;
  const hasPages = await fileExists(join(dir, pageFileName));
  if (named === pageFileName) {
    if (!hasPages) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `partition ${partition}: its manifest names its page file ${join(dir, pageFileName)}, which is missing`,
      );
    }
    return 'pages';
  }
  if (named !== null) return 'arena';
  return hasPages ? 'pages' : 'empty';
}

/** The page size the page files were created with; a different `pageSizeBytes` is refused. */
async function pagedPageSize(
  directory: string,
  kinds: readonly PartitionKind[],
  choice: StorageChoice,
): Promise<number> {
  const partition = kinds.indexOf('pages');
  const header = await readPageFileHeader(partitionDirectory(directory, partition));
  if (choice.pageSizeBytesGiven !== undefined && choice.pageSizeBytesGiven !== header.pageSizeBytes) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `pageSizeBytes ${choice.pageSizeBytesGiven}: ${directory}'s page files have ${header.pageSizeBytes}-byte pages, ` +
        'fixed when they were created',
    );
  }
  return header.pageSizeBytes;
}

/**
 * Each partition's share of `memoryMaxBytes` in frames, or without it every page a partition may hold;
 * at most what one pool's buffer takes (below 2 GiB).
 */
function framesPerPartition(partitions: number, pageSizeBytes: number, choice: StorageChoice): number {
  const pagesMax = Math.floor(choice.partitionBytesMax / pageSizeBytes);
  let frames = pagesMax;
  if (choice.memoryMaxBytes !== null) {
    frames = Math.floor(choice.memoryMaxBytes / partitions / pageSizeBytes);
    const least = poolFramesPerPartitionMin * partitions * pageSizeBytes;
    if (frames < poolFramesPerPartitionMin) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `memoryMaxBytes ${choice.memoryMaxBytes} gives each of ${partitions} partitions ${frames} pages of ` +
          `${pageSizeBytes} bytes; each needs at least ${poolFramesPerPartitionMin} (memoryMaxBytes >= ${least})`,
      );
    }
    frames = Math.min(frames, pagesMax);
  }
  while (
    frames > poolFramesPerPartitionMin &&
    poolRegions(pageSizeBytes, pagesMax, frames).totalBytes > poolBytesMax
  ) {
    frames = Math.floor(frames * 0.99);
  }
  return frames;
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
