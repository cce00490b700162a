/**
 * Bundles a TypeScript worker module and what it imports into one JavaScript file, so a test that
 * starts hundreds of threads pays a plain module load per thread instead of registering tsx and
 * transforming the sources in each one (seconds per thread on a loaded machine). Packages stay
 * external: the file is written inside the repository, where node_modules resolves them.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface BundledWorker {
  /** The bundle to pass to `new Worker()`. */
  file: string;
  /** Removes the bundle. */
  dispose(): void;
}

export async function bundleWorker(entry: URL): Promise<BundledWorker> {
  const directory = join(dirname(fileURLToPath(import.meta.url)), '..', '.cache', `bundle-${process.pid}`);
  mkdirSync(directory, { recursive: true });
  const file = join(directory, 'worker.mjs');
  await build({
    entryPoints: [fileURLToPath(entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: file,
    logLevel: 'error',
  });
  return { file, dispose: () => rmSync(directory, { recursive: true, force: true }) };
}
