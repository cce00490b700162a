import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { readdirIfExists } from '../durable-file.js';
import { perPartitionWalDirectory, walDirectory } from '../layout.js';
import { listLogs, readSegmentFile } from './wal-files.js';
import {
  decodeSegmentHeader,
  isSegmentHeaderProblem,
  loadH32Raw,
  perPartitionUpgradeAdvice,
  segmentHeaderBytes,
} from './wal-format.js';
import { type TornTail, truncateTornTail } from './wal-reader.js';
import { scanSegment } from './wal-segment-scan.js';

/** What the logs look like as a run starts. */
export interface WalRunStart {
  /** The new run's epoch: above every epoch in the directory, so no writer reuses a file. */
  readonly epoch: number;
  /** Torn tails cut from the logs of earlier runs. */
  readonly tornTails: readonly TornTail[];
}

/**
 * Readies the log directory of the database at `databaseDirectory` for a new run, before any owner
 * starts: refuses the per-partition layout of WAL format version 1 (ERR_FORMAT_VERSION saying what
 * to do), cuts the torn tail a crash left at the end of each earlier log, and picks the run's epoch.
 *
 * The tails are cut here, once, rather than by the owners: every owner reads every earlier log, and
 * two of them truncating the same file while a third reads it would race. Only each log's last
 * segment is read here (only it can be torn); the owners verify everything as they replay.
 */
export async function startWalRun(databaseDirectory: string): Promise<WalRunStart> {
  await refusePerPartitionLayout(databaseDirectory);
  const h32Raw = await loadH32Raw();
  const logs = await listLogs(walDirectory(databaseDirectory));
  const tornTails: TornTail[] = [];
  for (const log of logs) {
    const last = log.segments.at(-1)!;
    const bytes = await readSegmentFile(last.path);
    if (bytes.length < segmentHeaderBytes) {
      tornTails.push({ file: last.path, offset: 0, bytesDropped: bytes.length });
      continue;
    }
    const header = decodeSegmentHeader(h32Raw, bytes, last.name);
    if (isSegmentHeaderProblem(header)) {
      throw new LightningError(header.code, `WAL: ${last.path} at byte 0: ${header.reason}`);
    }
    // Damage that is not a torn tail is left for the owners' replay, which names it.
    const broken = scanSegment(h32Raw, bytes, { lastLsns: new Map(), breaksMax: 1 }).breaks[0];
    if (broken !== undefined && !broken.verified && broken.resumeOffset === null) {
      tornTails.push({ file: last.path, offset: broken.offset, bytesDropped: bytes.length - broken.offset });
    }
  }
  for (const torn of tornTails) await truncateTornTail(torn.file, torn.offset);
  const epoch = logs.reduce((newest, log) => Math.max(newest, log.log.epoch), 0) + 1;
  return { epoch, tornTails };
}

/** ERR_FORMAT_VERSION if a partition directory still holds a log of its own (WAL format version 1). */
export async function refusePerPartitionLayout(databaseDirectory: string): Promise<void> {
  const partitionsDirectory = join(databaseDirectory, 'partitions');
  for (const name of await readdirIfExists(partitionsDirectory)) {
    const legacy = perPartitionWalDirectory(join(partitionsDirectory, name));
    if (await isDirectory(legacy)) {
      throw new LightningError(
        'ERR_FORMAT_VERSION',
        `${databaseDirectory}: ${legacy} exists: ${perPartitionUpgradeAdvice}`,
      );
    }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
