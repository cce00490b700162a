/**
 * --scaling: how lightning-db's throughput grows with threads.
 *  1. Owner workers: the load and the workloads with W = 1, 2, ... workersMax owner workers (default
 *     os.availableParallelism()), one fresh child per W, durability 'relaxed' so the figures show CPU
 *     scaling rather than fsync latency.
 *  2. Reader threads: one child loads the records, then for T = 1..readersMax starts T app workers that
 *     attach (`attach(db.share())`) and each do `operations` synchronous zipfian gets (workload C).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { formatCount, formatFixed, formatRatio, formatTable } from '../lib/format.js';
import { printUntrustworthy, writeResults } from '../lib/results.js';
import { buildStreams, type ResultLine, valuePool } from './child.js';
import { KeyTable, keyBytes } from './keys.js';
import { machineFacts, printMachine } from './machine.js';
import { type Options, settingsArguments } from './options.js';
import type { ReaderData, ReaderDone } from './reader-thread.js';
import { childTimeoutMs, type SpawnTarget, spawnChild } from './spawn.js';
import { valueOffset } from './workloads.js';

export interface ReadersRow {
  threads: number;
  seconds: number;
  opsPerSecond: number;
  /** The slowest and fastest thread's own rate: a wide gap means the threads were short of cores. */
  threadOpsPerSecondMin: number;
  threadOpsPerSecondMax: number;
  missing: number;
}

interface ReadersResult {
  kind: 'readers-result';
  workers: number;
  rows: ReadersRow[];
}

/** The reader-thread child: loads the records, then runs T = 1..readersMax reader threads. */
export async function runReadersChild(dir: string, options: Options): Promise<void> {
  const { open } = await import('../../src/index.js');
  const db = await open(dir, { durability: 'relaxed', threadsMax: Math.min(64, options.readersMax + 1) });
  const { streams, keyCount } = buildStreams({ ...options, workloads: [] });
  const load = streams[0]!;
  const keyTable = new SharedArrayBuffer(keyCount * keyBytes);
  const keys = new KeyTable(keyCount, keyTable).fill();
  const pool = valuePool(options.valueSize, options.seed);
  for (let from = 0, windowSeq = 0; from < keyCount; from += options.concurrency, windowSeq++) {
    const pending: Promise<void>[] = [];
    for (let k = from; k < Math.min(keyCount, from + options.concurrency); k++) {
      const offset = valueOffset(k, windowSeq, pool.mask);
      pending.push(db.put(keys.buffer(k), pool.bytes.subarray(offset, offset + pool.valueSize)));
    }
    await Promise.all(pending);
  }
  process.stderr.write(`    reader threads: loaded ${formatCount(load.count)} records\n`);

  const rows: ReadersRow[] = [];
  const script = new URL(
    import.meta.url.endsWith('.ts') ? './reader-thread.ts' : './reader-thread.js',
    import.meta.url,
  );
  for (let threads = 1; threads <= options.readersMax; threads++) {
    const startSignal = new SharedArrayBuffer(4);
    const ready: Promise<void>[] = [];
    const done: Promise<ReaderDone>[] = [];
    const exited: Promise<unknown>[] = [];
    for (let thread = 0; thread < threads; thread++) {
      const data: ReaderData = {
        handle: db.share(),
        keyTable,
        keyCount,
        operations: options.readerGets,
        seed: options.seed,
        thread,
        startSignal,
      };
      const worker = new Worker(script, {
        workerData: data,
        execArgv: import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [],
      });
      // Listened for from the start: a thread that finishes early exits while the others still run.
      exited.push(new Promise((resolve) => worker.once('exit', resolve)));
      ready.push(
        new Promise((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
          worker.once('exit', (code) =>
            reject(new Error(`reader thread ${thread} exited with ${code} before it was ready`)),
          );
        }),
      );
      done.push(
        new Promise((resolve, reject) => {
          worker.on('message', (message: { kind: string }) => {
            if (message.kind === 'done') resolve(message as ReaderDone);
          });
          worker.once('error', reject);
        }),
      );
    }
    await Promise.all(ready);
    const start = performance.now();
    Atomics.store(new Int32Array(startSignal), 0, 1);
    Atomics.notify(new Int32Array(startSignal), 0);
    const finished = await Promise.all(done);
    const seconds = (performance.now() - start) / 1000;
    await Promise.all(exited);
    const rates = finished.map((result) => options.readerGets / result.seconds);
    const row: ReadersRow = {
      threads,
      seconds,
      opsPerSecond: (threads * options.readerGets) / seconds,
      threadOpsPerSecondMin: Math.min(...rates),
      threadOpsPerSecondMax: Math.max(...rates),
      missing: finished.reduce((sum, result) => sum + result.missing, 0),
    };
    rows.push(row);
    process.stderr.write(
      `    reader threads ${threads}: ${formatCount(row.opsPerSecond)} gets/s in ${formatFixed(seconds, 2)} s\n`,
    );
  }
  const workers = db.stats().workers;
  await db.close();
  const result: ReadersResult = { kind: 'readers-result', workers, rows };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export async function runScaling(options: Options, target: SpawnTarget): Promise<number> {
  const machine = machineFacts(target.repoRoot);
  const streamNames = ['load', ...options.workloads];
  console.log("YCSB scaling: lightning-db 'relaxed' with W owner workers, and T attached reader threads");
  printMachine(machine);
  console.log(
    `records ${formatCount(options.records)}, ${formatCount(options.operations)} operations per workload, ` +
      `${formatCount(options.readerGets)} gets per reader thread, ${options.concurrency} operations per window, ` +
      `seed ${options.seed}\n`,
  );
  const failures: string[] = [];
  const timeoutMs = childTimeoutMs(options.records, options.operations, options.workloads.length);
  const byWorkers: ResultLine[] = [];
  for (let workers = 1; workers <= options.workersMax; workers++) {
    const label = `lightning-db W=${workers}`;
    const { result, problem } = await spawnChild<ResultLine>(
      target,
      label,
      ['--child', 'lightning-relaxed', '--workers', String(workers), ...settingsArguments(options)],
      timeoutMs,
      (line) => (line.kind === 'result' ? (line as unknown as ResultLine) : undefined),
    );
    if (result !== undefined) byWorkers.push(result);
    if (problem !== undefined) failures.push(`${label}: ${problem}`);
  }
  const readers = await spawnChild<ReadersResult>(
    target,
    'reader threads',
    [
      '--child',
      'readers',
      '--readers',
      String(options.readersMax),
      '--reader-gets',
      String(options.readerGets),
      ...settingsArguments(options),
    ],
    timeoutMs * 2,
    (line) => (line.kind === 'readers-result' ? (line as unknown as ReadersResult) : undefined),
  );
  if (readers.problem !== undefined) failures.push(`reader threads: ${readers.problem}`);

  const base = byWorkers[0];
  console.log('\nowner workers: ops/s per workload (speedup over the first row in brackets)');
  console.log(
    formatTable(
      ['W', ...streamNames],
      byWorkers.map((result) => [
        String(result.facts.workers),
        ...streamNames.map((name) => {
          const own = result.streams.find((stream) => stream.name === name);
          const first = base?.streams.find((stream) => stream.name === name);
          if (own === undefined) return '-';
          const speedup =
            first === undefined ? '' : ` (${formatRatio(own.opsPerSecond / first.opsPerSecond)})`;
          return `${formatCount(own.opsPerSecond)}${speedup}`;
        }),
      ]),
      `r${'r'.repeat(streamNames.length)}`,
    ),
  );
  const readerRows = readers.result?.rows ?? [];
  console.log(
    `\nreader threads: synchronous zipfian gets (workload C) from T attached app workers, ` +
      `${readers.result?.workers ?? '?'} owner workers idle`,
  );
  console.log(
    formatTable(
      ['T', 'gets/s', 'speedup', 'per thread min', 'per thread max'],
      readerRows.map((row) => [
        String(row.threads),
        formatCount(row.opsPerSecond),
        formatRatio(row.opsPerSecond / readerRows[0]!.opsPerSecond),
        formatCount(row.threadOpsPerSecondMin),
        formatCount(row.threadOpsPerSecondMax),
      ]),
      'rrrrr',
    ),
  );
  if (os.availableParallelism() <= 2) {
    console.log(`note: ${os.availableParallelism()} CPUs: threads beyond that share cores with each other.`);
  }
  for (const row of readerRows) {
    if (row.missing > 0) failures.push(`reader threads T=${row.threads}: ${row.missing} gets found nothing`);
  }
  for (const result of byWorkers) {
    if (result.count !== result.expectedCount) {
      failures.push(`W=${result.facts.workers}: ${result.count} entries, expected ${result.expectedCount}`);
    }
  }
  if (failures.length > 0) printUntrustworthy('a child failed or a check did not hold', failures);
  const { child: _child, dir: _dir, workers: _workers, help: _help, ...settings } = options;
  writeResults(target.repoRoot, 'ycsb-scaling', machine.startedAt, {
    machine,
    settings,
    byWorkers,
    readers: readers.result ?? null,
    problems: failures,
  });
  return failures.length > 0 ? 1 : 0;
}
