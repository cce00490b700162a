/**
 * bench:paged-open — how long one partition takes to open from its page file (PagedTree.open and
 * recoverPartitions: torn-page repair, the pool started from page 0, the log tail replayed) against
 * the same records opened from a checkpoint file into an arena (recoverPartitions loading every entry
 * and replaying the same tail). The files were just written, so the operating system has them cached:
 * both opens read from memory, not from the device.
 *
 *   npm run bench:paged-open                 # 1,000,000 records of 16 + 100 bytes, a 1,000-record tail
 *   npm run bench:paged-open -- --quick      # 100,000 records
 *   npm run bench:paged-open -- --records 2000000 --tail 5000 --runs 5 --frames-share 0.1
 *
 * Each run opens both ways, alternately (median, min and max of `--runs`), then reads random keys from
 * the paged partition just opened, each checked: 10,000, or twice the frames if that is more, so that
 * the last reads find the pool full. It reports the latency of the first 1,000 (the pool is empty,
 * and in the first run the miss path's code is not compiled yet) and of the last 1,000, with the
 * misses per get of each.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { partitionBytesMax, poolBytesMax } from '../src/shared-memory/limits.js';
import { encodePut, putEncodedBytes } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { recordCheckpoint, recordPageSet, writeCheckpoint } from '../src/storage/checkpoint/index.js';
import { createPartitionFiles } from '../src/storage/database-files.js';
import { partitionDirectory, walDirectory } from '../src/storage/layout.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PartitionLog, recordTypeOperation, WalWriter } from '../src/storage/wal/index.js';
import { LogCoverage } from '../src/storage/wal/log-coverage.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { recoverPartitions } from '../src/workers/partition-recovery.js';
import { parseArgumentsOrExit, parsePositiveInteger } from './lib/args.js';
import { benchDataRoot, findRepoRoot } from './lib/environment.js';
import { formatCount, formatFixed, formatTable } from './lib/format.js';
import { finishRun } from './lib/results.js';
import { mulberry32 } from './lib/rng.js';
import { median } from './lib/stats.js';

interface Options {
  records: number;
  tail: number;
  runs: number;
  framesShare: number;
  seed: number;
}

const pageSizeBytes = 4096;
const valueBytes = 100;
/**
 * Random gets after each pool open: at least this many, and twice the frames, so that the last ones
 * find every frame used before. A frame's first use also pays the operating system's first touch of
 * that memory (a page fault and zeroing), which a pool not yet full pays on nearly every miss.
 */
const readsAfterOpenMin = 10_000;
/** The first and the last this many reads after an open are reported apart. */
const readsReported = 1000;

function parse(argv: string[]): Options {
  const options: Options = { records: 1_000_000, tail: 1000, runs: 5, framesShare: 0.1, seed: 0x0be4 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--quick') Object.assign(options, { records: 100_000, runs: 3 });
    else if (flag === '--records') options.records = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--tail') options.tail = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--runs') options.runs = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--seed') options.seed = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--frames-share') {
      options.framesShare = Number(argv[++i]);
      if (!(options.framesShare > 0 && options.framesShare <= 1))
        throw new Error('--frames-share is in (0, 1]');
    } else
      throw new Error(`unknown flag ${flag}; flags: --quick --records --tail --runs --frames-share --seed`);
  }
  return options;
}

function keyOf(index: number): Buffer {
  return Buffer.from(`key${index.toString().padStart(13, '0')}`);
}

/** A value that names its key: a read that returns another key's value is caught. */
function recordValue(index: number, generation: number): Buffer {
  const value = Buffer.alloc(valueBytes, generation);
  value.writeUInt32LE(index, 0);
  return value;
}

const options = parseArgumentsOrExit(parse);
const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
const startedAt = new Date().toISOString();
const root = mkdtempSync(path.join(benchDataRoot(repoRoot), 'lightning-bench-paged-open-'));
const problems: string[] = [];
/** Every record below it is in the pages or the checkpoint; the tail's records start here. */
const checkpointLsn = 1 + options.records;
/** About twice the pages the records fill (a page holds about 30 of them). */
const pagesMax = Math.ceil(options.records / 15) + 1024;
/** The build's frames: every page, up to what one pool holds (limits.ts), less its tables. */
const buildFramesMax = Math.min(pagesMax, Math.floor((poolBytesMax - 64 * 2 ** 20) / pageSizeBytes));

/** The tail: puts of the first `tail` keys, generation 2, in the log after the checkpoint. */
async function writeTail(dir: string): Promise<void> {
  const writer = await WalWriter.open(walDirectory(dir), { epoch: 1, worker: 0 });
  const log = new PartitionLog(writer, 0, checkpointLsn);
  for (let index = 0; index < options.tail; index++) {
    const key = keyOf(index);
    const value = recordValue(index, 2);
    const payload = new Uint8Array(putEncodedBytes(key, value));
    encodePut(payload, 0, 0, key, value);
    log.append(recordTypeOperation, [payload]);
    if (index % 1000 === 999) await log.flush(false);
  }
  await log.flush(true);
  await writer.close();
}

async function buildPaged(dir: string): Promise<number> {
  await createPartitionFiles(dir, 1);
  const partitionDir = partitionDirectory(dir, 0);
  await createPageFile(partitionDir, { pageSizeBytes, partition: 0 });
  // Built with as many frames as a pool holds: the build is not what is measured. Sets written for
  // room say nothing true of the log (there is none for the build); the last one, below, does.
  const paged = await PagedTree.open({
    dir: partitionDir,
    partition: 0,
    pageSizeBytes,
    pagesMax,
    framesMax: buildFramesMax,
  });
  try {
    for (let index = 0; index < options.records; index++) {
      const key = keyOf(index);
      const value = recordValue(index, 1);
      await paged.withRoom(
        () => paged.tree.put(key, value),
        () => 1,
      );
    }
    await paged.writePages(checkpointLsn);
    await recordPageSet(partitionDir, 0, BigInt(checkpointLsn), { coversLog: null, durable: null });
    await writeTail(dir);
    return paged.pool.pagesAllocated();
  } finally {
    paged.close();
  }
}

async function buildArena(dir: string): Promise<void> {
  await createPartitionFiles(dir, 1);
  const partitionDir = partitionDirectory(dir, 0);
  function* batches(): Generator<[Buffer, Buffer][]> {
    for (let start = 0; start < options.records; start += 2048) {
      const batch: [Buffer, Buffer][] = [];
      for (let index = start; index < Math.min(options.records, start + 2048); index++)
        batch.push([keyOf(index), recordValue(index, 1)]);
      yield batch;
    }
  }
  const written = await writeCheckpoint(partitionDir, 0, BigInt(checkpointLsn), batches());
  await recordCheckpoint(partitionDir, 0, written.file, BigInt(checkpointLsn), written.entries);
  await writeTail(dir);
}

function check(index: number, value: Buffer | undefined, what: string): void {
  const generation = index < options.tail ? 2 : 1;
  if (value === undefined || !value.equals(recordValue(index, generation))) {
    if (problems.length < 10) problems.push(`${what}: key ${index} read wrong`);
  }
}

interface ReadSample {
  micros: number[];
  misses: number;
}

async function openPaged(
  dir: string,
  framesMax: number,
): Promise<{ ms: number; first: ReadSample; last: ReadSample }> {
  const started = performance.now();
  const paged = await PagedTree.open({
    dir: partitionDirectory(dir, 0),
    partition: 0,
    pageSizeBytes,
    pagesMax,
    framesMax,
  });
  try {
    await recoverPartitions(
      dir,
      [{ partition: 0, tree: paged.tree, pages: paged }],
      new Set(),
      2,
      new LogCoverage([null]),
    );
    const ms = performance.now() - started;
    const random = mulberry32(options.seed);
    const first: ReadSample = { micros: [], misses: 0 };
    const last: ReadSample = { micros: [], misses: 0 };
    const readsAfterOpen = readsAfterOpenFor(framesMax);
    for (let i = 0; i < readsAfterOpen; i++) {
      const sample = i < readsReported ? first : i >= readsAfterOpen - readsReported ? last : null;
      const missesBefore = paged.pool.stats().misses;
      const index = random() % options.records;
      const readStarted = process.hrtime.bigint();
      const value = paged.tree.get(keyOf(index));
      const micros = Number(process.hrtime.bigint() - readStarted) / 1000;
      if (sample !== null) {
        sample.micros.push(micros);
        sample.misses += paged.pool.stats().misses - missesBefore;
      }
      check(index, value, 'paged open');
    }
    return { ms, first, last };
  } finally {
    paged.close();
  }
}

async function openArena(dir: string): Promise<number> {
  const started = performance.now();
  const tree = BTree.create({
    pageSizeBytes,
    maxBytes: Math.min(partitionBytesMax, pagesMax * pageSizeBytes),
  });
  await recoverPartitions(dir, [{ partition: 0, tree }], new Set(), 2, new LogCoverage([null]));
  const ms = performance.now() - started;
  const random = mulberry32(options.seed);
  for (let i = 0; i < 100; i++) {
    const index = random() % options.records;
    check(index, tree.get(keyOf(index)), 'arena open');
  }
  return ms;
}

function readsAfterOpenFor(framesMax: number): number {
  return Math.max(readsAfterOpenMin, 2 * framesMax);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function main(): Promise<number> {
  const pagedDir = path.join(root, 'paged');
  const arenaDir = path.join(root, 'arena');
  mkdirSync(pagedDir);
  mkdirSync(arenaDir);
  console.log(
    `bench:paged-open: ${formatCount(options.records)} records of 16 + ${valueBytes} bytes, a tail of ` +
      `${formatCount(options.tail)} records to replay, ${options.runs} runs, seed ${options.seed}`,
  );
  const pages = await buildPaged(pagedDir);
  await buildArena(arenaDir);
  const framesMax = Math.max(64, Math.floor(pages * options.framesShare));
  const pageFileBytes = statSync(path.join(partitionDirectory(pagedDir, 0), pageFileName)).size;
  const pagedMs: number[] = [];
  const arenaMs: number[] = [];
  const firstReads: number[] = [];
  const lastReads: number[] = [];
  let firstMisses = 0;
  let lastMisses = 0;
  for (let run = 0; run < options.runs; run++) {
    const paged = await openPaged(pagedDir, framesMax);
    pagedMs.push(paged.ms);
    firstReads.push(...paged.first.micros);
    lastReads.push(...paged.last.micros);
    firstMisses += paged.first.misses;
    lastMisses += paged.last.misses;
    arenaMs.push(await openArena(arenaDir));
  }
  firstReads.sort((a, b) => a - b);
  lastReads.sort((a, b) => a - b);
  const row = (name: string, values: number[]): string[] => [
    name,
    formatFixed(median(values), 1),
    formatFixed(Math.min(...values), 1),
    formatFixed(Math.max(...values), 1),
  ];
  console.log(
    `\n${formatCount(pages)} pages (${formatFixed(pageFileBytes / 2 ** 20, 1)} MiB page file), ` +
      `${formatCount(framesMax)} frames (${formatFixed((100 * framesMax) / pages, 1)}% of the pages)\n`,
  );
  console.log(
    formatTable(
      ['open', 'median ms', 'min ms', 'max ms'],
      [row('page file + log tail (pool)', pagedMs), row('checkpoint file + log tail (arena)', arenaMs)],
      'lrrr',
    ),
  );
  console.log(`\nratio (arena / pool, medians): ${formatFixed(median(arenaMs) / median(pagedMs), 1)}x`);
  const readLine = (what: string, micros: number[], misses: number): string =>
    `${what} ${readsReported} random gets of ${formatCount(readsAfterOpenFor(framesMax))} after a pool open: p50 ${formatFixed(percentile(micros, 0.5), 1)} µs, ` +
    `p99 ${formatFixed(percentile(micros, 0.99), 1)} µs, ${formatFixed(misses / micros.length, 2)} misses per get`;
  console.log(readLine('first', firstReads, firstMisses));
  console.log(readLine('last', lastReads, lastMisses));
  return finishRun(repoRoot, 'paged-open', startedAt, 'a read returned a wrong value', problems, {
    startedAt,
    options,
    pages,
    framesMax,
    pageFileBytes,
    pagedMs,
    arenaMs,
    firstReads: {
      p50Micros: percentile(firstReads, 0.5),
      p99Micros: percentile(firstReads, 0.99),
      missesPerGet: firstMisses / firstReads.length,
    },
    lastReads: {
      p50Micros: percentile(lastReads, 0.5),
      p99Micros: percentile(lastReads, 0.99),
      missesPerGet: lastMisses / lastReads.length,
    },
  });
}

try {
  process.exitCode = await main();
} finally {
  rmSync(root, { recursive: true, force: true });
}
