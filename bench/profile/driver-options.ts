/**
 * The profile driver's command line, shared by the driver and by `npm run profile`, which checks the
 * flags before it starts a profiler.
 */
import type { Durability } from '../../src/index.js';
import { parseOneOf, parsePositiveInteger } from '../lib/args.js';

export const profileWorkloads = ['load', 'read', 'update', 'scan', 'mixed'] as const;
export type ProfileWorkload = (typeof profileWorkloads)[number];
const durabilities: readonly Durability[] = ['sync', 'relaxed', 'none'];
/** --quick: small enough for a smoke run, long enough for a few hundred samples per thread. */
const quickRecords = 20_000;
const quickSeconds = 1;

export interface DriverOptions {
  workload: ProfileWorkload;
  records: number;
  seconds: number;
  workers: number | 'auto';
  durability: Durability;
  seed: number;
  /** Where to write the run's summary as JSON (for the profile report), if anywhere. */
  summary: string | undefined;
  /**
   * An empty directory for the database, which the caller removes afterwards (so deleting the files
   * is not part of the profile); by default a temp dir the driver removes itself.
   */
  dir: string | undefined;
}

export function parseDriverArguments(argv: string[]): DriverOptions {
  const options: DriverOptions = {
    workload: parseOneOf('workload', profileWorkloads, argv[0]),
    records: 100_000,
    seconds: 5,
    workers: 'auto',
    durability: 'sync',
    seed: 0x5eed,
    summary: undefined,
    dir: undefined,
  };
  for (let i = 1; i < argv.length; i += 2) {
    const flag = argv[i];
    if (flag === '--quick') {
      options.records = quickRecords;
      options.seconds = quickSeconds;
      i--;
      continue;
    }
    const value = argv[i + 1];
    if (flag === '--records') options.records = parsePositiveInteger(flag, value);
    else if (flag === '--seconds') options.seconds = parsePositiveInteger(flag, value);
    else if (flag === '--workers')
      options.workers = value === 'auto' ? 'auto' : parsePositiveInteger(flag, value);
    else if (flag === '--durability') options.durability = parseOneOf('durability', durabilities, value);
    else if (flag === '--seed') options.seed = parsePositiveInteger(flag, value);
    else if (flag === '--summary' && value !== undefined) options.summary = value;
    else if (flag === '--dir' && value !== undefined) options.dir = value;
    else
      throw new Error(
        `unknown flag ${flag}; flags: --records, --seconds, --workers, --durability, --seed, --quick`,
      );
  }
  return options;
}
