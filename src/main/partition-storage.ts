import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import { poolBytesMax } from '../shared-memory/limits.js';
import { poolRegions } from '../shared-memory/pool/pool-layout.js';
import type { Manifest } from '../storage/checkpoint/index.js';
import { partitionDirectory } from '../storage/layout.js';
import { liveLockHolder } from '../storage/lock-file.js';
import { processesHolding } from '../storage/open-file-holders.js';
import { doubleWriteFileName, pageFileName } from '../storage/page-file/page-file-format.js';
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
 * files a paged database lacks. A partition whose manifest names its page file, or that has a page
 * file and no checkpoint yet, lives over its page file; one whose manifest names a checkpoint file
 * lives in an arena, unless the database is paged. The database is paged when any partition is, or
 * when opened with `memoryMaxBytes`: then a partition with a checkpoint file is converted (recovery
 * loads the file into a fresh page file). A paged database opened without `memoryMaxBytes` keeps every
 * page it reads in memory, as far as one pool can hold. So a database in memory, or a restored backup
 * (backups are checkpoint files), becomes paged by opening it with `memoryMaxBytes`, for good.
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
  const paged = kinds.includes('pages') || choice.memoryMaxBytes !== null;
  if (!paged) {
    return { framesPerPartition: null, pageSizeBytes: choice.pageSizeBytes };
  }
  if (choice.readOnly) {
    // Read-only, the page files are read as they are: none is created, and none is loaded from a
    // checkpoint file (a conversion writes the page file and the manifest).
    // The page files are read as pages miss, not loaded at open: a writer's page sets would rewrite
    // them under this open's readers, which would then mix pages of two sets and miss keys.
    await refuseLiveWriter(directory);
    const unpaged = kinds.findIndex((kind) => kind !== 'pages');
    if (unpaged >= 0) {
      throw new LightningError(
        'ERR_NOT_SUPPORTED',
        kinds.includes('pages')
          ? `${directory}: partition ${unpaged} has no page file yet, and a read-only open creates none: open the database once without readOnly`
          : `${directory} keeps its partitions in memory; converting it to page files (memoryMaxBytes) writes them, which a read-only ` +
              'open does not: open it read-only without memoryMaxBytes, or once without readOnly to convert it',
      );
    }
  }
  if (!choice.readOnly) refuseOpenReaders(directory, kinds);
  const pageSizeBytes = kinds.includes('pages')
    ? await pagedPageSize(directory, kinds, choice)
    : choice.pageSizeBytes;
  // Checked before any file is created: a refused open leaves the directory as it was.
  const frames = framesPerPartition(partitions, pageSizeBytes, choice);
  for (let partition = 0; partition < partitions; partition++) {
    const dir = partitionDirectory(directory, partition);
    // No page file and no checkpoint: the whole log holds the partition, so a page file created now
    // (holding nothing) and the log replayed into it lose nothing.
    if (kinds[partition] === 'empty') await createPageFile(dir, { pageSizeBytes, partition });
    // A checkpoint file: recovery loads it into a fresh page file, and the partition's first page
    // set recorded in its manifest ends the conversion. Until then the manifest names the checkpoint
    // file, and a page file left by a conversion a crash cut short holds nothing it needs.
    if (kinds[partition] === 'arena') {
      await rm(join(dir, pageFileName), { force: true });
      await rm(join(dir, doubleWriteFileName), { force: true });
      await createPageFile(dir, { pageSizeBytes, partition });
    }
  }
  return { framesPerPartition: frames, pageSizeBytes };
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
export function framesPerPartition(partitions: number, pageSizeBytes: number, choice: StorageChoice): number {
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

/**
 * A writable open must not start while a read-only open reads the page files: it takes no lock a
 * writer could see (it changes nothing in the directory), and this open's page sets would rewrite
 * the pages under its readers. The processes holding the page files open are found through /proc
 * (processesHolding: Linux, processes of this user); this process's own descriptors count too.
 */
function refuseOpenReaders(directory: string, kinds: readonly PartitionKind[]): void {
  const pageFiles = kinds.flatMap((kind, partition) =>
    kind === 'pages' ? [join(partitionDirectory(directory, partition), pageFileName)] : [],
  );
  const holders = processesHolding(pageFiles);
  if (holders.length === 0) return;
  const named = holders
    .map((pid) => (pid === process.pid ? `${pid} (this process)` : String(pid)))
    .join(', ');
  throw new LightningError(
    'ERR_LOCKED',
    `${directory}: its page files are open in process ${named}, read-only or by a command reading them, and ` +
      'the page sets of a writable open would rewrite them under its reads: close it there first',
  );
}

/**
 * A read-only open of a paged database must not read beside a writer: its page sets rewrite the page
 * files this open reads as pages miss. Checked before the page files are opened, and again once they
 * are (open()): a writer that took the lock in between found no reader holding them, so this finds it.
 */
export async function refuseLiveWriter(directory: string): Promise<void> {
  const writer = await liveLockHolder(directory);
  if (writer === null) return;
  const self = writer.pid === process.pid ? ' (this process)' : '';
  throw new LightningError(
    'ERR_LOCKED',
    `${directory} is open for writing in process ${writer.pid}${self}, and its page sets rewrite the page files ` +
      'a read-only open reads as it goes: close it there first',
  );
}
