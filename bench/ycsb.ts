/**
 * npm run bench — the YCSB suite: lightning-db next to lmdb-js, classic-level, better-sqlite3 and a Map
 * on the core workloads (load, A-F) with scrambled zipfian and 'latest' keys, in one run. See
 * bench/README.md for how each store is driven and what is measured.
 *
 *   npm run bench                               # 1,000,000 records, 300,000 operations per workload
 *   npm run bench -- --quick                    # tiny counts, well under a minute (CI smoke)
 *   npm run bench -- --records 100000 --workloads A,C --stores lightning-sync,lmdb
 *   npm run bench:scaling                       # lightning-db with W = 1..cores, reader threads 1..cores
 *
 * The parent measures nothing itself: each store runs in a fresh child process (its own heap, threads
 * and data directory), which loads the records and runs the workloads in order. The parent checks that
 * every store returned the same bytes, prints the tables and writes bench/out/ycsb-<timestamp>.json.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgumentsOrExit } from './lib/args.js';
import { findRepoRoot } from './lib/environment.js';
import { formatCount, formatFixed } from './lib/format.js';
import { printUntrustworthy, writeResults } from './lib/results.js';
import { rotation } from './lib/rounds.js';
import { type ResultLine, runChild } from './ycsb/child.js';
import { keyBytes } from './ycsb/keys.js';
import { machineFacts, printMachine } from './ycsb/machine.js';
import { help, type Options, parseOptions, settingsArguments } from './ycsb/options.js';
import {
  checkAgreement,
  evaluateTargets,
  printChecks,
  printIo,
  printLatencyByOp,
  printPools,
  printRatios,
  printTargets,
  printThroughput,
} from './ycsb/report.js';
import { summarizeRounds } from './ycsb/rounds.js';
import { runReadersChild, runScaling } from './ycsb/scaling.js';
import { childTimeoutMs, type SpawnTarget, spawnChild } from './ycsb/spawn.js';
import {
  estimatedDataBytes,
  framesPerPartitionMin,
  recordOverheadBytes,
  storeDurability,
  storeLabels,
} from './ycsb/stores.js';
import { workloadSpecs } from './ycsb/workloads.js';

const thisFile = fileURLToPath(import.meta.url);
const target: SpawnTarget = { script: thisFile, repoRoot: findRepoRoot(path.dirname(thisFile)) };

async function runComparison(options: Options): Promise<number> {
  const machine = machineFacts(target.repoRoot);
  const { child: _child, dir: _dir, workers: _workers, help: _help, ...settings } = options;
  const streamNames = ['load', ...options.workloads];
  console.log('YCSB: lightning-db vs lmdb-js, classic-level, better-sqlite3 and Map');
  printMachine(machine);
  console.log(
    `records ${formatCount(options.records)} (23-byte keys "user" + 19 digits, ${options.valueSize}-byte values), ` +
      `${formatCount(options.operations)} operations per workload, ${options.concurrency} operations per window, ` +
      `seed ${options.seed}`,
  );
  if (options.stores.includes('lightning-paged')) {
    const dataBytes = estimatedDataBytes(options.records, keyBytes, options.valueSize);
    console.log(
      `lightning-paged: memoryMaxBytes = ${options.memoryFraction} × ${formatCount(dataBytes)} bytes (records × ` +
        `(${keyBytes} + ${options.valueSize} + ${recordOverheadBytes})), rounded up to whole 4 KiB pages per ` +
        `partition, at least ${framesPerPartitionMin}; closed and reopened (timed) after the load`,
    );
  }
  for (const name of options.workloads) {
    const spec = workloadSpecs[name];
    const summary =
      options.distribution !== undefined && spec.distribution !== 'latest'
        ? spec.summary.replace('zipfian', options.distribution)
        : spec.summary;
    console.log(`  ${name}: ${summary}`);
  }
  console.log(
    `each store runs in a fresh child process: load, then the workloads in order; ${options.rounds} round(s)` +
      (options.rounds > 1 ? ', store order rotated each round\n' : '\n'),
  );

  const results: ResultLine[] = [];
  const failures: string[] = [];
  const timeoutMs = childTimeoutMs(options.records, options.operations, options.workloads.length);
  for (let round = 1; round <= options.rounds; round++) {
    for (const store of rotation(options.stores, round)) {
      const label = options.rounds > 1 ? `${storeLabels[store]} #${round}` : storeLabels[store];
      console.error(`${label}: starting (${storeDurability[store]})`);
      const { result, problem } = await spawnChild<ResultLine>(
        target,
        label,
        ['--child', store, ...settingsArguments(options)],
        timeoutMs,
        (line) => (line.kind === 'result' ? (line as unknown as ResultLine) : undefined),
      );
      if (result !== undefined) results.push({ ...result, round });
      if (problem !== undefined) {
        failures.push(`${label}: ${problem}`);
        console.error(`  ${label}: FAILED, ${problem}`);
      }
    }
  }

  const summaries = summarizeRounds(results, options.stores);
  console.log('');
  printThroughput(summaries, streamNames);
  printRatios(summaries, streamNames);
  const verdicts = evaluateTargets(summaries, streamNames);
  printTargets(verdicts);
  printLatencyByOp(summaries, streamNames);
  printIo(summaries, streamNames);
  printPools(results, streamNames);
  printChecks(results, streamNames);
  console.log('\nhow each store ran');
  for (const result of summaries) {
    console.log(`  ${storeLabels[result.store]}: ${result.setup}`);
    console.log(`    durability: ${storeDurability[result.store]}`);
    const facts = Object.entries(result.facts).map(([name, value]) => `${name} ${String(value)}`);
    if (facts.length > 0) console.log(`    ${facts.join(', ')}`);
  }

  const problems = [...failures, ...checkAgreement(results, streamNames)];
  if (problems.length > 0) printUntrustworthy('the stores disagree or a store failed', problems);
  writeResults(target.repoRoot, 'ycsb', machine.startedAt, {
    machine,
    settings,
    summaries,
    results,
    targets: verdicts,
    problems,
  });
  console.log(`load average ${formatFixed(os.loadavg()[0]!, 2)} at the end`);
  return problems.length > 0 ? 1 : 0;
}

const options = parseArgumentsOrExit((argv) => parseOptions(argv, os.availableParallelism()));
if (options.help) {
  console.log(help);
} else if (options.child === 'readers') {
  await runReadersChild(options.dir!, options);
} else if (options.child !== undefined) {
  await runChild(options.child, options.dir!, options, options.workers);
} else if (options.scaling) {
  process.exitCode = await runScaling(options, target);
} else {
  process.exitCode = await runComparison(options);
}
