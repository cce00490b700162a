/**
 * The engine of src/index.ts and `lightning-cli` bundled into plain JavaScript, with the owner worker
 * where owner-worker-start.ts looks for it in a compiled package. Opened from the TypeScript sources,
 * every owner thread registers tsx and loads the sources again, and so does every CLI process
 * (seconds of CPU each on a loaded machine); the fault matrix opens a database over a hundred times,
 * so it runs this build of the same sources instead. Packages stay external: the bundle is written
 * inside the repository, where node_modules resolves them.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

type Engine = typeof import('../../../src/index.js');

export interface BundledEngine {
  readonly open: Engine['open'];
  /** Runs `lightning-cli` with `args` in a child process; resolves with its exit code and output. */
  cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Removes the bundle. */
  dispose(): void;
}

export async function bundleEngine(): Promise<BundledEngine> {
  const here = dirname(fileURLToPath(import.meta.url));
  const source = join(here, '..', '..', '..', 'src');
  const directory = join(here, '..', '..', '.cache', `fault-matrix-${process.pid}`);
  await build({
    // The owner worker sits at '../workers/owner-worker.bundle.js' from the module that starts it, as in
    // the compiled package.
    entryPoints: {
      'main/index': join(source, 'index.ts'),
      'cli/lightning-cli': join(source, 'main', 'cli', 'lightning-cli.ts'),
      'workers/owner-worker.bundle': join(source, 'workers', 'owner-worker.ts'),
    },
    outdir: directory,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
  const engine = (await import(pathToFileURL(join(directory, 'main', 'index.js')).href)) as Engine;
  const cliFile = join(directory, 'cli', 'lightning-cli.js');
  const cli = (args: readonly string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [cliFile, ...args], (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
  return { open: engine.open, cli, dispose: () => rmSync(directory, { recursive: true, force: true }) };
}
