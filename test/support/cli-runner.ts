/**
 * Runs `lightning-cli` from source in a child process, as an operator runs it, and collects its exit
 * code and output. Shared by the CLI end-to-end tests.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cliPath = join(root, 'src/main/cli/lightning-cli.ts');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as bytes, for output that is not text. */
  stdoutBytes: Buffer;
}

export interface CliRunOptions {
  /** Written to the child's stdin, which is then closed; without it stdin is closed at once. */
  input?: string | Uint8Array;
  /** Added to the environment of the child. */
  env?: Record<string, string>;
}

export function runCli(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
    const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], { cwd: root, env });
    // A child that exits without reading its input closes the pipe; that is its business, not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(stdout);
      resolve({
        code,
        stdout: stdoutBytes.toString(),
        stderr: Buffer.concat(stderr).toString(),
        stdoutBytes,
      });
    });
  });
}

/** CLI processes started together by runCliEach: enough to overlap their start-up, few for a small machine. */
const cliRunsAtOnce = 4;

/**
 * Runs the CLI once per argument list, a few at a time; the runs in the order of the lists. Only for
 * runs that do not open the same database: each open takes its lock, and a second at once gets exit 5.
 */
export async function runCliEach(argsList: readonly (readonly string[])[]): Promise<CliRun[]> {
  const runs: CliRun[] = [];
  for (let i = 0; i < argsList.length; i += cliRunsAtOnce) {
    runs.push(...(await Promise.all(argsList.slice(i, i + cliRunsAtOnce).map((args) => runCli(args)))));
  }
  return runs;
}
