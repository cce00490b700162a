/**
 * Runs a documentation example as a user would: a TypeScript or JavaScript program in a child process
 * (`node --import tsx`, with the workers it starts on module files running under tsx too), or a shell script with `lightning-cli` on its PATH, each with a fresh
 * temporary directory as its working directory, so relative paths such as './data' land there.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cliPath = join(root, 'src/main/cli/lightning-cli.ts');
/** Makes a Worker the example starts on a module file load that module through tsx as well. */
const tsxWorkersUrl = pathToFileURL(join(root, 'test/support/tsx-workers.mjs')).href;

/** tsx's ESM loader as a file URL: `--import tsx` would resolve from the temporary directory and fail. */
const tsxLoaderUrl = ((): string => {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { '.': unknown } };
  const loader = manifest.exports['.'];
  if (typeof loader !== 'string')
    throw new Error(`tsx's package.json names no plain '.' export: ${String(loader)}`);
  return pathToFileURL(join(dirname(manifestPath), loader)).href;
})();

/** Long enough for a loaded 2-core machine; an example that never exits (a server left open) fails here. */
const exampleTimeoutMs = 240_000;

export interface ExampleResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * The example's program as it runs from this checkout: `import ... from 'lightning-db'` names the
 * sources (src/index.ts, and a subpath such as 'lightning-db/internals' src/internals.ts), and a fixed
 * admin port becomes 0 (any free port), so a run never fails because another program, or a test
 * running at the same time, holds the port.
 */
export function programFromExample(code: string): string {
  return code
    .replace(packageSpecifierPattern, (_match, _quote, subpath: string | undefined) =>
      JSON.stringify(pathToFileURL(sourceEntryOf(subpath, '.ts')).href),
    )
    .replace(/\bport: \d+/g, 'port: 0');
}

/** `'lightning-db'` or `'lightning-db/<subpath>'` in quotes; the subpath is the second group. */
export const packageSpecifierPattern = /(['"])lightning-db(?:\/([\w-]+))?\1/g;

/** The source file an import of the package (or of one of its subpaths) names, with the extension given. */
export function sourceEntryOf(subpath: string | undefined, extension: '.ts' | '.js'): string {
  if (subpath === undefined) return join(root, 'src', `index${extension}`);
  // A subpath is a file (src/internals.ts) or a folder with an index (src/level/index.ts).
  const file = join(root, 'src', `${subpath}.ts`);
  return existsSync(file)
    ? join(root, 'src', `${subpath}${extension}`)
    : join(root, 'src', subpath, `index${extension}`);
}

export async function runProgramExample(
  code: string,
  lang: 'ts' | 'js',
  env: NodeJS.ProcessEnv = process.env,
): Promise<ExampleResult> {
  return withScratch(async (scratch, work) => {
    // .mts and .mjs: ES modules wherever they lie (top-level await needs that), whatever package.json says.
    const programPath = join(scratch, lang === 'ts' ? 'example.mts' : 'example.mjs');
    await writeFile(programPath, programFromExample(code));
    return run(
      process.execPath,
      ['--import', tsxLoaderUrl, '--import', tsxWorkersUrl, programPath],
      work,
      env,
    );
  });
}

/**
 * Runs a shell block with bash (`-e -o pipefail`: any failing command fails it) and a `lightning-cli`
 * on its PATH that runs the CLI from source. `prepare` fills the working directory first.
 */
export async function runShellExample(
  code: string,
  prepare: (work: string) => Promise<void>,
): Promise<ExampleResult> {
  return withScratch(async (scratch, work) => {
    const bin = join(scratch, 'bin');
    await mkdir(bin);
    const shim = join(bin, 'lightning-cli');
    const quote = (text: string): string => `'${text.replaceAll("'", "'\\''")}'`;
    await writeFile(
      shim,
      `#!/bin/sh\nexec ${quote(process.execPath)} --import ${quote(tsxLoaderUrl)} ${quote(cliPath)} "$@"\n`,
    );
    await chmod(shim, 0o755);
    await prepare(work);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    return run('bash', ['-e', '-o', 'pipefail', '-c', code], work, env);
  });
}

/** Whether a command is on the PATH (for an example that pipes into a tool such as jq). */
export async function commandExists(name: string): Promise<boolean> {
  const result = await run('sh', ['-c', `command -v ${name}`], tmpdir(), process.env);
  return result.code === 0;
}

async function withScratch(
  body: (scratch: string, work: string) => Promise<ExampleResult>,
): Promise<ExampleResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'lightning-readme-'));
  const work = join(scratch, 'work');
  await mkdir(work);
  try {
    return await body(scratch, work);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ExampleResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, exampleTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      });
    });
  });
}

/** A failed run described for a test's failure message. */
export function describeFailure(result: ExampleResult): string {
  const how = result.timedOut
    ? `did not exit within ${exampleTimeoutMs / 1000} s (something keeps it alive, or it hangs)`
    : `exited with ${result.signal ?? `code ${result.code}`}`;
  return `${how}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}
