import type { Command } from 'commander';
import { addOpenOptions } from './cli-database.js';

/**
 * The end of every command that opens a database, written once so they cannot drift apart: the open
 * options (--partition-bytes-max, and --create and --partitions where the command may make a
 * database), the command's help text after commander's own, and an action that sets the exit code to
 * what `run` returns. Errors `run` throws go to the entry's handler, which maps them to exit codes.
 */
export function finishDatabaseCommand<Args extends unknown[]>(
  command: Command,
  options: { readonly create: boolean; readonly help: string },
  run: (...args: Args) => Promise<number>,
): Command {
  return addOpenOptions(command, { create: options.create })
    .addHelpText('after', options.help)
    .action(async (...args: unknown[]) => {
      // Commander passes the command's arguments, then its flags, then the command itself: `run`
      // takes all but the last.
      process.exitCode = await run(...(args.slice(0, -1) as Args));
    });
}
