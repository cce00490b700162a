/**
 * bench:tx — transactions per second: bank transfers between two accounts of one lightning-db
 * partition ('local') and of two ('cross', a two-phase commit), and YCSB workload F's read-modify-write
 * of one zipfian-chosen account ('rmw'); lightning-db next to lmdb-js (transaction() and
 * transactionSync()) and better-sqlite3 db.transaction, same transactions, same run.
 *
 *   npm run bench:tx                       # 100,000 accounts, 5 s per phase, 3 rounds
 *   npm run bench:tx -- --quick            # 10,000 accounts, 1 s per phase, 1 round
 *   npm run bench:tx -- --stores lightning,lmdb --durability sync --concurrency 1,128
 *
 * Every row is one durability class ('sync': fsynced before the acknowledgement; 'nosync': written, not
 * synced) and one concurrency (transactions outstanding; 1 = each awaited before the next), the same for
 * every store in it; a store whose API runs one transaction at a time has only concurrency-1 rows.
 * Each (store, durability, concurrency) runs in a fresh child process with a fresh directory, once per
 * round. After each phase the child checks the balances (transfers keep the total, a read-modify-write
 * adds one), so a store that answers fast and wrong makes the run untrustworthy. Failed transactions
 * (retries exhausted) are counted and listed, not counted as throughput.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgumentsOrExit, parseListOf, parsePositiveInteger } from './lib/args.js';
import { childScriptArgs, runJsonChild } from './lib/child-process.js';
import {
  benchDataRoot,
  filesystemName,
  findRepoRoot,
  gitRevision,
  packageVersion,
} from './lib/environment.js';
import { formatCount, formatFixed } from './lib/format.js';
import { finishRun, withoutFirst } from './lib/results.js';
import { runStoreRounds } from './lib/rounds.js';
import { type ChildLine, type ChildOptions, type ResultLine, runChild } from './tx/child.js';
import {
  collectProblems,
  printDetails,
  printFailures,
  printRatios,
  printThroughput,
  summarize,
} from './tx/report.js';
import {
  type StoreName,
  storeConcurrent,
  storeLabels,
  storeNames,
  type TxDurability,
  txDurabilities,
} from './tx/stores.js';
import { parseVariant, type Variant, type VariantParts, variantLabel, variantOf } from './tx/variants.js';
import { lightningPartitions } from './tx/workload.js';

interface Options {
  accounts: number;
  transactions: number;
  seconds: number;
  concurrency: number[];
  durability: TxDurability[];
  seed: number;
  rounds: number;
  stores: StoreName[];
  child: VariantParts | undefined;
  dir: string | undefined;
}

const defaults = {
  accounts: 100_000,
  transactions: 200_000,
  seconds: 5,
  concurrency: [1, 64],
  durability: [...txDurabilities],
  seed: 0x5eed,
  rounds: 3,
};
const quick = { accounts: 10_000, transactions: 20_000, seconds: 1, rounds: 1 };

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = findRepoRoot(path.dirname(thisFile));

/** Every (store, durability, concurrency) the options ask for that the store can run. */
function variantsOf(options: Options): { variants: Variant[]; skipped: string[] } {
  const variants: Variant[] = [];
  const skipped: string[] = [];
  for (const durability of options.durability) {
    for (const concurrency of options.concurrency) {
      for (const store of options.stores) {
        if (concurrency > 1 && !storeConcurrent[store]) {
          skipped.push(
            `${storeLabels[store]} at ${concurrency} outstanding: its API runs one transaction at a time`,
          );
          continue;
        }
        variants.push(variantOf(store, durability, concurrency));
      }
    }
  }
  return { variants, skipped: [...new Set(skipped)] };
}

function childTimeoutMs(options: Options): number {
  // Load, three phases and their checks; generous, so only a hang trips it.
  return (120 + 3 * options.seconds * 4) * 1000;
}

async function runParent(options: Options): Promise<number> {
  const root = benchDataRoot(repoRoot);
  const meta = {
    ...options,
    child: undefined,
    dir: undefined,
    lightningPartitions,
    node: process.version,
    lmdb: packageVersion(repoRoot, 'lmdb'),
    betterSqlite3: packageVersion(repoRoot, 'better-sqlite3'),
    revision: gitRevision(repoRoot),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cpus: os.availableParallelism(),
    platform: `${process.platform} ${process.arch}`,
    dataRoot: root,
    dataFilesystem: filesystemName(root),
    loadAverage1m: os.loadavg()[0],
    startedAt: new Date().toISOString(),
  };
  console.log(
    'bench:tx — transactions/s: lightning-db vs lmdb-js transaction()/transactionSync() vs better-sqlite3 db.transaction',
  );
  console.log(
    `machine: ${meta.cpu}, ${meta.cpus} CPUs, ${meta.platform}, node ${meta.node}, lmdb-js ${meta.lmdb}, ` +
      `better-sqlite3 ${meta.betterSqlite3}, revision ${meta.revision}, load average ${formatFixed(meta.loadAverage1m ?? 0, 2)}`,
  );
  console.log(
    `${formatCount(options.accounts)} accounts; each phase ${options.seconds} s or ${formatCount(options.transactions)} transactions; ` +
      `durability ${options.durability.join(', ')}; transactions outstanding ${options.concurrency.join(', ')} (the same for every store in a row); ` +
      `lightning-db: ${lightningPartitions} partitions; seed ${options.seed}; ` +
      `data in ${root} (${meta.dataFilesystem})`,
  );
  console.log(
    `each store runs in a fresh child process, ${options.rounds} round(s), store order rotated per round\n`,
  );
  const { variants, skipped } = variantsOf(options);
  for (const line of skipped) console.log(`  no row: ${line}`);
  const labels = Object.fromEntries(variants.map((variant) => [variant, variantLabel(variant)])) as Record<
    Variant,
    string
  >;

  const { results, failures } = await runStoreRounds<Variant, ResultLine>({
    rounds: options.rounds,
    stores: variants,
    labels,
    tempParent: root,
    tempPrefix: 'lightning-bench-tx-',
    run: (variant, round, dir) =>
      runJsonChild<ChildLine, ResultLine>({
        args: [
          ...childScriptArgs(thisFile),
          '--child',
          variant,
          '--dir',
          dir,
          '--accounts',
          String(options.accounts),
          '--transactions',
          String(options.transactions),
          '--seconds',
          String(options.seconds),
          '--seed',
          String(options.seed),
        ],
        cwd: repoRoot,
        timeoutMs: childTimeoutMs(options),
        label: labels[variant],
        onLine: (line) => {
          if (line.kind === 'result') return line;
          console.log(
            `  round ${round}  ${labels[variant].padEnd(44)} ${line.phase.padEnd(5)} ${formatCount(line.perSecond).padStart(8)} tx/s ` +
              `${formatCount(line.perCpuSecond).padStart(8)} tx/CPU-s ` +
              `(${formatCount(line.committed)} in ${formatFixed(line.seconds, 2)} s` +
              `${line.failed > 0 ? `, ${line.failed} failed` : ''}` +
              `${line.counters === null ? '' : `, ${formatCount(line.counters.retries)} retries`})`,
          );
          return undefined;
        },
      }),
  });

  const summaries = summarize(results, variants);
  console.log('');
  printThroughput(summaries, options.rounds);
  printRatios(summaries);
  printDetails(summaries);
  printFailures(results);
  const problems = [...failures, ...collectProblems(results)];
  return finishRun(repoRoot, 'tx', meta.startedAt, 'a store failed or gave a wrong answer', problems, {
    meta,
    summaries: withoutFirst(summaries),
    results,
  });
}

function parseArguments(argv: string[]): Options {
  const options: Options = { ...defaults, stores: [...storeNames], child: undefined, dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case '--quick':
        Object.assign(options, quick);
        break;
      case '--accounts':
      case '--transactions':
      case '--seconds':
      case '--seed':
      case '--rounds':
        options[flag.slice(2) as 'accounts'] = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--concurrency':
        options.concurrency = (argv[++i] ?? '').split(',').map((text) => parsePositiveInteger(flag, text));
        break;
      case '--durability':
        options.durability = parseListOf('durability', txDurabilities, argv[++i]);
        break;
      case '--stores':
        options.stores = parseListOf('store', storeNames, argv[++i]);
        break;
      case '--child':
        options.child = parseVariant(argv[++i]);
        break;
      case '--dir':
        options.dir = argv[++i];
        break;
      default:
        throw new Error(
          `unknown argument ${flag}; usage: tx.js [--quick] [--accounts N] [--transactions N] [--seconds S] ` +
            `[--concurrency N,M] [--durability ${txDurabilities.join(',')}] [--seed S] [--rounds R] ` +
            `[--stores ${storeNames.join(',')}]`,
        );
    }
  }
  if (options.accounts < 100) throw new Error('--accounts must be at least 100');
  if (options.child !== undefined && options.dir === undefined) throw new Error('--child needs --dir');
  return options;
}

const options = parseArgumentsOrExit(parseArguments);
if (options.child === undefined) {
  process.exitCode = await runParent(options);
} else {
  const variant = options.child;
  const childOptions: ChildOptions = {
    ...options,
    store: variant.store,
    durability: variant.durability,
    concurrency: variant.concurrency,
    dir: options.dir!,
  };
  await runChild(childOptions);
}
