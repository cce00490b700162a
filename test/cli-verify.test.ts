/**
 * `lightning-cli verify`, end to end: the CLI runs in a child process, as an operator runs it, against
 * databases made with open() and then damaged here. Checks the summary (per log and per partition),
 * that damage is named by file and byte offset with exit code 4, that a partition's missing records
 * are named, that a torn tail is a note with exit 0, that the per-partition log layout of an earlier
 * version is named with what to do, and the usage errors.
 */
import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { readManifest, resetDurableMark } from '../src/storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../src/storage/layout.js';
import { readWal, type WalRecord } from '../src/storage/wal/index.js';
import { recordHeaderBytes } from '../src/storage/wal/wal-format.js';
import { type CliRun, runCli } from './support/cli-runner.js';
import { flipByte, segmentPaths, useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-verify-');

const partitions = 2;

/** A database of `partitions` partitions with `keys` puts, one WAL record each, in one open. */
async function createDatabase(keys = 40): Promise<string> {
  const dir = join(await temporaryDirectory(), 'db');
  const db = await open(dir, { partitions, workers: 1 });
  for (let i = 0; i < keys; i++) await db.put(`key:${String(i).padStart(4, '0')}`, `value ${i} `.repeat(4));
  await db.close();
  return dir;
}

/** Every record of every partition, in log order. */
async function allRecords(dir: string): Promise<WalRecord[]> {
  const records: WalRecord[] = [];
  const starts = new Map(Array.from({ length: partitions }, (_, partition) => [partition, 1]));
  await readWal(walDirectory(dir), { partitions: starts, onRecord: (record) => void records.push(record) });
  return records;
}

interface VerifyJson {
  ok: boolean;
  exitCode: number;
  totals: {
    partitions: number;
    logs: number;
    segments: number;
    records: number;
    bytes: number;
    tornTails: number;
  };
  findings: {
    partition: number | null;
    code: string;
    file: string;
    offset: number | null;
    message: string;
  }[];
  logs: { tornTail: { file: string; offset: number; bytesDropped: number } | null }[];
  partitions: {
    partition: number;
    firstLsn: number | null;
    records: number;
    bytes: number;
    checkpoint: { manifest: string; file: string | null; verified: boolean };
  }[];
}

async function verifyJson(dir: string): Promise<{ run: CliRun; report: VerifyJson }> {
  const run = await runCli(['verify', '--json', dir]);
  return { run, report: JSON.parse(run.stdout) as VerifyJson };
}

describe('lightning-cli verify', () => {
  it('exits 0 on a clean database and prints segments, records and bytes per log, records per partition, and totals', async () => {
    const dir = await createDatabase();
    const records = await allRecords(dir);
    expect(records.length).toBe(40);
    const [file] = await segmentPaths(walDirectory(dir));
    const bytes = (await stat(file!)).size;

    const run = await runCli(['verify', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`database ${dir}: ${partitions} partitions`);
    expect(run.stdout).toMatch(/log \(run\/worker\)\s+segments\s+records\s+bytes\s+status/);
    expect(run.stdout).toMatch(new RegExp(`^1/0\\s+1\\s+40\\s+${bytes}\\s+ok$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^total\\s+1\\s+40\\s+${bytes}`, 'm'));
    expect(run.stdout).toMatch(/partition\s+records\s+log bytes\s+LSNs/);
    for (let partition = 0; partition < partitions; partition++) {
      const count = records.filter((record) => record.partition === partition).length;
      expect(run.stdout).toMatch(new RegExp(`^000${partition}\\s+${count}\\s+\\d+\\s+1-${count}\\s`, 'm'));
    }
    expect(run.stdout).toContain('OK: 1 log(s) and 2 partition(s) verified, no corruption.');
    // stderr is not a terminal here: progress is one plain line per partition.
    expect(run.stderr).toContain('verify: [1/2] partition 0000\nverify: [2/2] partition 0001\n');

    const { run: jsonRun, report } = await verifyJson(dir);
    expect(jsonRun.code).toBe(0);
    expect(report).toMatchObject({ ok: true, exitCode: 0, findings: [] });
    expect(report.totals).toMatchObject({
      partitions,
      logs: 1,
      segments: 1,
      tornTails: 0,
      records: 40,
      bytes,
    });
    expect(report.partitions.map((p) => p.records).reduce((a, b) => a + b)).toBe(40);
  });

  it('exits 4 on a flipped byte in the middle of a segment, naming the file and the byte offset', async () => {
    const dir = await createDatabase();
    const records = await allRecords(dir);
    const damaged = records[Math.floor(records.length / 2)]!;
    await flipByte(damaged.file, damaged.offset + recordHeaderBytes);

    const run = await runCli(['verify', '--quiet', dir]);
    expect(run.code).toBe(4);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain(`CORRUPTION (log, wal): ${damaged.file} at byte ${damaged.offset}:`);
    expect(run.stdout).toMatch(/^1\/0\s.*CORRUPT$/m);
    expect(run.stdout).toContain('CORRUPTION FOUND');

    const { run: jsonRun, report } = await verifyJson(dir);
    expect(jsonRun.code).toBe(4);
    expect(report.ok).toBe(false);
    expect(report.findings).toEqual([
      expect.objectContaining({
        partition: null,
        code: 'ERR_CORRUPTION',
        file: damaged.file,
        offset: damaged.offset,
      }),
    ]);
  });

  // Three opens and a CLI run: allowed more than the default on a loaded machine.
  it("exits 4 naming the partition and the LSNs it lost when a run's log is gone", {
    timeout: 180_000,
  }, async () => {
    const dir = join(await temporaryDirectory(), 'db');
    for (let run = 0; run < 3; run++) {
      const db = await open(dir, { partitions, workers: 1 });
      for (let i = 0; i < 10; i++) await db.put(`key:${run}:${i}`, 'v');
      await db.close();
    }
    const paths = await segmentPaths(walDirectory(dir));
    const records = await allRecords(dir);
    const lost = new Set(
      records.filter((record) => record.file === paths[1]).map((record) => record.partition),
    );
    // Each partition that lost records is named at its next record, in the third run's log.
    const next = [...lost]
      .sort((a, b) => a - b)
      .map((partition) =>
        records.find((record) => record.file === paths[2] && record.partition === partition),
      )
      .filter((record) => record !== undefined);
    expect(next.length).toBeGreaterThan(0);
    await rm(paths[1]!);
    const { run, report } = await verifyJson(dir);
    expect(run.code).toBe(4);
    expect(report.findings).toEqual(
      next.map((record) =>
        expect.objectContaining({
          partition: record.partition,
          code: 'ERR_CORRUPTION',
          file: record.file,
          offset: record.offset,
        }),
      ),
    );
    next.forEach((record, i) => {
      expect(report.findings[i]!.message).toMatch(
        new RegExp(`partition ${record.partition}: records \\d+\\.\\.${record.lsn - 1} are missing`),
      );
    });
  });

  it('reports a torn tail as a note and exits 0, since recovery cuts it', async () => {
    const dir = await createDatabase();
    const last = (await allRecords(dir)).at(-1)!;
    await truncate(last.file, last.offset + 5);
    // A crash mid-write leaves a torn record and no closing durable mark past what came before it.
    await resetDurableMark(partitionDirectory(dir, last.partition), {
      lsn: BigInt(last.lsn - 1),
      log: null,
    });

    const run = await runCli(['verify', '-q', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `note: a log ends in a torn tail: ${last.file} at byte ${last.offset}, 5 bytes.`,
    );
    expect(run.stdout).toContain('ok (torn tail)');
    const { report } = await verifyJson(dir);
    expect(report.totals.tornTails).toBe(1);
    expect(report.logs[0]!.tornTail).toEqual({ file: last.file, offset: last.offset, bytesDropped: 5 });
  });

  it('names the per-partition log layout of an earlier version, and what to do', async () => {
    const dir = await createDatabase(4);
    await mkdir(join(partitionDirectory(dir, 0), 'wal'), { recursive: true });
    const run = await runCli(['verify', '-q', dir]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /OTHER FORMAT \(log, wal\): .*WAL format version 1.*lightning-cli dump.*lightning-cli load/,
    );
    const opened = await open(dir, { workers: 1 }).then(
      async (db) => {
        await db.close();
        return null;
      },
      (error: unknown) => error,
    );
    expect(opened).toMatchObject({ code: 'ERR_FORMAT_VERSION' });
    expect((opened as Error).message).toMatch(/lightning-cli dump/);
  });

  it('verifies each partition manifest and the checkpoint it names, and names a damaged one', async () => {
    const dir = join(await temporaryDirectory(), 'db');
    // Two opens, then a checkpoint: the log of the first open is covered and dropped, so the
    // partition's records in the logs no longer start at LSN 1.
    for (let run = 0; run < 2; run++) {
      const db = await open(dir, { partitions, workers: 1 });
      for (let i = 0; i < 20; i++) await db.put(`key:${run}:${i}`, `value ${i}`);
      if (run === 1) {
        await db.checkpoint();
        for (let i = 0; i < 5; i++) await db.put(`after:${i}`, `value ${i}`);
      }
      await db.close();
    }
    const manifest = await readManifest(partitionDirectory(dir, 0));
    const record = manifest!.checkpoints[0]!;
    const checkpointFile = join(partitionDirectory(dir, 0), record.file);

    const { run: clean, report: cleanReport } = await verifyJson(dir);
    expect(clean.code).toBe(0);
    expect(cleanReport.partitions[0]!.checkpoint).toMatchObject({
      manifest: 'ok',
      file: checkpointFile,
      verified: true,
    });
    expect(cleanReport.partitions[0]!.firstLsn).toBeGreaterThan(1);
    const text = await runCli(['verify', '-q', dir]);
    expect(text.stdout).toContain(`from LSN ${record.startLsn}, ${record.entries} entries`);

    await flipByte(checkpointFile, Math.floor((await stat(checkpointFile)).size / 2));
    const { run, report } = await verifyJson(dir);
    expect(run.code).toBe(4);
    expect(report.partitions[0]!.checkpoint).toMatchObject({ file: checkpointFile, verified: false });
    expect(report.findings).toEqual([
      expect.objectContaining({
        partition: 0,
        source: 'checkpoint',
        code: 'ERR_CORRUPTION',
        file: checkpointFile,
      }),
    ]);
    expect(report.findings[0]!.message).toContain(checkpointFile);
  });

  it('names a damaged partition manifest', async () => {
    const dir = await createDatabase(10);
    const db = await open(dir, { workers: 1 });
    await db.checkpoint();
    await db.close();
    const manifestFile = join(partitionDirectory(dir, 1), 'MANIFEST.json');
    await writeFile(
      manifestFile,
      (await readFile(manifestFile, 'utf8')).replace('"entries": ', '"entries": 1'),
    );
    const run = await runCli(['verify', '-q', dir]);
    expect(run.code).toBe(4);
    expect(run.stdout).toContain(`CORRUPTION (partition 0001, manifest): ${manifestFile}: checksum mismatch`);
    expect(run.stdout).toMatch(/^0001\s.*MANIFEST DAMAGED\s+CORRUPT$/m);
  });

  it('exits 4 when the metadata file is damaged', async () => {
    const dir = await createDatabase(4);
    const metadata = join(dir, 'LIGHTNING.json');
    await writeFile(
      metadata,
      (await readFile(metadata, 'utf8')).replace('"partitions": 2', '"partitions": 3'),
    );
    const run = await runCli(['verify', dir]);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`lightning-cli: ERR_CORRUPTION: ${metadata}: checksum mismatch`);
  });

  it('exits 3 with a clear message when there is no database', async () => {
    const parent = await temporaryDirectory();
    const missing = join(parent, 'nothing-here');
    const run = await runCli(['verify', missing]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`no database at ${missing}: it does not exist`);

    const empty = join(parent, 'empty');
    await mkdir(empty);
    const notDatabase = await runCli(['verify', empty]);
    expect(notDatabase.code).toBe(3);
    expect(notDatabase.stderr).toContain(`no database at ${empty}: it has no LIGHTNING.json`);
  });

  it('exits 2 on bad arguments', async () => {
    const dir = await createDatabase(4);
    for (const args of [
      ['verify'],
      ['verify', '--frobnicate', dir],
      ['verify', dir, 'extra'],
      ['verify', ''],
      ['frob'],
    ]) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout, args.join(' ')).toBe('');
      expect(run.stderr.length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  it('--help explains the command, the torn-tail rule and the exit codes', async () => {
    const run = await runCli(['verify', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: lightning-cli verify [options] <directory>');
    expect(run.stdout).toContain('--json');
    expect(run.stdout).toContain('verify reports it as a note and still exits 0');
    expect(run.stdout).toContain('one log per owner worker per run');
    expect(run.stdout).toMatch(/Exit codes:\n\s+0 .*\n\s+1 .*\n\s+2 .*\n\s+3 .*\n\s+4 /);

    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/verify \[options\] <directory>/);
    expect(top.stdout).toMatch(/repair \[options\] <directory>/);
  });
});
