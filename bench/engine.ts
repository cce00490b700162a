/**
 * bench:engine — the lightning-db database API (open(): partitions owned by worker threads) next to
 * lmdb-js, same workload, same run, each at durability 'sync' and 'nosync' (every ratio compares one
 * durability with itself). See bench/README.md for what is measured and how.
 *
 *   npm run bench:engine                 # 1,000,000 records
 *   npm run bench:engine -- --quick      # 100,000 records
 *   npm run bench:engine -- --records 250000 --seed 7 --rounds 5 --stores lightning-w2-sync,lmdb-sync
 *
 * The parent measures nothing itself: it runs each store in a fresh child process (its own heap, its own
 * threads, nothing left over from the previous store) once per round, collects the JSON lines each child
 * prints, checks that every store returned the same bytes, and prints the per-store medians.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChildLine, type ResultLine, runChild } from './engine/child.js';
import {
  checkAgreement,
  printBatchStats,
  printChecks,
  printTargets,
  printThroughput,
  printTimings,
  summarize,
} from './engine/report.js';
import { lightningPartitions, type StoreName, storeLabels, storeNames } from './engine/stores.js';
import { keyBytes, rangeRowsPerScan, rangeScans, valueBytes, writeWindow } from './engine/workload.js';
import { parseArgumentsOrExit, parseListOf, parseOneOf, parsePositiveInteger } from './lib/args.js';
import { type ChildOutcome, childScriptArgs, runJsonChild } from './lib/child-process.js';
import { benchDataRoot, filesystemName, findRepoRoot, packageVersion } from './lib/environment.js';
import { formatCount, formatFixed } from './lib/format.js';
import { finishRun, withoutFirst } from './lib/results.js';
import { runStoreRounds } from './lib/rounds.js';
import { durabilityClassText } from './stores/peer.js';

const recordsDefault = 1_000_000;
const recordsQuick = 100_000;
const seedDefault = 0x5eed;
/**
 * Three rounds: on a shared 2-CPU machine, two single runs put lightning-db's get ratio to lmdb-js at
 * 1.16x and 1.75x, so one number per store cannot judge a 1.5x target; a median of three does better.
 */
const roundsDefault = 3;
/** Writes of the put x1 phase: each waits for its own commit (and, with 'sync', its own fsync). */
const serialPutsDefault = 2_000;
const serialPutsQuick = 500;

interface Options {
  records: number;
  seed: number;
  rounds: number;
  serialPuts: number;
  stores: StoreName[];
  /** Set in a child: which store to run, and the directory the parent made for its data. */
  child: StoreName | undefined;
  dir: string | undefined;
}

const thisFile = fileURLToPath(import.meta.url);
/** Runs as bench/engine.ts or as dist/bench/engine.js, so find the root by its package.json. */
const repoRoot = findRepoRoot(path.dirname(thisFile));

/** A generous per-child limit, so a hung write (a promise that never settles) fails the run instead of stalling it. */
function childTimeoutMs(records: number): number {
  return Math.max(300, (records / 1_000_000) * 1200) * 1000;
}

/** Runs one store in a fresh child, echoing its phases as they finish. */
function runStoreInChild(
  store: StoreName,
  round: number,
  dir: string,
  options: Options,
): Promise<ChildOutcome<ResultLine>> {
  const args = [
    ...childScriptArgs(thisFile),
    '--child',
    store,
    '--dir',
    dir,
    '--records',
    String(options.records),
    '--seed',
    String(options.seed),
    '--serial-puts',
    String(options.serialPuts),
  ];
  return runJsonChild<ChildLine, ResultLine>({
    args,
    cwd: repoRoot,
    timeoutMs: childTimeoutMs(options.records),
    label: storeLabels[store],
    onLine: (parsed) => {
      if (parsed.kind !== 'phase') return parsed;
      const unit = parsed.phase === 'range' ? 'rows/s' : 'ops/s';
      console.log(
        `  round ${round}  ${storeLabels[store].padEnd(23)} ${parsed.phase.padEnd(5)} ${formatFixed(parsed.seconds, 2).padStart(7)} s ` +
          `${formatCount(parsed.perSecond).padStart(11)} ${unit}, ${formatCount(parsed.perCpuSecond).padStart(11)} per CPU-s, ` +
          `cpu ${formatFixed(parsed.cpuSeconds / parsed.seconds, 2)} cores`,
      );
      return undefined;
    },
  });
}

async function runParent(options: Options): Promise<number> {
  const cpus = os.cpus();
  const meta = {
    records: options.records,
    keyBytes,
    valueBytes,
    seed: options.seed,
    writeWindow,
    serialPuts: options.serialPuts,
    rangeScans,
    rangeRowsPerScan,
    lightningPartitions,
    stores: options.stores,
    rounds: options.rounds,
    node: process.version,
    lmdb: packageVersion(repoRoot, 'lmdb'),
    cpu: cpus[0]?.model.trim() ?? 'unknown CPU',
    cpus: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    platform: `${process.platform} ${process.arch}`,
    tmpdir: benchDataRoot(repoRoot),
    tmpdirFilesystem: filesystemName(benchDataRoot(repoRoot)),
    // Recorded because other work on the machine is the main source of noise between runs.
    loadAverage1m: os.loadavg()[0],
    startedAt: new Date().toISOString(),
  };
  console.log(
    "bench:engine — lightning-db (open(), W = 1 and 2 owner workers) vs lmdb-js, each at durability 'sync' and 'nosync'",
  );
  console.log(
    `machine: ${meta.cpu}, ${meta.cpus} CPUs, ${formatFixed(meta.memoryGiB, 1)} GiB, ${meta.platform}, ` +
      `node ${meta.node}, lmdb-js ${meta.lmdb}, load average ${formatFixed(meta.loadAverage1m, 2)} at start`,
  );
  console.log(
    `records ${formatCount(meta.records)}: ${keyBytes}-byte random keys, ${valueBytes}-byte values, seed ${meta.seed}; ` +
      `writes in windows of ${formatCount(writeWindow)}; range = ${formatCount(rangeScans)} scans x ${rangeRowsPerScan} rows`,
  );
  console.log(
    `writes: load and put in windows of ${formatCount(writeWindow)} put() promises, then ${formatCount(options.serialPuts)} ` +
      'puts one at a time (put x1), each awaited before the next: the same calls for every store',
  );
  console.log(
    `durability 'sync': ${durabilityClassText.sync} (lightning-db 'sync'; lmdb-js overlappingSync: false)`,
  );
  console.log(
    `durability 'nosync': ${durabilityClassText.nosync} (lightning-db 'none'; lmdb-js noSync: true); ` +
      `data in ${meta.tmpdir} (${meta.tmpdirFilesystem})`,
  );
  if (options.stores.some((store) => store.startsWith('lightning-w2')) && meta.cpus < 3) {
    console.log(
      `note: W=2 means 2 owner workers plus the main thread on ${meta.cpus} CPUs; they compete for cores.`,
    );
  }
  console.log(
    `each store runs in a fresh child process, ${options.rounds} round(s), store order rotated per round\n`,
  );

  const { results, failures } = await runStoreRounds({
    rounds: options.rounds,
    stores: options.stores,
    labels: storeLabels,
    tempParent: meta.tmpdir,
    tempPrefix: 'lightning-bench-',
    run: (store, round, dir) => runStoreInChild(store, round, dir, options),
  });

  const summaries = summarize(results, options.stores);
  console.log('');
  printThroughput(summaries, options.rounds);
  printTargets(summaries);
  printBatchStats(summaries);
  printChecks(summaries);
  printTimings(summaries);
  console.log('\nhow each store ran');
  for (const { first: result } of summaries) {
    console.log(`  ${storeLabels[result.store]}: ${result.setup}`);
    console.log(`    ${result.durability}`);
    const facts = Object.entries(result.facts).map(([name, value]) => `${name} ${String(value)}`);
    if (facts.length > 0) console.log(`    ${facts.join(', ')}`);
  }

  const problems = [...failures, ...checkAgreement(results, options.records)];
  return finishRun(repoRoot, 'engine', meta.startedAt, 'the stores disagree or a store failed', problems, {
    meta,
    summaries: withoutFirst(summaries),
    results,
  });
}

// ---------------------------------------------------------------------------------------------------
// Arguments.

function parseArguments(argv: string[]): Options {
  const options: Options = {
    records: recordsDefault,
    seed: seedDefault,
    rounds: roundsDefault,
    serialPuts: serialPutsDefault,
    stores: [...storeNames],
    child: undefined,
    dir: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--quick':
        options.records = recordsQuick;
        options.serialPuts = serialPutsQuick;
        break;
      case '--serial-puts':
        options.serialPuts = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--records':
        options.records = parsePositiveInteger(flag, argv[++i]);
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
        options.child = parseOneOf('store', storeNames, argv[++i]);
        break;
      case '--dir':
        options.dir = argv[++i];
        break;
      default:
        throw new Error(
          `unknown argument ${flag}; usage: engine.js [--quick] [--records N] [--serial-puts N] [--seed S] [--rounds R] ` +
            `[--stores ${storeNames.join(',')}]`,
        );
    }
  }
  if (options.child !== undefined && options.dir === undefined) throw new Error('--child needs --dir');
  return options;
}

const options = parseArgumentsOrExit(parseArguments);
if (options.child === undefined) {
  process.exitCode = await runParent(options);
} else {
  await runChild(options.child, options.dir!, options.records, options.seed, options.serialPuts);
}
