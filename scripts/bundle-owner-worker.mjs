/**
 * Bundles the partition-owner worker into one JavaScript file beside the compiled sources.
 *
 * Every open() starts owner worker threads, and a worker thread pays for each ES module it loads
 * (resolving, reading, linking): the owner's ~90 modules took most of open()'s time. One bundled file
 * loads in a fraction of that. Only the engine's own modules are bundled; packages (comlink,
 * xxhash-wasm, lz4-napi, ...) stay imports, resolved from node_modules as before.
 *
 *   node scripts/bundle-owner-worker.mjs [compiled-root]
 *
 * compiled-root is the folder tsc wrote (default: dist); the bundle is built from its JavaScript, so
 * it holds exactly the code tsc emitted, and is written to <compiled-root>/src/workers/.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(process.argv[2] ?? 'dist');
const entry = join(root, 'src', 'workers', 'owner-worker.js');
if (!existsSync(entry)) {
  console.error(`bundle-owner-worker: ${entry} is missing; run tsc first`);
  process.exit(1);
}
await build({
  entryPoints: [entry],
  outfile: join(root, 'src', 'workers', 'owner-worker.bundle.js'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
