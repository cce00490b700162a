import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LightningError } from '../../shared-memory/index.js';
import { type RestoreProgress, restore, type VerifyBackupResult, verifyBackup } from '../restore.js';
import { withDatabase } from './cli-database.js';
import { jsonText } from './cli-format.js';
import { DatabaseMissingError, exitOk } from './database-inspection.js';
import { createProgress, type Progress } from './progress.js';
import { count, createTransferProgress, humanBytes } from './transfer-progress.js';

/**
 * `lightning-cli backup <database> <directory>` and `lightning-cli restore <backup> [target]`: the
 * library's db.backup() and restore() from the shell, with progress on stderr (a bar on a terminal,
 * lines in a log) and the result on stdout (text, or JSON with --json).
 */

interface Flags {
  json?: boolean;
  quiet?: boolean;
}

interface RestoreFlags extends Flags {
  verifyOnly?: boolean;
}

async function runBackup(database: string, directory: string, flags: Flags): Promise<number> {
  const result = await withDatabase(database, {}, async (db) => {
    // Nothing else writes through this process, so the count now is what the snapshot will hold.
    const progress = createTransferProgress(
      'backup',
      { rows: db.stats().entries },
      { quiet: flags.quiet === true },
    );
    try {
      return await db.backup(directory, { onProgress: (p) => progress.update(p.entries, p.bytes) });
    } finally {
      progress.done();
    }
  });
  if (flags.json === true) {
    process.stdout.write(
      jsonText({
        command: 'backup',
        database: resolve(database),
        ...result,
        timestamp: result.timestamp.toString(),
      }),
    );
  } else {
    process.stdout.write(
      `backup of ${resolve(database)} written to ${result.dir}: ${count(result.entries)} entries at snapshot ` +
        `timestamp ${result.timestamp}, ${result.files} files, ${humanBytes(result.bytes)}, ` +
        `${Math.round(result.durationMs)} ms\n`,
    );
  }
  return exitOk;
}

/**
 * A restore's progress as one display of steps: each file checked (and copied: `verb` says which),
 * then each partition verified. The first report says how many there are.
 */
function restoreProgress(
  verb: 'check' | 'copy',
  quiet: boolean,
): { update: (p: RestoreProgress) => void; done: () => void } {
  let progress: Progress | null = null;
  let current = '';
  return {
    update(p) {
      progress ??= createProgress('restore', p.files + p.partitions, { quiet });
      const step = `${p.phase} ${p.file}`;
      if (p.file === '' || step === current) return;
      current = step;
      progress.step(
        p.phase === 'copy' ? `${verb} ${p.file}` : `verify partition ${p.partitionsDone + 1}/${p.partitions}`,
      );
    },
    done: () => progress?.done(),
  };
}

async function runRestore(backup: string, target: string | undefined, flags: RestoreFlags): Promise<number> {
  if (backup.trim() === '')
    throw new LightningError('ERR_BAD_ARGUMENT', 'the backup directory must not be empty');
  if (flags.verifyOnly === true && target !== undefined) {
    throw new LightningError('ERR_BAD_ARGUMENT', '--verify-only writes nothing, so it takes no target');
  }
  if (flags.verifyOnly !== true && target === undefined) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'restore needs a target directory (or --verify-only)');
  }
  const path = resolve(backup);
  const isDirectory = await stat(path).then(
    (stats) => stats.isDirectory(),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return false;
      throw error;
    },
  );
  if (!isDirectory)
    throw new DatabaseMissingError(`no backup at ${path}: it does not exist or is not a directory`);
  const display = restoreProgress(target === undefined ? 'check' : 'copy', flags.quiet === true);
  let result: VerifyBackupResult & { target?: string };
  try {
    result =
      target === undefined
        ? await verifyBackup(path, { onProgress: display.update })
        : await restore(path, target, { onProgress: display.update });
  } finally {
    display.done();
  }
  if (flags.json === true) {
    const command = target === undefined ? 'verify-backup' : 'restore';
    process.stdout.write(jsonText({ command, ok: true, ...result, timestamp: result.timestamp.toString() }));
  } else if (result.target === undefined) {
    process.stdout.write(
      `OK: backup ${result.dir} verified: ${count(result.entries)} entries in ${result.partitions} partitions at ` +
        `snapshot timestamp ${result.timestamp}, ${result.files} files, ${humanBytes(result.bytes)}\n`,
    );
  } else {
    process.stdout.write(
      `restored ${result.dir} into ${result.target}: ${count(result.entries)} entries at snapshot timestamp ` +
        `${result.timestamp}, ${result.files} files, ${humanBytes(result.bytes)}, ${Math.round(result.durationMs)} ms\n`,
    );
  }
  return exitOk;
}

const backupHelp = `
Opens the database and writes a backup of one snapshot of it into <directory>, which must not exist or
be empty. The backup is consistent: it holds exactly the writes committed at or before the snapshot's
timestamp, in every partition. It is itself a database directory (one checkpoint per partition, no
log) plus BACKUP.json, written last, with the checksum of every file. The database must not be open in
another process (use db.backup() there: backups are online).

Exit codes:
  0  the backup is complete
  1  another failure (an I/O error such as a full disk; nothing is left in <directory>)
  2  bad arguments: <directory> is not empty, or lies inside the database
  3  no database at <database>
  4  corruption found while opening the database
  5  the database is open in another process
`;

const restoreHelp = `
Verifies a backup completely (BACKUP.json, the size and xxh64 of every file, every checkpoint block)
and copies it into <target>, which must not exist or be empty, as a database that opens to exactly the
backup's snapshot. The copy is made beside <target> and renamed into place only once it is verified
and durable: on any failure, no <target> is left. With --verify-only, checks the backup and writes
nothing.

Exit codes:
  0  restored (or, with --verify-only, the backup is intact)
  1  another failure (an I/O error, a backup of a newer format)
  2  bad arguments: no <target> without --verify-only, or <target> is not empty
  3  no backup directory at <backup>
  4  corruption: a file differs from BACKUP.json, is missing, or BACKUP.json is missing (unfinished backup)
`;

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description('write a consistent backup of a database into a new directory')
    .argument('<database>', 'the database directory')
    .argument('<directory>', 'where to write the backup (must not exist or be empty)')
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', backupHelp)
    .action(async (database: string, directory: string, flags: Flags) => {
      process.exitCode = await runBackup(database, directory, flags);
    });
  program
    .command('restore')
    .description('verify a backup and restore it as a new database directory')
    .argument('<backup>', 'the backup directory')
    .argument('[target]', 'the database directory to create (must not exist or be empty)')
    .option('--verify-only', 'check the backup completely and write nothing')
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', restoreHelp)
    .action(async (backup: string, target: string | undefined, flags: RestoreFlags) => {
      process.exitCode = await runRestore(backup, target, flags);
    });
}
