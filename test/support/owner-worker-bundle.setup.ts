/**
 * vitest global setup: bundles the owner worker from the TypeScript sources once per test run and
 * names the bundle in the environment (src/main/owner-worker-start.ts reads it), so the owner threads
 * of every database the tests open, in test processes and in the child processes they start, load
 * one JavaScript file instead of registering tsx and transforming the engine's sources in each thread.
 * The bundle is written inside the repository, where node_modules resolves the packages it imports.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { sourceBundleEnvName } from '../../src/main/owner-worker-start.js';

const repository = fileURLToPath(new URL('../../', import.meta.url));

export default async function setup(): Promise<() => void> {
  const directory = join(repository, 'test', '.cache', `owner-worker-${process.pid}`);
  mkdirSync(directory, { recursive: true });
  const bundle = join(directory, 'owner-worker.bundle.mjs');
  await build({
    entryPoints: [join(repository, 'src', 'workers', 'owner-worker.ts')],
    outfile: bundle,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  process.env[sourceBundleEnvName] = bundle;
  return () => rmSync(directory, { recursive: true, force: true });
}
