/**
 * The package as a new user gets it: `npm pack` from a copy of the checkout that has never been built
 * (so `prepack` must build), the tarball installed into a fresh project without the network, then used
 * from an ES module, from CommonJS through require(), and from TypeScript files type-checked under
 * "module": "nodenext" as an ES module and as CommonJS, with no global types ("types": [], the default
 * of TypeScript 7). Importing the package must not load prom-client; the tarball must hold no source
 * maps and no demo.
 *
 * The copy is packed rather than the checkout so the package build never rewrites the dist/ that other
 * test files run at the same time.
 */
import { execFile } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { consumerLock, type PackageManifest } from './support/consumer-lock.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const tscPath = join(
  dirname(createRequire(import.meta.url).resolve('typescript/package.json')),
  'bin',
  'tsc',
);
const work = mkdtempSync(join(tmpdir(), 'lightning-package-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * The environment of the npm and node children: without the npm_* variables `npm test` sets, which
 * npm would read as configuration of the child's own run (npm's cache location is kept).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('npm_') || name === 'npm_config_cache') env[name] = value;
  }
  return env;
}

async function step(what: string, file: string, args: string[], cwd: string): Promise<string> {
  const started = performance.now();
  try {
    const { stdout } = await run(file, args, { cwd, env: childEnv(), maxBuffer: 64 << 20 });
    console.log(`${what}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return stdout;
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${what} failed: ${failure.message}\n${failure.stdout ?? ''}\n${failure.stderr ?? ''}`);
  }
}

/** A checkout as a clean clone has it: sources and configuration, no dist/, the repository's node_modules. */
function stageCheckout(): string {
  const stage = join(work, 'checkout');
  mkdirSync(stage);
  for (const name of [
    'package.json',
    'tsconfig.json',
    'tsconfig.package.json',
    'README.md',
    'LICENSE',
    'src',
    'scripts',
  ]) {
    cpSync(join(root, name), join(stage, name), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'), 'dir');
  return stage;
}

/**
 * Opens, writes, reads and closes through the ES module entry; before that it counts the prom-client
 * modules the import loaded, and after it the ones an admin server loads, from the CommonJS cache
 * (where Node keeps CommonJS modules, prom-client among them, that ES modules import).
 */
const useFromEsm = `
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const requireHere = createRequire(import.meta.url);
const promClientModules = () => Object.keys(requireHere.cache).filter((path) => path.includes('/prom-client/')).length;
const { open, startAdminServer } = await import('lightning-db');
const promClientAtImport = promClientModules();
const { BTree } = await import('lightning-db/internals');
const dir = mkdtempSync(join(tmpdir(), 'lightning-consumer-esm-'));
const db = await open(dir, { partitions: 2 });
await db.put('greeting', 'from an ES module');
const value = db.get('greeting')?.toString();
const users = await db.store('users');
await users.put('ada', 'lovelace');
const fromStore = users.get('ada')?.toString();
await db.close();
rmSync(dir, { recursive: true });
const jsonDir = mkdtempSync(join(tmpdir(), 'lightning-consumer-json-'));
const typed = await open(jsonDir, { partitions: 1, keyEncoding: 'utf8', valueEncoding: 'json' });
await typed.put('point', { x: 1, y: [2, 3] });
const fromJson = typed.get('point');
await typed.close();
rmSync(jsonDir, { recursive: true });
const { LightningLevel } = await import('lightning-db/level');
const levelDir = mkdtempSync(join(tmpdir(), 'lightning-consumer-level-'));
const level = new LightningLevel(join(levelDir, 'db'), { partitions: 1, valueEncoding: 'json' });
await level.put('k', { through: 'level' });
const fromLevel = await level.get('k');
await level.close();
rmSync(levelDir, { recursive: true });
const admin = await startAdminServer({ port: 0 });
const promClientWithAdmin = promClientModules();
await admin.close();
console.log(JSON.stringify({ value, fromStore, fromJson, fromLevel, internals: typeof BTree, promClientAtImport, promClientWithAdmin }));
`;

const useFromCommonJs = `
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { open } = require('lightning-db');
(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lightning-consumer-cjs-'));
  const db = await open(dir, { partitions: 2 });
  await db.put('greeting', 'from CommonJS');
  console.log(JSON.stringify({ value: db.get('greeting')?.toString() }));
  await db.close();
  rmSync(dir, { recursive: true });
})();
`;

const typedEsm = `
import { open, type Database, type OpenOptions } from 'lightning-db';
import { BTree, type TreeHandle } from 'lightning-db/internals';
import { LightningLevel } from 'lightning-db/level';
// @ts-expect-error The engine's internals are not exported by the package's main entry.
import { TreeReader } from 'lightning-db';
const options: OpenOptions = { partitions: 2 };
const db: Database = await open('./data', options);
await db.put('key', Buffer.from('value'));
const value: Buffer | undefined = db.get('key');
const handle: TreeHandle | undefined = undefined;
void [value, handle, BTree, TreeReader];
await db.close();
interface Point { x: number; y: number[] }
const typed = await open<string, Point>('./typed', { keyEncoding: 'utf8', valueEncoding: 'json' });
const x: number | undefined = typed.get('point')?.x;
// @ts-expect-error A value of the wrong type for the database's value type.
await typed.put('point', 'not a point');
void x;
await typed.close();
const level = new LightningLevel<string, string>('./level');
const fromLevel: string | undefined = await level.get('key');
void fromLevel;
`;

const typedCommonJs = `
import { open, type Database } from 'lightning-db';
export async function roundTrip(dir: string): Promise<string | undefined> {
  const db: Database = await open(dir);
  await db.put('key', Buffer.from('value'));
  const value = db.get('key')?.toString();
  await db.close();
  return value;
}
`;

/**
 * Most of this file's time is CPU: two compilations (the package build and the consumers' type check)
 * and three processes that load the engine, about 30 CPU-seconds in all (20-30 s of wall time on an
 * idle 2-core machine). On a machine busy with other work that stretches several times over, so the
 * bound is wide: it is there to catch a hang, not to time the steps.
 */
const packTestTimeoutMs = 600_000;

describe('the packed package', () => {
  it(
    'installs without the network and works from ESM, CommonJS and type-checked TypeScript',
    async () => {
      const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageManifest;
      const stage = stageCheckout();
      const out = join(work, 'out');
      mkdirSync(out);
      await step('npm pack (prepack builds the package)', 'npm', ['pack', '--pack-destination', out], stage);
      const tarball = join(out, readdirSync(out).find((name) => name.endsWith('.tgz'))!);

      const listed = (await step('list the tarball', 'tar', ['-tzf', tarball], work))
        .split('\n')
        .filter(Boolean);
      console.log(`the tarball holds ${listed.length} files`);
      expect(listed.filter((path) => path.endsWith('.map'))).toEqual([]);
      expect(listed.filter((path) => /\/demo/.test(path))).toEqual([]);
      for (const expected of [
        'package/LICENSE',
        'package/README.md',
        'package/package.json',
        'package/dist/src/index.js',
        'package/dist/src/index.d.ts',
        'package/dist/src/internals.js',
        'package/dist/src/internals.d.ts',
        'package/dist/src/main/cli/lightning-cli.js',
        'package/dist/src/workers/owner-worker.bundle.js',
        'package/dist/src/main/lightning-cli.bundle.js',
      ]) {
        expect(listed).toContain(expected);
      }
      expect(
        listed.filter(
          (path) => !/^package\/(dist\/src\/.+\.(js|d\.ts)|LICENSE|README\.md|package\.json)$/.test(path),
        ),
      ).toEqual([]);

      const project = join(work, 'consumer');
      mkdirSync(join(project, 'cjs'), { recursive: true });
      const tarballSpec = `file:${tarball}`;
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({
          name: 'consumer',
          private: true,
          type: 'module',
          dependencies: { [manifest.name]: tarballSpec },
        }),
      );
      writeFileSync(
        join(project, 'package-lock.json'),
        JSON.stringify(consumerLock(root, manifest, 'consumer', tarballSpec), null, 2),
      );
      await step(
        'npm install --offline the tarball',
        'npm',
        ['install', '--offline', '--no-audit', '--no-fund', tarball],
        project,
      );

      writeFileSync(join(project, 'use-esm.mjs'), useFromEsm);
      writeFileSync(join(project, 'use-cjs.cjs'), useFromCommonJs);
      writeFileSync(join(project, 'typed-esm.ts'), typedEsm);
      writeFileSync(join(project, 'cjs', 'package.json'), JSON.stringify({ type: 'commonjs' }));
      writeFileSync(join(project, 'cjs', 'typed-cjs.ts'), typedCommonJs);
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: [] },
          files: ['typed-esm.ts', 'cjs/typed-cjs.ts'],
        }),
      );

      // Independent checks, side by side to keep the file's time down.
      const [esm, commonJs, , cli] = await Promise.all([
        step(
          'node use-esm.mjs (import, open, put, get, close, admin server)',
          process.execPath,
          ['use-esm.mjs'],
          project,
        ),
        step('node use-cjs.cjs (the same through require())', process.execPath, ['use-cjs.cjs'], project),
        step(
          'tsc: an ES module and a CommonJS consumer, module nodenext, types []',
          process.execPath,
          [tscPath, '-p', 'tsconfig.json'],
          project,
        ),
        step(
          'lightning-cli --help',
          join(project, 'node_modules', '.bin', 'lightning-cli'),
          ['--help'],
          project,
        ),
      ]);
      const fromEsm = JSON.parse(esm) as Record<string, unknown>;
      console.log(
        `prom-client modules loaded: ${fromEsm.promClientAtImport} by importing the package, ` +
          `${fromEsm.promClientWithAdmin} once an admin server started`,
      );
      expect(fromEsm.value).toBe('from an ES module');
      expect(fromEsm.fromStore).toBe('lovelace');
      expect(fromEsm.fromJson).toEqual({ x: 1, y: [2, 3] });
      expect(fromEsm.fromLevel).toEqual({ through: 'level' });
      expect(fromEsm.internals).toBe('function');
      expect(fromEsm.promClientAtImport).toBe(0);
      expect(fromEsm.promClientWithAdmin).toBeGreaterThan(0);
      expect(JSON.parse(commonJs)).toEqual({ value: 'from CommonJS' });
      expect(cli).toContain('lightning-cli');

      // The installed bin (the bundled CLI) against a real database: it starts owner threads from the
      // installed package's bundled owner worker.
      const bin = join(project, 'node_modules', '.bin', 'lightning-cli');
      const database = join(work, 'cli-database');
      await step(
        'lightning-cli put',
        bin,
        ['put', '--create', database, 'greeting', 'from the CLI'],
        project,
      );
      const got = await step('lightning-cli get', bin, ['get', database, 'greeting'], project);
      expect(got.trim()).toBe('from the CLI');
    },
    packTestTimeoutMs,
  );
});
