/**
 * The maintenance commands of `lightning-cli` (stats, checkpoint, bench), what every command does with
 * a damaged database (exit 4), and every command's --help, end to end in a child process.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { walDirectory } from '../src/storage/layout.js';
import { recordHeaderBytes } from '../src/storage/wal/wal-format.js';
import { databaseFactory } from './support/cli-databases.js';
import { runCli, runCliEach } from './support/cli-runner.js';
import { flipByte, readLog, useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-maintenance-');

const createDatabase = databaseFactory(temporaryDirectory, 'db');

describe('lightning-cli on a damaged database', () => {
  it('exits 4 naming the damaged file, and points at verify', async () => {
    const dir = join(await temporaryDirectory(), 'db');
    // Two opens: two log segments, so damage in the first is followed by valid records, not a torn tail.
    for (let run = 0; run < 2; run++) {
      const db = await open(dir, { partitions: 1, workers: 1 });
      for (let i = 0; i < 10; i++) await db.put(`k${run}:${i}`, 'v');
      await db.close();
    }
    const { records } = await readLog(walDirectory(dir), 0);
    const damaged = records[3]!;
    await flipByte(damaged.file, damaged.offset + recordHeaderBytes);
    for (const args of [
      ['get', dir, 'k0:0'],
      ['scan', dir],
    ]) {
      const run = await runCli(args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(4);
      expect(run.stderr).toContain('ERR_CORRUPTION');
      expect(run.stderr).toContain(`${damaged.file} at byte ${damaged.offset}`);
      expect(run.stderr).toContain(`"lightning-cli verify ${dir}" checks every file`);
      expect(run.stdout).toBe('');
    }
    expect((await runCli(['get', '--help'])).stdout).toContain(
      '4  the database is corrupt (see: lightning-cli verify)',
    );
  });
});

describe('lightning-cli stats, checkpoint, bench', () => {
  it('stats prints entries per partition as a table and as JSON', async () => {
    const dir = await createDatabase(
      Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v'.repeat(i)] as [string, string]),
    );
    const text = await runCli(['stats', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`database ${dir}: 4 partitions, 50 entries`);
    expect(text.stdout).toMatch(/partition\s+entries\s+height/);
    expect(text.stdout).toMatch(/\ntotal\s+50\s/);
    const json = JSON.parse((await runCli(['stats', dir, '--json'])).stdout);
    expect(json).toMatchObject({ command: 'stats', path: dir, partitions: 4, entries: 50 });
    expect(json.partitionStats).toHaveLength(4);
    expect(json.partitionStats.reduce((sum: number, p: { entries: number }) => sum + p.entries, 0)).toBe(50);
    expect(json.partitionStats.every((p: { walBytes: number }) => p.walBytes > 0)).toBe(true);
  });

  it("checkpoint writes every partition's checkpoint and the data survives it", async () => {
    const dir = await createDatabase(
      Array.from({ length: 40 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]),
    );
    const run = await runCli(['checkpoint', dir, '--json']);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { partitions: { partition: number; entries: number }[] };
    expect(result.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    expect(result.partitions.reduce((sum, p) => sum + p.entries, 0)).toBe(40);
    for (let partition = 0; partition < 4; partition++) {
      const files = await readdir(join(dir, 'partitions', String(partition).padStart(4, '0')));
      expect(files.some((name) => name.endsWith('.ckp'))).toBe(true);
    }
    const text = await runCli(['checkpoint', dir]);
    expect(text.stdout).toContain(`checkpointed ${dir}: 4 partition(s), 40 entries`);
    const stats = JSON.parse((await runCli(['stats', dir, '--json'])).stdout);
    expect(stats.recovery.checkpointEntries).toBe(40);
    expect((await runCli(['get', dir, 'k39'])).stdout).toBe('v39\n');
  });

  it('bench runs the benchmark script with --quick and the arguments, and exits with its code', async () => {
    const scratch = await temporaryDirectory();
    const script = join(scratch, 'fake-bench.mjs');
    await writeFile(script, 'console.log(JSON.stringify(process.argv.slice(2))); process.exitCode = 3;\n');
    const run = await runCli(['bench', '--', '--workload', 'a'], { env: { LIGHTNING_BENCH_SCRIPT: script } });
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toEqual(['--quick', '--workload', 'a']);

    const absent = join(scratch, 'absent.js');
    const missing = await runCli(['bench'], { env: { LIGHTNING_BENCH_SCRIPT: absent } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`the benchmark is not installed: ${absent} does not exist`);
  });

  it('--help of every command shows its usage, examples and exit codes', async () => {
    const usages: Record<string, string> = {
      get: 'get [options] <directory> <key>',
      put: 'put [options] <directory> <key> [value]',
      del: 'del [options] <directory> <key>',
      scan: 'scan [options] <directory>',
      stats: 'stats [options] <directory>',
      load: 'load [options] <directory> <file>',
      dump: 'dump [options] <directory> [file]',
      checkpoint: 'checkpoint [options] <directory>',
      bench: 'bench [options] [args...]',
    };
    const runs = await runCliEach(Object.keys(usages).map((command) => [command, '--help']));
    for (const [index, [command, usage]] of Object.entries(usages).entries()) {
      const run = runs[index]!;
      expect(run.code, command).toBe(0);
      expect(run.stdout, command).toContain(`Usage: lightning-cli ${usage}`);
      expect(run.stdout, command).toContain(`Examples:\n  $ lightning-cli ${command}`);
      const exitCodes =
        command === 'bench'
          ? /Exit codes:\n\s+0 .*\n\s+1 /
          : /Exit codes:\n\s+0 .*\n\s+1 .*\n\s+2 .*\n\s+3 .*/;
      expect(run.stdout, command).toMatch(exitCodes);
    }
    const top = await runCli(['--help']);
    for (const command of Object.keys(usages)) expect(top.stdout).toMatch(new RegExp(`\\n  ${command} `));
    expect(top.stdout).toContain('6  not found');
  });
});
