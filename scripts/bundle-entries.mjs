/**
 * Bundles the two entries that start a new thread or process into one JavaScript file each, beside
 * the compiled sources:
 * - the partition-owner worker (src/workers/owner-worker.bundle.js): every open() starts owner
 *   threads, and a new thread pays for each ES module it loads (resolving, reading, linking); the
 *   owner's ~90 modules took most of open()'s time;
 * - lightning-cli (src/main/lightning-cli.bundle.js, the package's bin): a CLI process loads about 150
 *   of the engine's modules before it does anything.
 * Only the engine's own modules are bundled; packages (comlink, commander, lz4-napi, ...) stay
 * imports, resolved from node_modules. The CLI bundle sits in src/main, where the modules that start
 * threads (owner-worker-start.ts, partition-tasks.ts) sit, so their relative URLs to src/workers
 * resolve the same from the bundle.
 *
 *   node scripts/bundle-entries.mjs [compiled-root]
 *
 * compiled-root is the folder tsc wrote (default: dist). The bundles are built from its JavaScript,
 * so they hold exactly the code tsc emitted.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = join(resolve(process.argv[2] ?? 'dist'), 'src');
const entries = [
  ['workers/owner-worker.js', 'workers/owner-worker.bundle.js'],
  ['main/cli/lightning-cli.js', 'main/lightning-cli.bundle.js'],
];
for (const [entry, bundle] of entries) {
  if (!existsSync(join(root, entry))) {
    console.error(`bundle-entries: ${join(root, entry)} is missing; run tsc first`);
    process.exit(1);
  }
  await build({
    entryPoints: [join(root, entry)],
    outfile: join(root, bundle),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
}
