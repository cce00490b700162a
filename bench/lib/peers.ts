/**
 * The benchmark peers (lmdb-js, classic-level, better-sqlite3) and the profiler (0x) live in
 * bench/node_modules, installed by `npm run bench*` on first use (bench/ensure-peers.mjs), not in the
 * repository's own dependencies. A benchmark compiled to dist/bench/ cannot import them by name (the
 * lookup walks up from dist/), so they load through bench/peer-import.mjs, which resolves them from
 * bench/. Their types are the declarations beside the adapters (bench/stores/*.d.ts), so the
 * benchmarks type-check and build before the peers are installed.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface PeerModules {
  lmdb: typeof import('lmdb');
  'classic-level': typeof import('classic-level');
  'better-sqlite3': typeof import('better-sqlite3');
}

/** bench/, found from bench/lib/ (sources) or dist/bench/lib/ (compiled) by its package.json. */
export function benchDirectory(): string {
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'bench', 'package.json'))) return path.join(dir, 'bench');
    if (path.dirname(dir) === dir) throw new Error(`no bench/package.json above ${start}`);
  }
}

function missingPeer(name: string, cause: unknown): Error {
  return new Error(
    `the benchmark peer ${name} is not installed in bench/node_modules: run \`npm run bench:peers\` ` +
      `(npm run bench* does it on first use)`,
    { cause },
  );
}

export async function importPeer<Name extends keyof PeerModules>(name: Name): Promise<PeerModules[Name]> {
  const trampoline = pathToFileURL(path.join(benchDirectory(), 'peer-import.mjs')).href;
  const { importPeer: load } = (await import(trampoline)) as {
    importPeer: (name: string) => Promise<PeerModules[Name]>;
  };
  try {
    return await load(name);
  } catch (error) {
    throw (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' ? missingPeer(name, error) : error;
  }
}

/** The path of a file inside a peer's package, e.g. `0x/package.json`. */
export function resolvePeerFile(request: string): string {
  const name = request.split('/')[0]!;
  try {
    return createRequire(path.join(benchDirectory(), 'package.json')).resolve(request);
  } catch (error) {
    throw missingPeer(name, error);
  }
}
