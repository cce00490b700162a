import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { readdirIfExists } from '../durable-file.js';
import { perPartitionWalDirectory, walDirectory } from '../layout.js';
import { listLogs } from './wal-files.js';
import { perPartitionUpgradeAdvice } from './wal-format.js';
import { type TornTail, truncateTornTail } from './wal-reader.js';

/**
 * Readies the log directory of the database at `databaseDirectory` for a new run, before any owner
 * starts: refuses the per-partition layout of WAL format version 1 (ERR_FORMAT_VERSION saying what
 * to do) and returns the run's epoch, above every epoch in the directory, so that no writer of this
 * run ever appends to a file of an earlier one.
 */
export async function startWalRun(databaseDirectory: string): Promise<{ epoch: number }> {
  await refusePerPartitionLayout(databaseDirectory);
  const logs = await listLogs(walDirectory(databaseDirectory));
  return { epoch: logs.reduce((newest, log) => Math.max(newest, log.log.epoch), 0) + 1 };
}

/**
 * Cuts the torn tails the owners met while they recovered (each owner reads every earlier log, so
 * each meets the same ones). Done once, by the opener, after every owner finished reading: an owner
 * cutting a file another is still reading would race. A crash before the cut leaves the tails to
 * the next open. A segment already gone (removed meanwhile, its partitions checkpointed) is fine.
 * Returns the tails cut, each once.
 */
export async function cutTornTails(tornTails: readonly TornTail[]): Promise<TornTail[]> {
  const byFile = new Map<string, TornTail>();
  for (const torn of tornTails) byFile.set(torn.file, torn);
  const cut: TornTail[] = [];
  for (const torn of byFile.values()) {
    try {
      await truncateTornTail(torn.file, torn.offset);
      cut.push(torn);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return cut;
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
