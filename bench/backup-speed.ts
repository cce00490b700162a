/**
 * Backup, verify and restore times and CPU-seconds on a database of `--partitions` partitions and
 * `--records` records (16-byte keys, 100-byte random values). The database is written once; each
 * build named by `--roots` (this checkout first, then others, e.g. a checkout of an older commit,
 * each built) then opens it, backs it up, verifies the backup and restores it, `--rounds` times,
 * builds interleaved round by round. CPU-seconds are the whole process's (every thread, pool threads
 * included). Each line ends with the entry count the backup reported, so a wrong fast answer shows.
 *
 *   npm run bench:backup -- [--records 1000000] [--partitions 16] [--rounds 1] [--roots /other/checkout]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgumentsOrExit, parsePositiveInteger } from './lib/args.js';
import { findRepoRoot } from './lib/environment.js';
import { randomRecords } from './lib/rng.js';

interface Options {
  records: number;
  partitions: number;
  rounds: number;
  roots: string[];
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
  const options: Options = { records: 1_000_000, partitions: 16, rounds: 1, roots: [here] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--records') options.records = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--partitions') options.partitions = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--rounds') options.rounds = parsePositiveInteger(flag, argv[++i]);
    else if (flag === '--roots') options.roots.push(...(argv[++i] ?? '').split(',').filter(Boolean));
    else throw new Error(`unknown flag ${flag}; flags: --records N, --partitions N, --rounds N, --roots a,b`);
  }
  return options;
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
  for (const root of options.roots) {
    engines.push((await import(pathToFileURL(path.join(root, 'dist/src/index.js')).href)) as Engine);
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
    for (let round = 0; round < options.rounds; round++) {
      for (const [b, engine] of engines.entries()) {
        const name = options.roots[b]!;
        const backupDir = path.join(scratch, `backup-${b}-${round}`);
        const db = await engine.open(source);
        let backup: Awaited<ReturnType<typeof measured<{ entries: number }>>>;
        try {
          backup = await measured(() => db.backup(backupDir));
        } finally {
          await db.close();
        }
        const verify = await measured(() => engine.verifyBackup(backupDir));
        const target = path.join(scratch, `restored-${b}-${round}`);
        const restore = await measured(() => engine.restore(backupDir, target));
        for (const [what, result] of [
          ['backup ', backup],
          ['verify ', verify],
          ['restore', restore],
        ] as const) {
          console.log(
            `${name}  round ${round + 1}  ${what}  ${(result.ms / 1000).toFixed(2).padStart(7)} s  ` +
              `${result.cpuSeconds.toFixed(2).padStart(7)} CPU-s  ${result.value.entries} entries`,
          );
        }
        rmSync(backupDir, { recursive: true, force: true });
        rmSync(target, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
