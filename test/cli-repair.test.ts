/**
 * `lightning-cli repair`, end to end in a child process against databases made with open() and
 * damaged here: without --yes it lists exactly what a cut drops and changes nothing (exit 2); with
 * --yes it drops exactly that, reports it, and the database opens again with the records before it.
 * A partition's sequence runs on in later runs' logs, so a cut in one log also cuts a later log where
 * the partition continues; what a checkpoint already holds is not lost.
 */
import { readdir, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { readManifest } from '../src/storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../src/storage/layout.js';
import {
  readWal,
  type WalDroppedRange,
  type WalLogRepair,
  type WalRecord,
} from '../src/storage/wal/index.js';
import { recordHeaderBytes } from '../src/storage/wal/wal-format.js';
import { runCli } from './support/cli-runner.js';
import { flipByte, useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-repair-');

const keyOf = (i: number) => `key:${String(i).padStart(4, '0')}`;

/**
 * A one-partition database opened twice, `keysPerOpen` puts each time, so it has two logs (every
 * open starts a new one) and key i is the record with LSN i + 1.
 */
async function createDatabase(keysPerOpen = 20): Promise<string> {
  const dir = join(await temporaryDirectory(), 'db');
  for (let run = 0; run < 2; run++) {
    const db = await open(dir, { partitions: 1, workers: 1 });
    for (let i = run * keysPerOpen; i < (run + 1) * keysPerOpen; i++) await db.put(keyOf(i), `value ${i}`);
    await db.close();
  }
  return dir;
}

async function recordsOf(dir: string, fromLsn = 1): Promise<WalRecord[]> {
  const records: WalRecord[] = [];
  await readWal(walDirectory(dir), {
    partitions: new Map([[0, fromLsn]]),
    onRecord: (record) => void records.push(record),
  });
  return records;
}

/** Every file of the logs with its bytes, to prove that a dry run changed nothing. */
async function snapshotLog(dir: string): Promise<Map<string, Buffer>> {
  const wal = walDirectory(dir);
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(wal)).sort()) files.set(name, await readFile(join(wal, name)));
  return files;
}

interface RepairJson {
  applied: boolean;
  exitCode: number;
  totals: {
    logs: number;
    partitions: number;
    files: number;
    filesDeleted: number;
    bytes: number;
    records: number;
  };
  logs: WalLogRepair[];
  lost: { partition: number; fromLsn: number }[];
  notRepaired: unknown[];
}

/**
 * Damages the record of key `damagedKey` in the first run's log and returns exactly what a cut
 * there must drop: the rest of that log, and the second run's log from its first record on (the
 * partition's sequence would otherwise continue past the records it lost).
 */
async function damageFirstLog(dir: string, damagedKey: number) {
  const records = await recordsOf(dir);
  const first = records.filter((record) => record.file === records[0]!.file);
  const second = records.filter((record) => record.file !== records[0]!.file);
  expect(first.length).toBeGreaterThan(damagedKey + 2);
  expect(second.length).toBeGreaterThan(0);
  const damaged = first[damagedKey]!;
  await flipByte(damaged.file, damaged.offset + recordHeaderBytes);
  const afterDamage = first.slice(damagedKey + 1);
  const cut: WalDroppedRange = {
    file: damaged.file,
    fromOffset: damaged.offset,
    toOffset: (await stat(damaged.file)).size,
    fileDeleted: false,
    records: afterDamage.length,
    partitions: [
      { partition: 0, records: afterDamage.length, firstLsn: damaged.lsn + 1, lastLsn: first.at(-1)!.lsn },
    ],
  };
  const continued: WalDroppedRange = {
    file: second[0]!.file,
    fromOffset: second[0]!.offset,
    toOffset: (await stat(second[0]!.file)).size,
    fileDeleted: false,
    records: second.length,
    partitions: [
      { partition: 0, records: second.length, firstLsn: second[0]!.lsn, lastLsn: second.at(-1)!.lsn },
    ],
  };
  const logs: WalLogRepair[] = [
    { log: { epoch: 1, worker: 0 }, dropped: [cut] },
    { log: { epoch: 2, worker: 0 }, dropped: [continued] },
  ];
  return { damaged, expected: [cut, continued], logs };
}

describe('lightning-cli repair', () => {
  it('refuses a database that is open in a live process: exit 5, nothing changed', async () => {
    const dir = await temporaryDirectory();
    const db = await open(dir, { partitions: 1, workers: 1 });
    try {
      await db.put('k', 'v');
      const before = await snapshotLog(dir);
      expect(before.size).toBe(1);
      const run = await runCli(['repair', '--yes', '-q', dir]);
      expect(run.code).toBe(5);
      expect(run.stderr).toContain('ERR_LOCKED');
      expect(await snapshotLog(dir)).toEqual(before);
    } finally {
      await db.close();
    }
  });

  it('without --yes lists what it would drop, changes nothing and exits 2', async () => {
    const dir = await createDatabase();
    const { damaged, expected, logs } = await damageFirstLog(dir, 7);
    const before = await snapshotLog(dir);

    const run = await runCli(['repair', '-q', dir]);
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('A repair would drop:');
    expect(run.stdout).toContain('log of run 1, worker 0:');
    expect(run.stdout).toContain('log of run 2, worker 0:');
    expect(run.stdout).toContain(
      `partition 0000: loses LSNs from ${damaged.lsn} on; its log continues at LSN ${damaged.lsn}`,
    );
    for (const range of expected) {
      const span = range.partitions[0]!;
      expect(run.stdout).toMatch(
        new RegExp(
          `${range.file}\\s+truncated: bytes ${range.fromOffset} to ${range.toOffset}\\s+${range.toOffset - range.fromOffset} bytes\\s+${range.records} verified record\\(s\\): partition 0000 LSNs ${span.firstLsn}-${span.lastLsn}`,
        ),
      );
    }
    expect(run.stdout).toContain('Nothing was changed. Run again with --yes');

    const json = await runCli(['repair', '--json', '-q', dir]);
    expect(json.code).toBe(2);
    const plan = JSON.parse(json.stdout) as RepairJson;
    expect(plan.applied).toBe(false);
    expect(plan.logs).toEqual(logs);
    expect(plan.lost).toEqual([{ partition: 0, fromLsn: damaged.lsn }]);
    expect(await snapshotLog(dir)).toEqual(before);
  });

  it('with --yes drops exactly what it listed, reports it, and open() then succeeds', async () => {
    const dir = await createDatabase();
    const { damaged, expected, logs } = await damageFirstLog(dir, 7);
    await expect(open(dir, { partitions: 1, workers: 1 })).rejects.toThrow(/ERR_CORRUPTION/);

    const run = await runCli(['repair', '--yes', '--json', dir]);
    expect(run.code).toBe(0);
    // After the cut the whole database is verified again.
    expect(run.stderr).toContain('repair: verify again: [1/1] partition 0000');
    const result = JSON.parse(run.stdout) as RepairJson;
    expect(result).toMatchObject({ applied: true, exitCode: 0, changedSincePlan: false, notRepaired: [] });
    expect(result.logs).toEqual(logs);
    expect(result.totals).toEqual({
      logs: 2,
      partitions: 1,
      files: 2,
      filesDeleted: 0,
      bytes: expected.reduce((sum, range) => sum + range.toOffset - range.fromOffset, 0),
      records: expected[0]!.records + expected[1]!.records,
    });
    expect((await stat(damaged.file)).size).toBe(damaged.offset);
    expect((await stat(expected[1]!.file)).size).toBe(expected[1]!.fromOffset);

    const verify = await runCli(['verify', '-q', dir]);
    expect(verify.code).toBe(0);
    const db = await open(dir, { workers: 1 });
    try {
      // Key i was LSN i + 1: everything before the damaged record survives, nothing from it on.
      const kept = damaged.lsn - 1;
      for (let i = 0; i < 40; i++)
        expect(db.getString(keyOf(i)), keyOf(i)).toBe(i < kept ? `value ${i}` : undefined);
      await db.put('after-repair', 'yes');
    } finally {
      await db.close();
    }
    expect((await runCli(['verify', '-q', dir])).code).toBe(0);
  });

  it('prints the drops as text with --yes', async () => {
    const dir = await createDatabase(10);
    const { expected } = await damageFirstLog(dir, 3);
    const run = await runCli(['repair', '--yes', '-q', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Dropped:');
    for (const range of expected) expect(run.stdout).toContain(range.file);
    expect(run.stdout).toContain('Repaired.');
  });

  it('a torn tail needs --yes too, and the cut drops no verified record', async () => {
    const dir = await createDatabase(10);
    const records = await recordsOf(dir);
    const last = records.at(-1)!;
    await truncate(last.file, last.offset + 9);

    const dry = await runCli(['repair', '-q', dir]);
    expect(dry.code).toBe(2);
    expect(dry.stdout).toContain('no partition loses a record it needs (only torn or damaged writes go)');
    const run = await runCli(['repair', '--yes', '--json', '-q', dir]);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as RepairJson;
    expect(result.lost).toEqual([]);
    expect(result.logs.map((log) => log.dropped)).toEqual([
      [
        {
          file: last.file,
          fromOffset: last.offset,
          toOffset: last.offset + 9,
          fileDeleted: false,
          records: 0,
          partitions: [],
        },
      ],
    ]);
  });

  it('loses only what a checkpoint does not hold, and reports a damaged checkpoint as not repaired (exit 4)', async () => {
    const dir = join(await temporaryDirectory(), 'db');
    for (let run = 0; run < 2; run++) {
      const db = await open(dir, { partitions: 1, workers: 1 });
      for (let i = 0; i < 20; i++) await db.put(keyOf(run * 20 + i), `value ${i}`);
      if (run === 1) {
        await db.checkpoint();
        for (let i = 0; i < 5; i++) await db.put(`after:${i}`, 'x');
      }
      await db.close();
    }
    const manifest = await readManifest(partitionDirectory(dir, 0));
    const { startLsn, file } = manifest!.checkpoints[0]!;
    const records = await recordsOf(dir, Number(startLsn));
    // The checkpoint removed the first run's log; the second run's holds LSNs below and past it.
    const all: WalRecord[] = [];
    await readWal(walDirectory(dir), {
      partitions: new Map([[0, 21]]),
      onRecord: (record) => void all.push(record),
    });
    expect(all[0]!.lsn).toBe(21);
    expect(records.length).toBe(5);
    // Damage a record the checkpoint already holds: only the records past the checkpoint are lost.
    const covered = all.find((record) => BigInt(record.lsn) < startLsn - 2n)!;
    await flipByte(covered.file, covered.offset + recordHeaderBytes);
    const before = await snapshotLog(dir);
    const dry = await runCli(['repair', '--json', '-q', dir]);
    expect(dry.code).toBe(2);
    expect((JSON.parse(dry.stdout) as RepairJson).lost).toEqual([
      { partition: 0, fromLsn: Number(startLsn) },
    ]);
    expect(await snapshotLog(dir)).toEqual(before);
    const repaired = await runCli(['repair', '--yes', '-q', dir]);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain(`partition 0000: loses LSNs from ${startLsn} on`);
    const db = await open(dir, { workers: 1 });
    try {
      for (let i = 0; i < 40; i++) expect(db.getString(keyOf(i)), keyOf(i)).toBe(`value ${i % 20}`);
      for (let i = 0; i < 5; i++) expect(db.getString(`after:${i}`)).toBeUndefined();
    } finally {
      await db.close();
    }

    const restored = await snapshotLog(dir);
    const checkpointFile = join(partitionDirectory(dir, 0), file);
    await flipByte(checkpointFile, Math.floor((await stat(checkpointFile)).size / 2));
    const run = await runCli(['repair', '--yes', '-q', dir]);
    expect(run.code).toBe(4);
    expect(run.stdout).toContain('no write-ahead log needs a cut');
    expect(run.stdout).toContain(`NOT REPAIRED (checkpoint): ${checkpointFile}`);
    expect(await snapshotLog(dir)).toEqual(restored);
  });

  it('on a clean database reports nothing to do and exits 0', async () => {
    const dir = await createDatabase(5);
    const before = await snapshotLog(dir);
    const run = await runCli(['repair', '--yes', '-q', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('no write-ahead log needs a cut');
    expect(await snapshotLog(dir)).toEqual(before);
  });

  it('exits 3 without a database and 2 on bad arguments', async () => {
    const missing = join(await temporaryDirectory(), 'missing');
    const run = await runCli(['repair', '--yes', missing]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`no database at ${missing}: it does not exist`);
    for (const args of [['repair'], ['repair', '--yes=please', missing], ['repair', '--force', missing]]) {
      const bad = await runCli(args);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stdout, args.join(' ')).toBe('');
    }
  });

  it('--help says what is dropped, that --yes is needed, and the exit codes', async () => {
    const run = await runCli(['repair', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: lightning-cli repair [options] <directory>');
    expect(run.stdout).toContain('--yes');
    expect(run.stdout).toContain('--json');
    expect(run.stdout).toContain('Without --yes nothing changes');
    expect(run.stdout).toMatch(/Exit codes:\n\s+0 .*\n\s+1 .*\n\s+2 .*\n\s+3 .*\n\s+4 /);
  });
});
