/**
 * How long open() and close() take, and `lightning-cli get` end to end. Measures, `--runs` times each
 * (median reported, with min and max):
 * - open()+close() creating a new database, reopening an empty one, and reopening one with 10,000
 *   keys, with open()'s phases (src/main/open-phases.ts) where the measured build has them;
 * - starting one worker thread that loads the owner worker (its bundle where the build has one), against
 *   an empty worker;
 * - `lightning-cli get` on a database of 100 keys, as a child process (node start-up included).
 *
 *   npm run bench:open -- [--runs 9] [--roots /path/to/other/checkout,...]
 *
 * `--roots` measures other built checkouts (their dist/) in the same run, interleaved run by run with
 * this one, so a before/after comparison sees the same machine load. Each line names its root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseArgumentsOrExit, parsePositiveInteger } from './lib/args.js';
import { findRepoRoot } from './lib/environment.js';
import { median } from './lib/stats.js';

const keysLarge = 10_000;
const keysSmall = 100;
const valueBytes = 100;

interface Options {
  runs: number;
  roots: string[];
}

interface Engine {
  open(path: string): Promise<EngineDatabase>;
}
interface EngineDatabase {
  put(key: string, value: Buffer): Promise<void>;
  close(): Promise<void>;
}
type PhaseObserver = ((phase: string, elapsedMs: number) => void) | null;
interface Build {
  root: string;
  engine: Engine;
  observePhases: ((observer: PhaseObserver) => void) | null;
}

/** Samples of one measurement of one build, with the phase times of each sample when known. */
class Samples {
  readonly totals: number[] = [];
  readonly phases = new Map<string, number[]>();
}

function parse(argv: string[]): Options {
  const here = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const options: Options = { runs: 9, roots: [here] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--runs') options.runs = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--roots') options.roots.push(...(argv[++i] ?? '').split(',').filter(Boolean));
    else throw new Error(`unknown flag ${flag}; flags: --runs N, --roots a,b`);
  }
  for (const root of options.roots) {
    if (!existsSync(path.join(root, 'dist/src/index.js')))
      throw new Error(`${root} has no dist/src/index.js: build it`);
  }
  return options;
}

async function loadBuild(root: string): Promise<Build> {
  const engine = (await import(pathToFileURL(path.join(root, 'dist/src/index.js')).href)) as Engine;
  const phasesFile = path.join(root, 'dist/src/main/open-phases.js');
  let observePhases: Build['observePhases'] = null;
  if (existsSync(phasesFile)) {
    const module = (await import(pathToFileURL(phasesFile).href)) as {
      observeOpenPhases: (observer: PhaseObserver) => void;
    };
    observePhases = module.observeOpenPhases;
  }
  return { root, engine, observePhases };
}

async function fill(engine: Engine, directory: string, keys: number): Promise<void> {
  const db = await engine.open(directory);
  const value = Buffer.alloc(valueBytes, 7);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < keys; i++) pending.push(db.put(`key-${String(i).padStart(8, '0')}`, value));
  await Promise.all(pending);
  await db.close();
}

/** One open()+close() of `directory`, its total and phase times into `samples`. */
async function openClose(build: Build, directory: string, samples: Samples): Promise<void> {
  const phases: [string, number][] = [];
  build.observePhases?.((phase, elapsedMs) => phases.push([phase, elapsedMs]));
  const start = performance.now();
  const db = await build.engine.open(directory);
  const opened = performance.now();
  await db.close();
  const closed = performance.now();
  build.observePhases?.(null);
  samples.totals.push(closed - start);
  for (const [phase, ms] of [...phases, ['close', closed - opened] as [string, number]]) {
    const list = samples.phases.get(phase) ?? [];
    list.push(ms);
    samples.phases.set(phase, list);
  }
}

/** Milliseconds from creating a worker until it has run `code` (an ES module body) and said so. */
async function workerStart(code: string): Promise<number> {
  const start = performance.now();
  const worker = new Worker(code, { eval: true });
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const elapsedMs = performance.now() - start;
  await worker.terminate();
  return elapsedMs;
}

/** What the build's owner threads load: its bundle where it has one (built by `npm run build`). */
function ownerWorkerEntry(root: string): string {
  const bundle = path.join(root, 'dist/src/workers/owner-worker.bundle.js');
  return existsSync(bundle) ? bundle : path.join(root, 'dist/src/workers/owner-worker.js');
}

/** The build's CLI: its bundle (the package's bin) where it has one. */
function cliEntry(root: string): string {
  const bundle = path.join(root, 'dist/src/main/lightning-cli.bundle.js');
  return existsSync(bundle) ? bundle : path.join(root, 'dist/src/main/cli/lightning-cli.js');
}

function cliGet(root: string, directory: string): number {
  const start = performance.now();
  const child = spawnSync(process.execPath, [cliEntry(root), 'get', directory, 'key-00000042'], {
    encoding: 'utf8',
  });
  const elapsedMs = performance.now() - start;
  if (child.status !== 0 || child.stdout.length < valueBytes) {
    throw new Error(`lightning-cli get failed (${child.status}): ${child.stderr}`);
  }
  return elapsedMs;
}

function summary(values: number[]): string {
  const ms = (value: number): string => value.toFixed(0).padStart(5);
  return `median ${ms(median(values))} ms  (min ${ms(Math.min(...values))}, max ${ms(Math.max(...values))})`;
}

async function main(): Promise<void> {
  const options = parseArgumentsOrExit(parse);
  const builds: Build[] = [];
  for (const root of options.roots) builds.push(await loadBuild(root));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'lightning-open-time-'));
  const cases = ['create', 'reopen empty', `reopen ${keysLarge} keys`] as const;
  const results = builds.map(() => ({
    open: new Map(cases.map((name) => [name, new Samples()] as const)),
    ownerWorker: [] as number[],
    cli: [] as number[],
  }));
  const emptyWorker: number[] = [];
  try {
    const prepared = await Promise.all(
      builds.map(async (build, b) => {
        const empty = path.join(scratch, `${b}-empty`);
        const large = path.join(scratch, `${b}-large`);
        const small = path.join(scratch, `${b}-small`);
        await fill(build.engine, empty, 0);
        await fill(build.engine, large, keysLarge);
        await fill(build.engine, small, keysSmall);
        return { empty, large, small };
      }),
    );
    for (let run = 0; run < options.runs; run++) {
      emptyWorker.push(await workerStart(`require('node:worker_threads').parentPort.postMessage(0);`));
      for (const [b, build] of builds.entries()) {
        const result = results[b]!;
        const { empty, large, small } = prepared[b]!;
        const fresh = path.join(scratch, `${b}-create-${run}`);
        await openClose(build, fresh, result.open.get('create')!);
        rmSync(fresh, { recursive: true, force: true });
        await openClose(build, empty, result.open.get('reopen empty')!);
        await openClose(build, large, result.open.get(`reopen ${keysLarge} keys`)!);
        const entry = pathToFileURL(ownerWorkerEntry(build.root)).href;
        result.ownerWorker.push(
          await workerStart(
            `import(${JSON.stringify(entry)}).then(() => require('node:worker_threads').parentPort.postMessage(0));`,
          ),
        );
        result.cli.push(cliGet(build.root, small));
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(
    `open-time: ${options.runs} runs, node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}`,
  );
  console.log(`worker thread, empty:           ${summary(emptyWorker)}`);
  for (const [b, build] of builds.entries()) {
    const result = results[b]!;
    console.log(`\n${build.root}`);
    for (const [name, samples] of result.open) {
      console.log(`  open()+close(), ${name.padEnd(17)} ${summary(samples.totals)}`);
      for (const [phase, values] of samples.phases)
        console.log(`    ${phase.padEnd(20)} median ${median(values).toFixed(1)} ms`);
    }
    console.log(`  worker thread, owner modules: ${summary(result.ownerWorker)}`);
    console.log(`  lightning-cli get (${keysSmall} keys):  ${summary(result.cli)}`);
  }
}

await main();
