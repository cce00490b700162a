import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { LightningError } from '../shared-memory/errors.js';

/**
 * Names a bundle of the owner worker built from the TypeScript sources. Read only when the engine runs
 * from its sources (its own test suite, whose global setup builds the bundle once per run): without
 * it, every owner thread would register tsx and transform the engine's modules again, several hundred
 * milliseconds per thread.
 */
export const sourceBundleEnvName = 'LIGHTNING_OWNER_WORKER_BUNDLE';

/**
 * Starts an owner worker thread. From the compiled package this runs the bundled owner
 * (owner-worker.bundle.js, written by `npm run build`): one file loads far faster in a new thread than
 * the ~90 modules it is made of. `typeScriptModules` says the thread will import TypeScript modules
 * of the caller's (a file layer given as a .ts path), which only works when the engine itself runs
 * from its sources.
 */
export function startOwnerWorker(typeScriptModules = false): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) {
    const bundle = new URL('../workers/owner-worker.bundle.js', here);
    if (!existsSync(fileURLToPath(bundle))) {
      throw new LightningError(
        'ERR_INTERNAL',
        `${fileURLToPath(bundle)} is missing: the package was built without its owner-worker bundle (npm run build writes it)`,
      );
    }
    return new Worker(bundle);
  }
  const bundle = process.env[sourceBundleEnvName];
  const entry =
    bundle !== undefined && bundle !== '' && existsSync(bundle)
      ? pathToFileURL(bundle).href
      : new URL('../workers/owner-worker.ts', here).href;
  // A worker ignores `--import` preloads on Node 20, so tsx is registered inside it when anything it
  // loads is TypeScript: the sources themselves, or the caller's own modules.
  if (entry.endsWith('.ts') || typeScriptModules) {
    const bootstrap = `import(${JSON.stringify(tsxRegisterUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(bootstrap, { eval: true });
  }
  return new Worker(`import(${JSON.stringify(entry)});`, { eval: true });
}

export function tsxRegisterUrl(): string {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { './esm/api': { import: { default: string } } } };
  return pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href;
}
