import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';

/** The file that marks a database directory as open for writing, holding the owner's pid. */
export const lockFileName = 'LOCK';

/**
 * Takes the directory's lock: only one open database may write a directory's logs, or two owners
 * would interleave records in one log. The lock file holds the pid of the process that holds it. A
 * lock left by a process that no longer exists (killed, crashed) is stale and taken over; a lock held
 * by a live process, this one included, is ERR_LOCKED. (A pid reused by an unrelated process after a
 * crash looks live: remove the LOCK file by hand after checking no database process runs.)
 */
export async function acquireLock(directory: string): Promise<() => Promise<void>> {
  const file = join(directory, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return () => unlink(file).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
      throw new LightningError(
        'ERR_LOCKED',
        `${directory} is open in process ${holder}${holder === process.pid ? ' (this process)' : ''}; close it there first`,
      );
    }
    // Stale: its process is gone. Remove it and try once more (another opener may win the race).
    await unlink(file).catch(() => {});
  }
  throw new LightningError('ERR_LOCKED', `${directory} is being opened by another process`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
