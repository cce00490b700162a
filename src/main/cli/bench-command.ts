import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { LightningError } from '../../shared-memory/index.js';
import { exitFailure } from './database-inspection.js';

/**
 * `lightning-cli bench [args...]`: runs the quick YCSB benchmark of the package
 * (`dist/bench/ycsb.js --quick`, what `npm run bench:quick` runs) in a child process, passing the
 * extra arguments on and exiting with its exit code. The benchmark is not part of every install, so
 * a missing one is a clear failure, not a crash.
 */

/** Names the script to run instead of the package's own, e.g. a benchmark built elsewhere. */
export const benchScriptVariable = 'LIGHTNING_BENCH_SCRIPT';
const packageName = 'lightning-db';

/** The directory of the package this file belongs to: the nearest package.json named lightning-db. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let directory = from; ; directory = dirname(directory)) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (name === packageName) return directory;
    }
    if (dirname(directory) === directory) {
      throw new LightningError('ERR_INTERNAL', `no package.json of ${packageName} above ${from}`);
    }
  }
}

export function benchScriptPath(): string {
  return process.env[benchScriptVariable] || join(packageRoot(), 'dist', 'bench', 'ycsb.js');
}

export async function runBench(args: readonly string[]): Promise<number> {
  const script = benchScriptPath();
  if (!existsSync(script)) {
    process.stderr.write(
      `lightning-cli: the benchmark is not installed: ${script} does not exist. It is built from a ` +
        'source checkout with "npm run build" (packages installed from the registry do not include it).\n',
    );
    return exitFailure;
  }
  const child = spawn(process.execPath, ['--expose-gc', script, '--quick', ...args], { stdio: 'inherit' });
  // Ctrl-C reaches the child too (same process group); this process waits to report how it ended.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        // As a shell reports a child ended by a signal: 128 + its number.
        resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
      });
    });
  } finally {
    process.off('SIGINT', ignore);
  }
}

const benchHelp = `
Runs the quick benchmark (YCSB workloads against the database and its peers, small sizes) from this
package's dist/bench/ycsb.js, with --quick and any [args...] passed on; its output is the benchmark's
own, and so is the exit code. Put arguments that start with "-" after "--". Set ${benchScriptVariable}
to run another build of the script.

The benchmark ships with a source checkout (npm run build), not with the package from the registry;
without it the command exits 1.

Examples:
  $ lightning-cli bench
  $ lightning-cli bench -- --help

Exit codes:
  0  the benchmark ran (otherwise its own exit code, or 128 + the signal that ended it)
  1  the benchmark is not installed
`;

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run the quick benchmark (dist/bench/ycsb.js --quick)')
    .argument('[args...]', 'passed on to the benchmark')
    .allowUnknownOption()
    .addHelpText('after', benchHelp)
    .action(async (args: string[]) => {
      process.exitCode = await runBench(args);
    });
}
