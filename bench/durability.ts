/**
 * bench:durability — what a durable (or not) put costs: lightning-db with its write-ahead log in
 * durability 'sync', 'relaxed' and 'none', next to lmdb-js and classic-level (LevelDB), same keys and
 * values, same run; and how long open() takes to replay a log of 1M records. See bench/README.md.
 *
 *   npm run bench:durability                 # 200,000 records per put phase, 1,000,000 for recovery
 *   npm run bench:durability -- --quick      # 20,000 and 100,000
 *   npm run bench:durability -- --records 50000 --rounds 5 --stores lightning-sync,lmdb --no-recovery
 *
 * The parent measures nothing itself: every store runs every phase in a fresh child process with a fresh
 * data directory, once per round; the parent collects one JSON line per child, checks them and prints
 * the medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChildTask, runChild } from './durability/child.js';
import {
  checkResults,
  type PutRecord,
  printDetails,
  printPutTable,
  printRatios,
  printRecovery,
  printTargets,
  type RecoveryRecord,
  summarizePuts,
  summarizeRecovery,
  targets,
} from './durability/report.js';
import { runChildProcess } from './durability/spawn.js';
import {
  lightningPartitions,
  lightningWorkers,
  type StoreName,
  storeLabels,
  storeNames,
} from './durability/stores.js';
import {
  keyBytes,
  loadWindow,
  type PutPhase,
  putPhases,
  putWindow,
  valueBytes,
} from './durability/workload.js';
import { parseArgumentsOrExit, parseListOf, parseOneOf, parsePositiveInteger } from './lib/args.js';
import { childScriptArgs } from './lib/child-process.js';
import {
  benchDataRoot,
  diskUsage,
  filesystemName,
  findRepoRoot,
  gitRevision,
  packageVersion,
} from './lib/environment.js';
import { formatCount, formatFixed } from './lib/format.js';
import { finishRun, withoutFirst } from './lib/results.js';
import { rotation } from './lib/rounds.js';

const recordsDefault = 200_000;
const recordsQuick = 20_000;
const recoveryRecordsDefault = 1_000_000;
const recoveryRecordsQuick = 100_000;
const seedDefault = 0x5eed;
/** Three rounds and medians, as bench:engine: the machine is shared, and one run per store is noise. */
const roundsDefault = 3;

interface Options {
  records: number;
  recoveryRecords: number;
  recovery: boolean;
  seed: number;
  rounds: number;
  stores: StoreName[];
  /** Set in a child. */
  child: ChildTask | undefined;
  dir: string | undefined;
}

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = findRepoRoot(path.dirname(thisFile));

/**
 * Generous limits, so a write that never settles fails the run instead of stalling it. A synced put
 * per key (classic-level put with sync) may run at a few thousand per second on a slow disk.
 */
function putTimeoutMs(records: number): number {
  return Math.max(300, records / 250) * 1000;
}
function recoveryTimeoutMs(records: number): number {
  return Math.max(300, (records / 1_000_000) * 1200) * 1000;
}

function childArgs(task: ChildTask, dir: string, records: number, seed: number): string[] {
  const what =
    task.kind === 'put'
      ? ['--child', 'put', '--store', task.store, '--phase', task.phase]
      : ['--child', task.kind];
  return [
    ...childScriptArgs(thisFile),
    ...what,
    '--dir',
    dir,
    '--records',
    String(records),
    '--seed',
    String(seed),
  ];
}

async function runPutRound(
  store: StoreName,
  phase: PutPhase,
  round: number,
  root: string,
  options: Options,
  records: PutRecord[],
  failures: string[],
): Promise<void> {
  // The parent owns the data directory, so it is removed even if the child crashes or is killed.
  const tempDir = mkdtempSync(path.join(root, `lightning-durability-${store}-`));
  const dir = path.join(tempDir, 'db');
  const label = `${storeLabels[store]} ${phase}`;
  try {
    const { result, problem } = await runChildProcess(
      childArgs({ kind: 'put', store, phase }, dir, options.records, options.seed),
      repoRoot,
      putTimeoutMs(options.records),
      label,
    );
    if (result !== undefined && result.kind === 'put') {
      // Measured after the child closed the store and exited, so everything it wrote is in the files.
      const record: PutRecord = { ...result, round, disk: diskUsage(dir) };
      records.push(record);
      console.log(
        `  round ${round}  ${storeLabels[store].padEnd(25)} ${phase.padEnd(10)} ${formatFixed(result.seconds, 2).padStart(7)} s ` +
          `${formatCount(result.perSecond).padStart(10)} ops/s, window p50 ${formatFixed(result.window.medianMs, 1)} ms, ` +
          `cpu ${formatFixed(result.cpuSeconds / result.seconds, 2)} cores`,
      );
    } else if (problem === undefined) {
      failures.push(`${label} (round ${round}): printed an unexpected result`);
    }
    if (problem !== undefined) {
      failures.push(`${label} (round ${round}): ${problem}`);
      console.log(`  round ${round}  ${label}: FAILED, ${problem}`);
    }
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
}

async function runRecoveryRound(
  round: number,
  root: string,
  options: Options,
  rounds: RecoveryRecord[],
  failures: string[],
): Promise<void> {
  const tempDir = mkdtempSync(path.join(root, 'lightning-durability-recovery-'));
  const dir = path.join(tempDir, 'db');
  const records = options.recoveryRecords;
  const timeoutMs = recoveryTimeoutMs(records);
  try {
    const loaded = await runChildProcess(
      childArgs({ kind: 'recovery-load' }, dir, records, options.seed),
      repoRoot,
      timeoutMs,
      'recovery load',
    );
    if (loaded.problem !== undefined || loaded.result?.kind !== 'recovery-load') {
      const problem = loaded.problem ?? 'printed an unexpected result';
      failures.push(`recovery load (round ${round}): ${problem}`);
      console.log(`  round ${round}  recovery load: FAILED, ${problem}`);
      return;
    }
    const load = loaded.result;
    // The owners' logs: every segment under <db>/wal (the layout in src/storage/layout.ts).
    const wal = diskUsage(path.join(dir, 'wal'));
    const database = diskUsage(dir);
    const opened = await runChildProcess(
      childArgs({ kind: 'recovery-open' }, dir, records, options.seed),
      repoRoot,
      timeoutMs,
      'recovery open',
    );
    const open = opened.result?.kind === 'recovery-open' ? opened.result : undefined;
    rounds.push({ round, load: { ...load, round }, open: open && { ...open, round }, wal, database });
    if (open !== undefined) {
      console.log(
        `  round ${round}  recovery: load ${formatCount(records)} in ${formatFixed(load.loadSeconds, 2)} s ('none'), ` +
          `log ${formatFixed(wal.bytes / 2 ** 20, 1)} MiB; open() ${formatFixed(open.seconds, 2)} s = ` +
          `${formatCount(records / open.seconds)} records/s, cpu ${formatFixed(open.cpuSeconds / open.seconds, 2)} cores`,
      );
    }
    const problem = opened.problem ?? (open === undefined ? 'printed an unexpected result' : undefined);
    if (problem !== undefined) {
      failures.push(`recovery open (round ${round}): ${problem}`);
      console.log(`  round ${round}  recovery open: FAILED, ${problem}`);
    }
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
}

async function runParent(options: Options): Promise<number> {
  const cpus = os.cpus();
  const root = benchDataRoot(repoRoot);
  const meta = {
    records: options.records,
    recoveryRecords: options.recovery ? options.recoveryRecords : null,
    keyBytes,
    valueBytes,
    putWindow,
    recoveryLoadWindow: loadWindow,
    seed: options.seed,
    rounds: options.rounds,
    stores: options.stores,
    lightningWorkers,
    lightningPartitions,
    git: gitRevision(repoRoot),
    node: process.version,
    lmdb: packageVersion(repoRoot, 'lmdb'),
    classicLevel: packageVersion(repoRoot, 'classic-level'),
    cpu: cpus[0]?.model.trim() ?? 'unknown CPU',
    cpus: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    platform: `${process.platform} ${process.arch}`,
    dataRoot: root,
    dataFilesystem: filesystemName(root),
    // Recorded because other work on the machine is the main source of noise between runs.
    loadAverage1m: os.loadavg()[0],
    startedAt: new Date().toISOString(),
  };
  console.log('bench:durability — durable puts: lightning-db (WAL) vs lmdb-js vs classic-level (LevelDB)');
  console.log(
    `machine: ${meta.cpu}, ${meta.cpus} CPUs, ${formatFixed(meta.memoryGiB, 1)} GiB, ${meta.platform}, node ${meta.node}, ` +
      `lmdb-js ${meta.lmdb}, classic-level ${meta.classicLevel}, load average ${formatFixed(meta.loadAverage1m, 2)} at start`,
  );
  console.log(
    `code: git ${meta.git} (lightning-db from src/ as built into dist/), started ${meta.startedAt}`,
  );
  console.log(
    `puts: ${formatCount(meta.records)} records per phase, ${keyBytes}-byte keys (sequential, then random), ` +
      `${valueBytes}-byte random values, seed ${meta.seed}; callers await windows of ${formatCount(putWindow)} puts`,
  );
  if (options.recovery) {
    console.log(
      `recovery: open() of a directory holding ${formatCount(options.recoveryRecords)} records (random keys) ` +
        `written with durability 'none'`,
    );
  }
  console.log(
    `data directories under ${root} (${meta.dataFilesystem}); lightning-db: ${lightningPartitions} partitions, ` +
      `W = ${lightningWorkers} owner workers`,
  );
  if (meta.dataFilesystem === 'tmpfs') {
    console.log('note: os.tmpdir() is tmpfs, where fsync is free; the data goes under .bench-tmp instead');
  }
  if (meta.cpus < lightningWorkers + 1) {
    console.log(
      `note: W = ${lightningWorkers} owner workers plus the main thread on ${meta.cpus} CPUs: they compete for cores`,
    );
  }
  console.log(
    `every store and phase runs in a fresh child process with a fresh directory, ${options.rounds} round(s), ` +
      'store order rotated per round\n',
  );

  const putRecords: PutRecord[] = [];
  const recoveryRounds: RecoveryRecord[] = [];
  const failures: string[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const phase of putPhases) {
      for (const store of rotation(options.stores, round)) {
        await runPutRound(store, phase, round, root, options, putRecords, failures);
      }
    }
    if (options.recovery) await runRecoveryRound(round, root, options, recoveryRounds, failures);
  }

  const summaries = summarizePuts(putRecords, options.stores);
  const recovery = summarizeRecovery(recoveryRounds);
  const targetLines = targets(summaries, recovery);
  console.log('');
  printPutTable(summaries, options.rounds);
  printRatios(summaries);
  printRecovery(recovery, options.rounds);
  printTargets(targetLines);
  printDetails(summaries);
  console.log('\nhow each store ran');
  for (const store of options.stores) {
    const first = summaries.find((summary) => summary.store === store)?.first;
    if (first === undefined) continue;
    console.log(`  ${storeLabels[store]}: ${first.setup}`);
    console.log(`    writes: ${first.method}`);
    console.log(`    durability: ${first.durability}`);
    const facts = Object.entries(first.facts).map(([name, value]) => `${name} ${String(value)}`);
    if (facts.length > 0) console.log(`    ${facts.join(', ')}`);
  }
  if (options.recovery) {
    const open = recoveryRounds.find((round) => round.open !== undefined)?.open;
    console.log(
      `  recovery: load with open(dir, { partitions: ${lightningPartitions}, workers: ${lightningWorkers}, durability: 'none' }), ` +
        `put() in windows of ${formatCount(loadWindow)}, close(); then in a new process the timed ${open?.setup ?? 'open()'}, ` +
        'which reads every owner log and replays each partition into its tree (the log files are in the page cache: a warm open)',
    );
  }

  const problems = [...failures, ...checkResults(putRecords, recoveryRounds)];
  if (problems.length === 0) {
    console.log(
      `\nchecks: every store reported N entries and read back all ${putRecords[0]?.spot.sampled ?? 0} sampled keys ` +
        'with the bytes written; the sampled-value checksums agree across stores and rounds',
    );
  }
  return finishRun(
    repoRoot,
    'durability',
    meta.startedAt,
    'a store lost or changed data, or failed',
    problems,
    {
      meta,
      summaries: withoutFirst(summaries),
      recovery: recovery ?? null,
      targets: targetLines,
      putResults: putRecords,
      recoveryRounds,
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// Arguments.

function parsePhase(text: string | undefined): PutPhase {
  return parseOneOf('phase', putPhases, text);
}

const usage =
  'usage: durability.js [--quick] [--records N] [--recovery-records N] [--no-recovery] [--seed S] [--rounds R] ' +
  `[--stores ${storeNames.join(',')}]`;

function parseArguments(argv: string[]): Options {
  const options: Options = {
    records: recordsDefault,
    recoveryRecords: recoveryRecordsDefault,
    recovery: true,
    seed: seedDefault,
    rounds: roundsDefault,
    stores: [...storeNames],
    child: undefined,
    dir: undefined,
  };
  let childKind: string | undefined;
  let store: StoreName | undefined;
  let phase: PutPhase | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--quick':
        options.records = recordsQuick;
        options.recoveryRecords = recoveryRecordsQuick;
        break;
      case '--records':
        options.records = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--recovery-records':
        options.recoveryRecords = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--no-recovery':
        options.recovery = false;
        break;
      case '--seed':
        options.seed = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--rounds':
        options.rounds = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--stores':
        options.stores = parseListOf('store', storeNames, argv[++i]);
        break;
      case '--child':
        childKind = argv[++i];
        break;
      case '--store':
        store = parseOneOf('store', storeNames, argv[++i]);
        break;
      case '--phase':
        phase = parsePhase(argv[++i]);
        break;
      case '--dir':
        options.dir = argv[++i];
        break;
      default:
        throw new Error(`unknown argument ${flag}; ${usage}`);
    }
  }
  if (childKind === 'put') {
    if (store === undefined || phase === undefined) throw new Error('--child put needs --store and --phase');
    options.child = { kind: 'put', store, phase };
  } else if (childKind === 'recovery-load' || childKind === 'recovery-open') {
    options.child = { kind: childKind };
  } else if (childKind !== undefined) {
    throw new Error(`unknown child task ${childKind}`);
  }
  if (options.child !== undefined && options.dir === undefined) throw new Error('--child needs --dir');
  return options;
}

const options = parseArgumentsOrExit(parseArguments);
if (options.child === undefined) {
  process.exitCode = await runParent(options);
} else {
  await runChild(options.child, options.dir!, options.records, options.seed);
}
