/**
 * bench:replication — what replication costs and how fast it recovers, on a real 3-node NATS
 * JetStream cluster this bench starts on 127.0.0.1 (test/support/nats-cluster.ts):
 * - puts on a leader (durability 'replicated', one follower attached) at 1 and 64 outstanding, next to
 *   the same puts on a plain database (durability 'sync', same partitions, workers, keys and values),
 *   in the same run: puts/s, p50/p99 latency, puts per CPU-second;
 * - the follower's lag during those runs (its own stats, and probes timed from here);
 * - failover: a leader in a child process SIGKILLed while writing, a follower here promoting; the time
 *   from the kill to the first put the new leader accepts, and every acknowledged put checked there.
 *
 *   npm run bench:replication                  # 5,000 puts at 1 outstanding, 20,000 at 64; 3 rounds; 3 failovers
 *   npm run bench:replication -- --quick       # 500 and 4,000; 1 round; 1 failover
 *   npm run bench:replication -- --rounds 1 --failovers 0
 *
 * Each put run is a fresh child process with a fresh directory (and stream); durations are counts of
 * puts, never times. See bench/RESULTS.md for the latest run.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NatsCluster } from '../test/support/nats-cluster.js';
import { parseArgumentsOrExit, parseOneOf, parsePositiveInteger } from './lib/args.js';
import { benchDataRoot, filesystemName, findRepoRoot, gitRevision } from './lib/environment.js';
import { formatCount, formatFixed } from './lib/format.js';
import { finishRun } from './lib/results.js';
import { rotation } from './lib/rounds.js';
import { type FailoverRecord, runFailoverRound } from './replication/failover.js';
import { runFailoverChild } from './replication/failover-child.js';
import type { PutMode } from './replication/lines.js';
import { runPutChild } from './replication/put-child.js';
import { type PutRecord, runPutRun } from './replication/put-runs.js';
import {
  goalLines,
  lagSummaries,
  printFailover,
  printLag,
  printPutTable,
  printRatios,
  putProblems,
  ratios,
} from './replication/report.js';
import {
  concurrencies,
  failoverKillAfterDefault,
  failoverKillAfterQuick,
  failoverLeaseTtlMs,
  failoverRoundsDefault,
  keyBytes,
  type PutCounts,
  partitions,
  putCountsDefault,
  putCountsQuick,
  valueBytes,
  workers,
} from './replication/workload.js';

const modes: readonly PutMode[] = ['sync', 'replicated'];

interface Options {
  counts: PutCounts;
  rounds: number;
  failovers: number;
  killAfter: number;
  seed: number;
  /** Set in a child. */
  child: 'put' | 'failover' | undefined;
  mode: PutMode;
  concurrency: number;
  dir: string | undefined;
  servers: string[];
  stream: string;
  leaseTtlMs: number;
}

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = findRepoRoot(path.dirname(thisFile));

function natsServerVersion(): string {
  try {
    return execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'nats-server (version unknown)';
  }
}

function loadText(): string {
  return os
    .loadavg()
    .map((load) => formatFixed(load, 2))
    .join(' / ');
}

async function runPuts(
  cluster: NatsCluster,
  options: Options,
  dataRoot: string,
  records: PutRecord[],
  failures: string[],
) {
  const context = {
    script: thisFile,
    repoRoot,
    dataRoot,
    servers: cluster.servers,
    serverPids: () => cluster.nodes.flatMap((node) => (node.pid === undefined ? [] : [node.pid])),
    counts: options.counts,
    seed: options.seed,
  };
  for (let round = 1; round <= options.rounds; round++) {
    for (const concurrency of concurrencies) {
      for (const mode of rotation(modes, round)) {
        const label = `round ${round}  ${mode.padEnd(10)} ${String(concurrency).padStart(2)} outstanding`;
        await runRound(label, failures, runPutRun(context, mode, concurrency, round), (record) => {
          records.push(record);
          const { result } = record;
          const lag =
            record.follower === null
              ? ''
              : `, follower lag p50 ${formatFixed(record.follower.statsLagMsP50, 1)} ms (stats)`;
          return (
            `${formatCount(result.puts / result.seconds).padStart(7)} puts/s, p50 ${formatFixed(result.latencyMs.p50, 2)} ms, ` +
            `p99 ${formatFixed(result.latencyMs.p99, 2)} ms, leader ${formatFixed(result.cpuSeconds / result.seconds, 2)} cores${lag}; ` +
            `load ${formatFixed(result.loadAverage1m, 2)}`
          );
        });
      }
    }
  }
}

async function runFailovers(
  cluster: NatsCluster,
  options: Options,
  dataRoot: string,
  records: FailoverRecord[],
  failures: string[],
) {
  const context = {
    script: thisFile,
    repoRoot,
    dataRoot,
    servers: cluster.servers,
    killAfter: options.killAfter,
    seed: options.seed,
  };
  for (let round = 1; round <= options.failovers; round++) {
    await runRound(`failover ${round}`, failures, runFailoverRound(context, round), (record) => {
      records.push(record);
      return (
        `kill → promoted ${formatCount(record.killToPromotedMs)} ms, → first put ${formatCount(record.killToFirstPutMs)} ms; ` +
        `${formatCount(record.present)} of ${formatCount(record.acked)} acknowledged puts on the new leader; load ${loadText()}`
      );
    });
  }
}

/**
 * Awaits one round: its record (kept and described by `took`, which returns the line to print) and
 * its problem, or the error it threw, each added to `failures` and printed under `label`.
 */
async function runRound<R>(
  label: string,
  failures: string[],
  round: Promise<{ record?: R | undefined; problem?: string | undefined }>,
  took: (record: R) => string,
): Promise<void> {
  const fail = (why: string): void => {
    failures.push(`${label}: ${why}`);
    console.log(`  ${label}: FAILED, ${why}`);
  };
  try {
    const { record, problem } = await round;
    if (record !== undefined) console.log(`  ${label}: ${took(record)}`);
    if (problem !== undefined) fail(problem);
  } catch (error) {
    fail(String(error));
  }
}

async function runParent(options: Options): Promise<number> {
  const dataRoot = benchDataRoot(repoRoot);
  const meta = {
    counts: options.counts,
    rounds: options.rounds,
    failovers: options.failovers,
    failoverKillAfter: options.killAfter,
    failoverLeaseTtlMs,
    seed: options.seed,
    keyBytes,
    valueBytes,
    partitions,
    workers,
    git: gitRevision(repoRoot),
    node: process.version,
    natsServer: natsServerVersion(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cpus: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    platform: `${process.platform} ${process.arch}`,
    dataRoot,
    dataFilesystem: filesystemName(dataRoot),
    natsFilesystem: filesystemName(os.tmpdir()),
    loadAverageStart: os.loadavg(),
    loadAverageEnd: [] as number[],
    startedAt: new Date().toISOString(),
  };
  console.log(
    'bench:replication — replicated puts, follower lag and failover on a 3-node NATS JetStream cluster',
  );
  console.log(
    `machine: ${meta.cpu}, ${meta.cpus} CPUs, ${formatFixed(meta.memoryGiB, 1)} GiB, ${meta.platform}, node ${meta.node}, ` +
      `${meta.natsServer}; load average ${loadText()} (1/5/15 min) at start`,
  );
  console.log(
    `code: git ${meta.git} (lightning-db from src/ as built into dist/), started ${meta.startedAt}`,
  );
  console.log(
    `puts: ${keyBytes}-byte random keys, ${valueBytes}-byte random values, seed ${meta.seed}; ` +
      `${formatCount(options.counts.serial)} timed puts at 1 outstanding, ${formatCount(options.counts.concurrent)} at 64, ` +
      `after ${formatCount(options.counts.warmup)} untimed; ${partitions} partitions, ${workers} owner workers; ` +
      `${options.rounds} round(s), the order of 'sync' and 'replicated' rotated per round`,
  );
  console.log(
    `data directories under ${dataRoot} (${meta.dataFilesystem}); the NATS servers' stores under ${os.tmpdir()} ` +
      `(${meta.natsFilesystem}); every process shares the same ${meta.cpus} CPUs\n`,
  );

  const putRecords: PutRecord[] = [];
  const failoverRecords: FailoverRecord[] = [];
  const failures: string[] = [];
  const cluster = await NatsCluster.start();
  try {
    await runPuts(cluster, options, dataRoot, putRecords, failures);
    await runFailovers(cluster, options, dataRoot, failoverRecords, failures);
  } finally {
    await cluster.close();
  }
  meta.loadAverageEnd = os.loadavg();

  console.log('');
  printPutTable(putRecords, options.rounds);
  const ratioList = ratios(putRecords);
  printRatios(ratioList);
  const lags = lagSummaries(putRecords);
  printLag(lags);
  printFailover(failoverRecords, failoverLeaseTtlMs);
  const goals = goalLines(putRecords, lags);
  console.log('\ngoals');
  for (const line of goals) console.log(`  ${line}`);
  console.log(`\nload average ${loadText()} (1/5/15 min) at the end`);

  const problems = [...failures, ...putProblems(putRecords, options.counts.warmup)];
  if (problems.length === 0) {
    console.log(
      'checks: every leader and follower held every put with its value (entry counts, sampled keys); ' +
        'every put the failover children reported acknowledged was on the new leader',
    );
  }
  return finishRun(
    repoRoot,
    'replication',
    meta.startedAt,
    'a database lost or changed data, or failed',
    problems,
    {
      meta,
      ratios: ratioList,
      lags,
      goals,
      putRecords,
      failoverRecords,
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// Arguments.

const usage =
  'usage: replication.js [--quick] [--rounds R] [--failovers N] [--kill-after N] [--serial-puts N] ' +
  '[--concurrent-puts N] [--seed S]';

function parseArguments(argv: string[]): Options {
  const options: Options = {
    counts: { ...putCountsDefault },
    rounds: 3,
    failovers: failoverRoundsDefault,
    killAfter: failoverKillAfterDefault,
    seed: 0x5eed,
    child: undefined,
    mode: 'sync',
    concurrency: 1,
    dir: undefined,
    servers: [],
    stream: '',
    leaseTtlMs: failoverLeaseTtlMs,
  };
  const count = (text: string | undefined, flag: string): number =>
    text === '0' ? 0 : parsePositiveInteger(flag, text);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case '--quick':
        options.counts = { ...putCountsQuick };
        options.rounds = 1;
        options.failovers = 1;
        options.killAfter = failoverKillAfterQuick;
        break;
      case '--rounds':
        options.rounds = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--failovers':
        options.failovers = count(argv[++i], flag);
        break;
      case '--kill-after':
        options.killAfter = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--serial-puts':
        options.counts.serial = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--concurrent-puts':
        options.counts.concurrent = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--seed':
        options.seed = parsePositiveInteger(flag, argv[++i]);
        break;
      // What the parent passes to its children.
      case '--child':
        options.child = parseOneOf('child', ['put', 'failover'] as const, argv[++i]);
        break;
      case '--mode':
        options.mode = parseOneOf('mode', modes, argv[++i]);
        break;
      case '--concurrency':
        options.concurrency = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--puts':
        options.counts.concurrent = options.counts.serial = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--warmup':
        options.counts.warmup = count(argv[++i], flag);
        break;
      case '--dir':
        options.dir = argv[++i];
        break;
      case '--servers':
        options.servers = (argv[++i] ?? '').split(',');
        break;
      case '--stream':
        options.stream = argv[++i] ?? '';
        break;
      case '--lease-ttl':
        options.leaseTtlMs = parsePositiveInteger(flag, argv[++i]);
        break;
      default:
        throw new Error(`unknown argument ${flag}; ${usage}`);
    }
  }
  if (options.child !== undefined && options.dir === undefined) throw new Error('--child needs --dir');
  return options;
}

const options = parseArgumentsOrExit(parseArguments);
if (options.child === 'put') {
  await runPutChild({
    mode: options.mode,
    dir: options.dir!,
    concurrency: options.concurrency,
    puts: options.counts.serial,
    warmup: options.counts.warmup,
    seed: options.seed,
    servers: options.servers,
    stream: options.stream,
  });
} else if (options.child === 'failover') {
  await runFailoverChild({
    dir: options.dir!,
    servers: options.servers,
    stream: options.stream,
    leaseTtlMs: options.leaseTtlMs,
    killAfter: options.killAfter,
    seed: options.seed,
  });
} else {
  process.exitCode = await runParent(options);
}
