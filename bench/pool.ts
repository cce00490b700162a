/**
 * bench:pool — the buffer pool (src/shared-memory/pool) over a real page file whose pages the
 * operating system has cached (just written), so a miss costs a pread from memory, not a device read.
 *
 *   npm run bench:pool                 # 65,536 pages (256 MiB), 4 reader threads
 *   npm run bench:pool -- --quick      # 8,192 pages (32 MiB)
 *   npm run bench:pool -- --pages 131072 --threads 2 --reads 500000 --seed 7
 *
 * Measures, on the main thread: an optimistic hit (read + one byte + validate) with every page
 * resident; a lock/unlock pair; and each read's latency with the pool at 10% of the data, split into
 * misses and hits (timer overhead included). Then reader threads at 10% and 1% of the data, uniform
 * and scrambled zipfian: reads/s, reads per CPU-second of the whole process, hit ratio, evictions/s.
 * Every validated read checks a byte of the page: a wrong one makes the run untrustworthy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BufferPool } from '../src/shared-memory/pool/buffer-pool.js';
import { kPoolMisses } from '../src/shared-memory/pool/pool-layout.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import { parseArgumentsOrExit, parsePositiveInteger } from './lib/args.js';
import { benchDataRoot, findRepoRoot } from './lib/environment.js';
import { formatCount, formatFixed, formatTable, throughputCells } from './lib/format.js';
import { finishRun } from './lib/results.js';
import { mulberry32 } from './lib/rng.js';
import { benchPageSize, buildPageFile, sampleAt, sampleByte } from './pool/page-file-builder.js';
import type { ReaderInput } from './pool/reader.js';

interface Options {
  pages: number;
  threads: number;
  reads: number;
  seed: number;
}

function parse(argv: string[]): Options {
  const options: Options = { pages: 65_536, threads: 4, reads: 400_000, seed: 0x5eed };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--quick') Object.assign(options, { pages: 8_192, reads: 100_000 });
    else if (flag === '--pages') options.pages = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--threads') options.threads = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--reads') options.reads = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--seed') options.seed = parsePositiveInteger(flag, argv[++i]);
    else throw new Error(`unknown flag ${flag}; flags: --quick --pages --threads --reads --seed`);
  }
  if (options.pages < 800)
    throw new Error('--pages must be at least 800 (1% of it is the smallest pool, 8 frames)');
  return options;
}

const options = parseArgumentsOrExit(parse);
const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
const startedAt = new Date().toISOString();
const dir = mkdtempSync(path.join(benchDataRoot(repoRoot), 'lightning-bench-pool-'));
const problems: string[] = [];

function newPool(reader: PageFileReader, framesMax: number): BufferPool {
  const pagesAllocated = options.pages + 1;
  return BufferPool.create(
    { pageSizeBytes: benchPageSize, pagesMax: pagesAllocated, framesMax, pagesAllocated },
    reader,
  );
}

function randomPageIds(count: number, seed: number): Uint32Array {
  const random = mulberry32(seed);
  return Uint32Array.from({ length: count }, () => 1 + (random() % options.pages));
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** ns per read + byte + validate with every page resident, and per lock/unlock pair. */
function residentCosts(reader: PageFileReader): { hitNs: number; lockNs: number } {
  const pool = newPool(reader, options.pages);
  for (let pageId = 1; pageId <= options.pages; pageId++) pool.read(pageId);
  const ids = randomPageIds(2_000_000, options.seed);
  let wrong = 0;
  let started = process.hrtime.bigint();
  for (const pageId of ids) {
    const byte = pool.u8[pool.read(pageId) + sampleAt];
    if (!pool.validate(pageId, pool.version) || byte !== sampleByte(pageId)) wrong++;
  }
  const hitNs = Number(process.hrtime.bigint() - started) / ids.length;
  started = process.hrtime.bigint();
  for (const pageId of ids) {
    pool.lock(pageId);
    pool.unlock(pageId, false);
  }
  const lockNs = Number(process.hrtime.bigint() - started) / ids.length;
  if (wrong > 0) problems.push(`resident reads: ${wrong} wrong or unvalidated`);
  pool.detach();
  return { hitNs, lockNs };
}

/** Each read's latency with the pool at 10% of the data, split by whether it missed. */
function readLatencies(reader: PageFileReader): { misses: Float64Array; hits: Float64Array } {
  const pool = newPool(reader, Math.max(8, Math.floor(options.pages / 10)));
  const ids = randomPageIds(Math.min(500_000, options.pages * 4), options.seed + 1);
  const misses: number[] = [];
  const hits: number[] = [];
  let wrong = 0;
  for (const [index, pageId] of ids.entries()) {
    const missesBefore = Atomics.load(pool.i32, kPoolMisses);
    const started = process.hrtime.bigint();
    const byte = pool.u8[pool.read(pageId) + sampleAt];
    const valid = pool.validate(pageId, pool.version);
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    if (!valid || byte !== sampleByte(pageId)) wrong++;
    // The first pass fills the pool: only reads after it are a steady state.
    if (index < options.pages) continue;
    (Atomics.load(pool.i32, kPoolMisses) > missesBefore ? misses : hits).push(micros);
  }
  if (wrong > 0) problems.push(`latency reads: ${wrong} wrong or unvalidated`);
  pool.detach();
  return { misses: Float64Array.from(misses).sort(), hits: Float64Array.from(hits).sort() };
}

interface ThreadedResult {
  pool: string;
  distribution: 'uniform' | 'zipfian';
  seconds: number;
  cpuSeconds: number;
  reads: number;
  misses: number;
  evictions: number;
}

async function threaded(
  reader: PageFileReader,
  share: number,
  distribution: 'uniform' | 'zipfian',
): Promise<ThreadedResult> {
  const pool = newPool(reader, Math.max(8, Math.floor(options.pages * share)));
  const start = new SharedArrayBuffer(4);
  const workers = Array.from({ length: options.threads }, (_, index) => {
    const input: ReaderInput = {
      sab: pool.sab,
      dir,
      pageCount: options.pages,
      reads: options.reads,
      distribution,
      seed: options.seed + 100 + index,
      start,
    };
    return new Worker(new URL('./pool/reader.js', import.meta.url), { workerData: input });
  });
  const message = (worker: Worker, type: string) =>
    new Promise<{ wrong: number }>((resolve, reject) => {
      worker.on('message', (m: { type: string; wrong: number }) => m.type === type && resolve(m));
      worker.once('error', reject);
    });
  await Promise.all(workers.map((worker) => message(worker, 'ready')));
  const done = workers.map((worker) => message(worker, 'done'));
  const cpuBefore = process.cpuUsage();
  const before = pool.stats();
  const started = performance.now();
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  const results = await Promise.all(done);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const after = pool.stats();
  await Promise.all(workers.map((worker) => worker.terminate()));
  const wrong = results.reduce((sum, result) => sum + result.wrong, 0);
  if (wrong > 0) problems.push(`threads at ${share}, ${distribution}: ${wrong} wrong bytes`);
  pool.detach();
  return {
    pool: `${formatFixed(share * 100, 0)}%`,
    distribution,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    reads: options.threads * options.reads,
    misses: after.misses - before.misses,
    evictions: after.evictions - before.evictions,
  };
}

try {
  console.log(`bench:pool: ${formatCount(options.pages)} pages of 4 KiB in ${dir}, seed ${options.seed}`);
  await buildPageFile(dir, options.pages);
  const reader = await PageFileReader.open(dir, { pageSizeBytes: benchPageSize, partition: 0 });
  const resident = residentCosts(reader);
  const latencies = readLatencies(reader);
  console.log(
    `\nmain thread: resident hit (read + 1 byte + validate) ${formatFixed(resident.hitNs, 0)} ns; ` +
      `lock + unlock ${formatFixed(resident.lockNs, 0)} ns`,
  );
  const cells = (sorted: Float64Array) =>
    [0.5, 0.99, 0.999].map((p) => formatFixed(percentile(sorted, p), 1));
  console.log(
    `\n${formatTable(
      ['pool at 10%, uniform', 'reads', 'p50 µs', 'p99 µs', 'p999 µs'],
      [
        ['miss (pread + xxh32 + clock)', formatCount(latencies.misses.length), ...cells(latencies.misses)],
        ['hit', formatCount(latencies.hits.length), ...cells(latencies.hits)],
      ],
      'lrrrr',
    )}`,
  );
  const runs: ThreadedResult[] = [];
  for (const share of [0.1, 0.01]) {
    for (const distribution of ['uniform', 'zipfian'] as const)
      runs.push(await threaded(reader, share, distribution));
  }
  console.log(
    `\n${formatTable(
      [
        `${options.threads} reader threads`,
        'distribution',
        'reads/s',
        'reads/CPU-s',
        'cores',
        'hit ratio',
        'evictions/s',
      ],
      runs.map((run) => [
        `pool at ${run.pool}`,
        run.distribution,
        ...throughputCells(run.reads, run.seconds, run.cpuSeconds),
        `${formatFixed((1 - run.misses / run.reads) * 100, 1)}%`,
        formatCount(run.evictions / run.seconds),
      ]),
      'llrrrrr',
    )}`,
  );
  reader.close();
  process.exitCode = finishRun(repoRoot, 'pool', startedAt, 'a read returned a wrong page', problems, {
    options,
    resident,
    missMicros: cells(latencies.misses),
    hitMicros: cells(latencies.hits),
    runs,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
