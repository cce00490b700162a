#!/usr/bin/env node
/**
 * The `lightning-cli` entry: maintenance commands for a database directory, each in its own file
 * (verify-command.ts, repair-command.ts). This file only wires them into commander and turns every
 * failure into one clear line on stderr and an exit code that scripts can rely on.
 */
import { Command, CommanderError } from 'commander';
import { isLightningError } from '../../shared-memory/index.js';
import { registerBackupCommands } from './backup-commands.js';
import { registerBenchCommand } from './bench-command.js';
import { registerCheckpointCommand } from './checkpoint-command.js';
import { registerDataCommands } from './data-commands.js';
import {
  DatabaseMissingError,
  exitCorruption,
  exitDatabaseMissing,
  exitFailure,
  exitLocked,
  exitOk,
  exitUsage,
} from './database-inspection.js';
import { registerDumpCommand } from './dump-command.js';
import { registerLoadCommand } from './load-command.js';
import { registerRepairCommand } from './repair-command.js';
import { registerReplicaCommands } from './replica-commands.js';
import { registerScanCommand } from './scan-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerStatsCommand } from './stats-command.js';
import { exitStoreMissing, StoreMissingError } from './store-option.js';
import { registerStoresCommand } from './stores-command.js';
import { registerVerifyCommand } from './verify-command.js';

const exitCodesHelp = `
Exit codes (all commands):
  0  success
  1  another failure (I/O error, a full partition, files of a newer format)
  2  bad arguments or usage (and: repair needs --yes; load met a bad line)
  3  no database at the directory given
  4  corruption found
  5  the database is open in another live process
  6  not found: get of a key that is not there
  7  --store names a store the database does not have (get, scan, dump, load)
`;

/**
 * Errors commander raises are usage errors (it already printed them); a missing database, bad
 * arguments and corruption have their own codes; anything else is a failure of the environment or a
 * bug, reported as 1.
 */
function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? exitOk : exitUsage;
  if (error instanceof DatabaseMissingError) return exitDatabaseMissing;
  if (error instanceof StoreMissingError) return exitStoreMissing;
  if (isLightningError(error, 'ERR_BAD_ARGUMENT')) return exitUsage;
  if (isLightningError(error, 'ERR_CORRUPTION')) return exitCorruption;
  if (isLightningError(error, 'ERR_LOCKED')) return exitLocked;
  return exitFailure;
}

function report(error: unknown): void {
  // Commander printed its own message (and usage hint) before throwing.
  if (error instanceof CommanderError) return;
  if (
    isLightningError(error) ||
    (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string')
  ) {
    process.stderr.write(`lightning-cli: ${error.message}\n`);
    return;
  }
  // Not an error we raise on purpose, nor one from the file system: a bug, so keep its stack.
  process.stderr.write(
    `lightning-cli: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
}

function buildProgram(): Command {
  const program = new Command('lightning-cli')
    .description('Look at, load, dump and maintain a lightning-db database directory.')
    // Throw instead of calling process.exit, so every failure gets our exit code and stdout is flushed.
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', exitCodesHelp);
  // Subcommands inherit the settings above only if they are added after them.
  registerDataCommands(program);
  registerScanCommand(program);
  registerStatsCommand(program);
  registerStoresCommand(program);
  registerLoadCommand(program);
  registerDumpCommand(program);
  registerCheckpointCommand(program);
  registerVerifyCommand(program);
  registerRepairCommand(program);
  registerBackupCommands(program);
  registerServeCommand(program);
  registerBenchCommand(program);
  registerReplicaCommands(program);
  return program;
}

// A reader that stops early (`lightning-cli verify --json db | head`) closes the pipe; that is not a
// failure worth a stack trace, and there is no one left to print to.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? exitOk);
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  report(error);
  process.exitCode = exitCodeOf(error);
}
