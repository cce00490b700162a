/** The YCSB suite's command line. */
import { parseListOf, parseOneOf, parsePositiveInteger } from '../lib/args.js';
import { formatCount } from '../lib/format.js';
import type { RunSettings } from './child.js';
import {
  defaultStoreNames,
  framesPerPartitionMin,
  recordOverheadBytes,
  type StoreName,
  storeNames,
} from './stores.js';
import { type Distribution, workloadNames } from './workloads.js';

export const recordsDefault = 1_000_000;
/** Per workload: long enough for zipfian hot sets and several checkpoints of the write-ahead log. */
export const operationsDefault = 300_000;
export const valueSizeDefault = 100;
/** Outstanding operations per window; see bench/README.md for why this size. */
export const concurrencyDefault = 1000;
export const seedDefault = 0x5eed;
/** lightning-paged's memoryMaxBytes as a fraction of the loaded data's estimated size. */
export const memoryFractionDefault = 0.1;
/** --quick: the whole suite, every store, in well under a minute (CI smoke, `lightning-cli bench`). */
export const recordsQuick = 20_000;
/** Gets per reader thread in --scaling: about a second of work per thread, long enough to see through noise. */
export const readerGetsDefault = 1_000_000;
export const operationsQuick = 10_000;

export interface Options extends RunSettings {
  stores: StoreName[];
  /** Rounds of the comparison; the store order rotates each round, the tables show the median round. */
  rounds: number;
  /** --scaling: lightning-db with W = 1..workersMax owner workers, and 1..readersMax reader threads. */
  scaling: boolean;
  workersMax: number;
  readersMax: number;
  /** Synchronous gets each reader thread does in --scaling. */
  readerGets: number;
  /** Set in a child: the store to run (or 'readers' for the reader-thread scaling child). */
  child: StoreName | 'readers' | undefined;
  dir: string | undefined;
  /** lightning-db owner workers for a child; undefined = the engine's default. */
  workers: number | undefined;
  /** --help: print the help and run nothing. */
  help: boolean;
}

export const usage =
  'usage: ycsb.js [--quick] [--records N] [--operations N] [--value-size BYTES] [--concurrency N] ' +
  `[--workloads ${workloadNames.join(',')}] [--stores ${storeNames.join(',')}] [--rounds R] [--seed S] ` +
  '[--distribution zipfian|uniform] [--memory-fraction F] [--scaling [--workers-max W] [--readers N] [--reader-gets N]]';

export const help = `${usage}

YCSB workloads (load, then A-F in order) against lightning-db and its peers, each store in a fresh
child process; see bench/README.md.

  --quick              ${formatCount(recordsQuick)} records, ${formatCount(operationsQuick)} operations per workload (unless given)
  --records N          records loaded (default ${formatCount(recordsDefault)})
  --operations N       operations per workload (default ${formatCount(operationsDefault)})
  --value-size BYTES   value size (default ${valueSizeDefault})
  --concurrency N      operations per window: issued together, then awaited (default ${concurrencyDefault})
  --workloads LIST     workloads to run after the load (default ${workloadNames.join(',')})
  --stores LIST        stores to run (default ${defaultStoreNames.join(',')}; also lightning-paged)
  --rounds R           run every store R times, order rotated; tables show the median round (default 1)
  --seed S             seed of every generator (default ${seedDefault})
  --distribution D     zipfian (default) or uniform keys for A, B, C, E, F (D stays 'latest')
  --memory-fraction F  lightning-paged: memoryMaxBytes = F × records × (key + value + ${recordOverheadBytes} bytes),
                       at least ${framesPerPartitionMin} pages per partition (default ${memoryFractionDefault})
  --scaling            lightning-db only: W = 1..--workers-max owner workers (default: CPUs), then
                       1..--readers attached reader threads (default: CPUs), each doing
                       --reader-gets synchronous gets (default ${formatCount(readerGetsDefault)}): workload C
`;

const distributions: readonly Distribution[] = ['zipfian', 'uniform'];

export function parseOptions(argv: string[], cores: number): Options {
  const options: Options = {
    records: recordsDefault,
    operations: operationsDefault,
    valueSize: valueSizeDefault,
    concurrency: concurrencyDefault,
    workloads: [...workloadNames],
    seed: seedDefault,
    distribution: undefined,
    memoryFraction: memoryFractionDefault,
    stores: [...defaultStoreNames],
    rounds: 1,
    scaling: false,
    workersMax: cores,
    readersMax: cores,
    readerGets: readerGetsDefault,
    child: undefined,
    dir: undefined,
    workers: undefined,
    help: false,
  };
  let recordsSet = false;
  let operationsSet = false;
  let readerGetsSet = false;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--help':
      case '-h':
        options.help = true;
        break;
      case '--quick':
        quick = true;
        break;
      case '--records':
        options.records = parsePositiveInteger(flag, value());
        recordsSet = true;
        break;
      case '--operations':
        options.operations = parsePositiveInteger(flag, value());
        operationsSet = true;
        break;
      case '--value-size':
        options.valueSize = parsePositiveInteger(flag, value());
        break;
      case '--concurrency':
        options.concurrency = parsePositiveInteger(flag, value());
        break;
      case '--workloads':
        options.workloads = parseListOf('workload', workloadNames, value()?.toUpperCase());
        break;
      case '--stores':
        options.stores = parseListOf('store', storeNames, value());
        break;
      case '--rounds':
        options.rounds = parsePositiveInteger(flag, value());
        break;
      case '--seed':
        options.seed = parsePositiveInteger(flag, value());
        break;
      case '--distribution':
        options.distribution = parseOneOf('distribution', distributions, value());
        break;
      case '--memory-fraction':
        options.memoryFraction = parsePositiveNumber(flag, value());
        break;
      case '--scaling':
        options.scaling = true;
        break;
      case '--workers-max':
        options.workersMax = parsePositiveInteger(flag, value());
        break;
      case '--readers':
        options.readersMax = parsePositiveInteger(flag, value());
        break;
      case '--reader-gets':
        options.readerGets = parsePositiveInteger(flag, value());
        readerGetsSet = true;
        break;
      case '--child': {
        const name = value();
        options.child = name === 'readers' ? 'readers' : parseOneOf('store', storeNames, name);
        break;
      }
      case '--dir':
        options.dir = value();
        break;
      case '--workers':
        options.workers = parsePositiveInteger(flag, value());
        break;
      default:
        throw new Error(`unknown argument ${flag}; ${usage}`);
    }
  }
  if (quick) {
    if (!recordsSet) options.records = recordsQuick;
    if (!operationsSet) options.operations = operationsQuick;
    if (!readerGetsSet) options.readerGets = operationsQuick;
  }
  if (options.records >= 2 ** 31) throw new Error('--records must be below 2^31');
  if (options.child !== undefined && options.dir === undefined) throw new Error('--child needs --dir');
  return options;
}

function parsePositiveNumber(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${flag} needs a positive number, got ${text ?? 'nothing'}`);
  }
  return value;
}

/** The flags that make a child run the same streams as its parent. */
export function settingsArguments(settings: RunSettings): string[] {
  const args = [
    '--records',
    String(settings.records),
    '--operations',
    String(settings.operations),
    '--value-size',
    String(settings.valueSize),
    '--concurrency',
    String(settings.concurrency),
    '--workloads',
    settings.workloads.join(','),
    '--seed',
    String(settings.seed),
    '--memory-fraction',
    String(settings.memoryFraction),
  ];
  if (settings.distribution !== undefined) args.push('--distribution', settings.distribution);
  return args;
}
