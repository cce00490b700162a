/**
 * Backup, verify and restore times and CPU-seconds on a database of `--partitions` partitions and
 * `--records` records (16-byte keys, 100-byte random values). The database is written once; each
 * build named by `--roots` (this checkout first, then others, e.g. a checkout of an older commit,
 * each built) then opens it, backs it up, verifies the backup and restores it, `--rounds` times,
 * builds interleaved round by round. CPU-seconds are the whole process's (every thread, pool threads
 * included). Each line ends with the load average and the entry count the backup reported, so a
 * wrong fast answer shows; the medians over the rounds follow.
 *
 * `--modes auto,pool,inline` runs each build that has a piscina pool each of those ways in the same
 * round: `auto` as the engine chooses by itself, `pool` with the pool's thresholds at zero so that a
 * pool always runs, `inline` with them at infinity so that every task runs on the calling thread (a
 * build without the pool runs once, as `-`). Like for like: the same build, database and round.
 *
 *   npm run bench:backup -- [--records 1000000] [--partitions 16] [--rounds 1] [--modes auto]
 *     [--roots /other/checkout]
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgumentsOrExit, parsePositiveInteger } from './lib/args.js';
import { findRepoRoot } from './lib/environment.js';
import { randomRecords } from './lib/rng.js';
import { median, spreadPercent } from './lib/stats.js';

type Mode = 'auto' | 'pool' | 'inline';
const modeNames: readonly Mode[] = ['auto', 'pool', 'inline'];

interface Options {
  records: number;
  partitions: number;
  rounds: number;
  roots: string[];
  modes: Mode[];
}

/** The pool thresholds of a build with a pool (src/main/partition-tasks.ts), which `inline` raises. */
interface PoolThresholds {
  backupEntries: number;
  checkBytes: number;
}

interface EngineDatabase {
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  backup(dir: string): Promise<{ entries: number }>;
  close(): Promise<void>;
}
interface Engine {
  open(path: string, options?: { partitions?: number }): Promise<EngineDatabase>;
  verifyBackup(dir: string): Promise<{ entries: number }>;
  restore(dir: string, target: string): Promise<{ entries: number }>;
}

function parse(argv: string[]): Options {
  const here = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
  const options: Options = { records: 1_000_000, partitions: 16, rounds: 1, roots: [here], modes: ['auto'] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--records') options.records = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--partitions') options.partitions = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--rounds') options.rounds = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--roots') options.roots.push(...(argv[++i] ?? '').split(',').filter(Boolean));
    else if (flag === '--modes') options.modes = parseModes(argv[++i]);
    else {
      throw new Error(
        `unknown flag ${flag}; flags: --records N, --partitions N, --rounds N, --modes auto,pool,inline, --roots a,b`,
      );
    }
  }
  return options;
}

function parseModes(text: string | undefined): Mode[] {
  const modes = (text ?? '').split(',').filter(Boolean);
  if (modes.length === 0 || modes.some((mode) => !modeNames.includes(mode as Mode))) {
    throw new Error(`--modes takes auto, pool and inline (comma-separated), not ${text}`);
  }
  return [...new Set(modes)] as Mode[];
}

/** Wall milliseconds and process CPU-seconds of `work`. */
async function measured<T>(work: () => Promise<T>): Promise<{ value: T; ms: number; cpuSeconds: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = await work();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { value, ms, cpuSeconds: (used.user + used.system) / 1e6 };
}

async function main(): Promise<void> {
  const options = parseArgumentsOrExit(parse);
  const engines: Engine[] = [];
  const thresholds: (PoolThresholds | null)[] = [];
  for (const root of options.roots) {
    engines.push((await import(pathToFileURL(path.join(root, 'dist/src/index.js')).href)) as Engine);
    // The same module instance the engine uses (one URL, one instance), so raising its thresholds
    // takes every task to the calling thread.
    const tasksModule = path.join(root, 'dist/src/main/partition-tasks.js');
    thresholds.push(
      existsSync(tasksModule)
        ? ((await import(pathToFileURL(tasksModule).href)) as { pooledWorkMin: PoolThresholds }).pooledWorkMin
        : null,
    );
  }
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'lightning-backup-speed-'));
  try {
    const source = path.join(scratch, 'db');
    const loaded = await measured(async () => {
      const db = await engines[0]!.open(source, { partitions: options.partitions });
      const windowRecords = 10_000;
      const keyBytes = 16;
      const valueBytes = 100;
      for (let done = 0; done < options.records; done += windowRecords) {
        const count = Math.min(windowRecords, options.records - done);
        const records = randomRecords(count, keyBytes + valueBytes, 0xbac0 + done);
        const writes: Promise<void>[] = [];
        for (let i = 0; i < count; i++) {
          const record = records.subarray(i * (keyBytes + valueBytes), (i + 1) * (keyBytes + valueBytes));
          writes.push(db.put(record.subarray(0, keyBytes), record.subarray(keyBytes)));
        }
        await Promise.all(writes);
      }
      await db.close();
    });
    console.log(
      `backup-speed: ${options.records} records, ${options.partitions} partitions, node ${process.version}, ` +
        `${os.availableParallelism()} CPUs, load ${os.loadavg()[0]!.toFixed(1)}; loaded in ${(loaded.ms / 1000).toFixed(1)} s`,
    );
    const rows = new Map<string, { ms: number[]; cpuSeconds: number[] }>();
    for (let round = 0; round < options.rounds; round++) {
      for (const [b, engine] of engines.entries()) {
        const pool = thresholds[b];
        const modes: (Mode | '-')[] = pool === null ? ['-'] : options.modes;
        for (const mode of modes) {
          const name = `${options.roots[b]!} ${mode.padEnd(6)}`;
          const saved = pool === null ? null : { ...pool };
          if (pool && mode !== 'auto') {
            const threshold = mode === 'pool' ? 0 : Number.POSITIVE_INFINITY;
            Object.assign(pool, { backupEntries: threshold, checkBytes: threshold });
          }
          try {
            await runRound(engine, source, scratch, `${b}-${mode}-${round}`, (what, result) => {
              const key = `${name}  ${what}`;
              const row = rows.get(key) ?? { ms: [], cpuSeconds: [] };
              row.ms.push(result.ms);
              row.cpuSeconds.push(result.cpuSeconds);
              rows.set(key, row);
              console.log(
                `${name}  round ${round + 1}  ${what}  ${(result.ms / 1000).toFixed(2).padStart(7)} s  ` +
                  `${result.cpuSeconds.toFixed(2).padStart(7)} CPU-s  load ${os.loadavg()[0]!.toFixed(2)}  ` +
                  `${result.value.entries} entries`,
              );
            });
          } finally {
            if (pool && saved) Object.assign(pool, saved);
          }
        }
      }
    }
    console.log(`medians of ${options.rounds} round(s) (spread of wall times: (max - min) / median):`);
    for (const [key, row] of rows) {
      console.log(
        `${key}  ${(median(row.ms) / 1000).toFixed(2).padStart(7)} s  ` +
          `${median(row.cpuSeconds).toFixed(2).padStart(7)} CPU-s  spread ${spreadPercent(row.ms).toFixed(0)}%`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

type Measured = Awaited<ReturnType<typeof measured<{ entries: number }>>>;

/** One backup, verify and restore of `source`, each reported to `report` as it finishes. */
async function runRound(
  engine: Engine,
  source: string,
  scratch: string,
  tag: string,
  report: (what: 'backup ' | 'verify ' | 'restore', result: Measured) => void,
): Promise<void> {
  const backupDir = path.join(scratch, `backup-${tag}`);
  const target = path.join(scratch, `restored-${tag}`);
  try {
    const db = await engine.open(source);
    let backup: Measured;
    try {
      backup = await measured(() => db.backup(backupDir));
    } finally {
      await db.close();
    }
    report('backup ', backup);
    report('verify ', await measured(() => engine.verifyBackup(backupDir)));
    report('restore', await measured(() => engine.restore(backupDir, target)));
  } finally {
    rmSync(backupDir, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
}

await main();
