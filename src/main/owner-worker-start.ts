import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts an owner worker thread. From the compiled package this is plain `new Worker(owner-worker.js)`.
 * When the engine itself runs from its TypeScript sources (its own test suite, under vitest), the
 * worker must load TypeScript too; Node 20 workers ignore `--import` preloads in execArgv, so a small
 * eval bootstrap registers tsx's ESM loader inside the worker and then imports the entry.
 */
export function startOwnerWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('../workers/owner-worker.js', here));
  const entry = new URL('../workers/owner-worker.ts', here).href;
  const bootstrap = `import(${JSON.stringify(tsxRegisterUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true });
}

export function tsxRegisterUrl(): string {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { './esm/api': { import: { default: string } } } };
  return pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href;
}
