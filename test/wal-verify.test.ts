/**
 * verifyWal reports every log's segments and records, each partition's records across the logs, and
 * every problem (file and offset) without throwing; repairWal cuts each damaged log at the end of its
 * valid prefix, cuts later logs where a partition's sequence would continue past records it lost,
 * says exactly what it dropped, and leaves logs that read back as precisely the records before the
 * cuts and that a new run continues.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { isLightningError } from '../src/shared-memory/index.js';
import {
  PartitionLog,
  readWal,
  recordTypeOperation,
  repairWal,
  verifyWal,
  type WalRecord,
  WalWriter,
} from '../src/storage/wal/index.js';
import { kHeaderChecksum, kHeaderFormatVersion, segmentHeaderBytes } from '../src/storage/wal/wal-format.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { flipByte, openPartitionLog, readLog, useTemporaryDirectories } from './support/wal-fixtures.js';

// Kept signed (seedFromEnv returns it unsigned): the test names have always printed it that way.
const seed = seedFromEnv(0x7e57_0c0d) | 0;

const partition = 9;
const temporaryDirectory = useTemporaryDirectories('lightning-wal-verify-');

async function buildLog(): Promise<{ dir: string; records: WalRecord[]; paths: string[] }> {
  const dir = await temporaryDirectory();
  const random = mulberry32(seed);
  const { writer, log } = await openPartitionLog(dir, partition, 1, { segmentTargetBytes: 4096 });
  for (let batch = 0; batch < 90; batch++) {
    const payloads = Array.from({ length: 1 + (random() % 4) }, () => Buffer.alloc(random() % 250, batch));
    log.append(recordTypeOperation, payloads);
    await writer.flush(batch % 5 === 0);
  }
  // Closing flushes without rotating, so the newest segment holds at least these three records.
  log.append(recordTypeOperation, [Buffer.from('x'), Buffer.from('y'), Buffer.from('z')]);
  await writer.close();
  const { records } = await readAll(dir);
  const paths = (await readdir(dir)).sort().map((name) => join(dir, name));
  expect(paths.length).toBeGreaterThanOrEqual(5);
  return { dir, records, paths };
}

const readAll = (dir: string) => readLog(dir, partition);

describe('verifyWal', () => {
  it(`reports clean logs in full (seed ${seed})`, async () => {
    const { dir, records, paths } = await buildLog();
    const report = await verifyWal(dir);
    let bytes = 0;
    for (const path of paths) bytes += (await stat(path)).size;
    expect(report).toMatchObject({
      segments: paths.length,
      records: records.length,
      bytes,
      tornTails: [],
      problems: [],
      ok: true,
    });
    expect(report.logs.length).toBe(1);
    expect(report.logs[0]!.cut).toBeNull();
    expect(report.logs[0]!.segments.map((segment) => segment.file)).toEqual(paths);
    expect(report.logs[0]!.segments.reduce((sum, segment) => sum + segment.records, 0)).toBe(records.length);
    expect(report.partitions).toMatchObject([
      { partition, records: records.length, firstLsn: 1, lastLsn: records.length, logs: 1 },
    ]);
    expect(await verifyWal(join(dir, 'absent'))).toMatchObject({ logs: [], records: 0, ok: true });
  });

  it('reports every problem with its file and offset, goes on past them, and never throws', async () => {
    const { dir, records, paths } = await buildLog();
    const damaged = [records.find((record) => record.file === paths[1])!, records.at(-2)!];
    expect(damaged[1]!.file).toBe(paths.at(-1));
    for (const record of damaged) await flipByte(record.file, record.offset + 12, 0xff); // Its LSN: always checksummed.
    await rm(paths[3]!);
    const report = await verifyWal(dir);
    expect(report.ok).toBe(false);
    expect(report.problems.map(({ file, offset }) => ({ file, offset }))).toEqual([
      { file: damaged[0]!.file, offset: damaged[0]!.offset },
      { file: paths[4]!, offset: 0 },
      { file: damaged[1]!.file, offset: damaged[1]!.offset },
    ]);
    expect(report.problems[1]!.message).toMatch(/segments 3\.\.3 of the log of run 1, worker 0 are missing/);
    const missing = records.filter((record) => record.file === paths[3]).length;
    expect(report.records).toBe(records.length - 2 - missing);
    expect(report.logs[0]!.cut).toEqual({
      segmentIndex: 1,
      file: damaged[0]!.file,
      offset: damaged[0]!.offset,
    });
  });

  it('reports a torn tail separately from problems', async () => {
    const { dir, records } = await buildLog();
    const last = records.at(-1)!;
    const bytes = await readFile(last.file);
    await writeFile(last.file, bytes.subarray(0, last.offset + 5));
    const report = await verifyWal(dir);
    expect(report.ok).toBe(true);
    expect(report.tornTails).toEqual([{ file: last.file, offset: last.offset, bytesDropped: 5 }]);
    expect(report.logs[0]!.cut).toMatchObject({ file: last.file, offset: last.offset });
  });

  it("checks each partition's sequence across logs from its replay start", async () => {
    const dir = await temporaryDirectory();
    for (const [epoch, from] of [
      [1, 1],
      [3, 11],
    ] as const) {
      const { writer, log } = await openPartitionLog(dir, partition, from, { epoch });
      log.append(
        recordTypeOperation,
        Array.from({ length: 5 }, () => Buffer.from('v')),
      );
      await writer.close();
    }
    // LSNs 6..10 were never written (a run whose log is gone): a gap, unless replay starts past it.
    const report = await verifyWal(dir);
    expect(report.problems.map((problem) => [problem.partition, problem.offset])).toEqual([[partition, 32]]);
    expect(report.problems[0]!.message).toMatch(/partition 9: records 6\.\.10 are missing/);
    expect(report.logs[1]!.cut).toMatchObject({ segmentIndex: 0, offset: 32 });
    expect((await verifyWal(dir, { replayStarts: new Map([[partition, 11]]) })).ok).toBe(true);
    expect((await verifyWal(dir, { replayStarts: new Map([[partition, 3]]) })).ok).toBe(false);
  });
});

describe('repairWal', () => {
  it('cuts at the first damaged record, drops later segments, and says exactly what went', async () => {
    const { dir, records, paths } = await buildLog();
    const inSecond = records.filter((record) => record.file === paths[1]);
    const bad = inSecond[1]!;
    const size = (await stat(bad.file)).size;
    const sizes = await Promise.all(paths.map(async (path) => (await stat(path)).size));
    await flipByte(bad.file, bad.offset + 12, 0xff); // Its LSN, which the checksum covers.
    await expect(readAll(dir)).rejects.toSatisfy((error) => isLightningError(error, 'ERR_CORRUPTION'));

    const { logs, lost } = await repairWal(dir);
    const lsnsIn = (path: string) =>
      records.filter((record) => record.file === path).map((record) => record.lsn);
    const spanOf = (lsns: number[]) =>
      lsns.length === 0
        ? []
        : [{ partition, records: lsns.length, firstLsn: lsns[0]!, lastLsn: lsns.at(-1)! }];
    const afterBad = inSecond.slice(2).map((record) => record.lsn);
    expect(logs).toEqual([
      {
        log: { epoch: 1, worker: 0 },
        dropped: [
          {
            file: bad.file,
            fromOffset: bad.offset,
            toOffset: size,
            fileDeleted: false,
            records: afterBad.length,
            partitions: spanOf(afterBad),
          },
          ...paths.slice(2).map((path, i) => ({
            file: path,
            fromOffset: 0,
            toOffset: sizes[i + 2],
            fileDeleted: true,
            records: lsnsIn(path).length,
            partitions: spanOf(lsnsIn(path)),
          })),
        ],
      },
    ]);
    expect(lost).toEqual([{ partition, fromLsn: bad.lsn }]);

    const { records: read, result } = await readAll(dir);
    expect(read.map((record) => record.lsn)).toEqual(
      records.filter((r) => r.lsn < bad.lsn).map((r) => r.lsn),
    );
    expect(read.every((record, i) => record.payload.equals(records[i]!.payload))).toBe(true);
    expect(result.tornTails).toEqual([]);
    expect(result.nextLsns.get(partition)).toBe(bad.lsn);
    expect((await verifyWal(dir)).ok).toBe(true);

    const next = await openPartitionLog(dir, partition, bad.lsn, { epoch: 2 });
    next.log.append(recordTypeOperation, [Buffer.from('continued')]);
    await next.writer.close();
    expect((await readAll(dir)).records.at(-1)).toMatchObject({ lsn: bad.lsn });
  });

  it('drops a segment that follows a missing one, and cuts a torn tail like recovery would', async () => {
    const { dir, records, paths } = await buildLog();
    await rm(paths[2]!);
    const { logs } = await repairWal(dir);
    expect(
      logs[0]!.dropped.map(({ file, fromOffset, fileDeleted }) => ({ file, fromOffset, fileDeleted })),
    ).toEqual(paths.slice(3).map((file) => ({ file, fromOffset: 0, fileDeleted: true })));
    const { records: read } = await readAll(dir);
    const firstMissing = records.find((record) => record.file === paths[2])!.lsn;
    expect(read.at(-1)!.lsn).toBe(firstMissing - 1);

    const last = read.at(-1)!;
    await writeFile(last.file, (await readFile(last.file)).subarray(0, last.offset + 3));
    const torn = await repairWal(dir);
    expect(torn.logs[0]!.dropped).toEqual([
      {
        file: last.file,
        fromOffset: last.offset,
        toOffset: last.offset + 3,
        fileDeleted: false,
        records: 0,
        partitions: [],
      },
    ]);
    expect(torn.lost).toEqual([]);
    expect((await stat(last.file)).size).toBe(last.offset);
    expect(await repairWal(dir)).toMatchObject({ logs: [], lost: [] });
  });

  it(`a cut that drops a partition's records cuts later logs where its sequence continues (seed ${seed})`, async () => {
    const dir = await temporaryDirectory();
    const random = mulberry32(seed ^ 0xca5);
    // Two runs with different worker counts: run 1 has one worker for partitions 9 and 10, run 2
    // gives partition 10 to worker 0 and partition 9 to worker 1.
    const runOne = await WalWriter.open(dir, { epoch: 1, worker: 0 });
    const logs = [new PartitionLog(runOne, 9, 1), new PartitionLog(runOne, 10, 1)];
    for (let i = 0; i < 20; i++)
      logs[random() % 2]!.append(recordTypeOperation, [Buffer.alloc(1 + (random() % 90), i)]);
    await runOne.close();
    const runTwo = [
      await WalWriter.open(dir, { epoch: 2, worker: 0 }),
      await WalWriter.open(dir, { epoch: 2, worker: 1 }),
    ];
    const ten = new PartitionLog(runTwo[0]!, 10, logs[1]!.nextLsn);
    const nine = new PartitionLog(runTwo[1]!, 9, logs[0]!.nextLsn);
    for (let i = 0; i < 6; i++) {
      ten.append(recordTypeOperation, [Buffer.from(`ten ${i}`)]);
      nine.append(recordTypeOperation, [Buffer.from(`nine ${i}`)]);
    }
    for (const writer of runTwo) await writer.close();
    const all: WalRecord[] = [];
    const starts = new Map([
      [9, 1],
      [10, 1],
    ]);
    await readWal(dir, { partitions: starts, onRecord: (record) => void all.push({ ...record }) });
    // Damage a record of partition 9 in the middle of run 1's log.
    const inRunOne = all.filter((record) => record.file.includes('-0000000000000001-'));
    const victim = inRunOne.filter((record) => record.partition === 9)[2]!;
    await flipByte(victim.file, victim.offset + 12, 0xff);
    const droppedOfTen = inRunOne.filter(
      (record) => record.partition === 10 && record.offset > victim.offset,
    );

    // With both partitions needing all their records, both of run 2's logs are cut at their first
    // record (each holds only records past what its partition lost); their headers stay.
    const plan = await repairWal(dir, { replayStarts: starts });
    expect(plan.logs.map((log) => [log.log.epoch, log.log.worker, log.dropped[0]!.fromOffset])).toEqual([
      [1, 0, victim.offset],
      ...(droppedOfTen.length > 0 ? [[2, 0, segmentHeaderBytes]] : []),
      [2, 1, segmentHeaderBytes],
    ]);
    expect(plan.lost.map((lost) => lost.partition)).toEqual(droppedOfTen.length > 0 ? [9, 10] : [9]);
    const after = await verifyWal(dir, { replayStarts: starts });
    expect(after.problems).toEqual([]);
    const kept: WalRecord[] = [];
    await readWal(dir, { partitions: starts, onRecord: (record) => void kept.push(record) });
    expect(kept.filter((record) => record.partition === 9).map((record) => record.lsn)).toEqual(
      [...Array(victim.lsn - 1).keys()].map((i) => i + 1),
    );
  });

  it('refuses to touch logs with a segment of another format', async () => {
    const { dir, paths } = await buildLog();
    const { h32Raw } = await xxhash();
    const bytes = await readFile(paths[1]!);
    bytes.writeUInt32LE(3, kHeaderFormatVersion);
    bytes.writeUInt32LE(h32Raw(bytes.subarray(0, kHeaderChecksum)), kHeaderChecksum);
    await writeFile(paths[1]!, bytes);
    await expect(repairWal(dir)).rejects.toSatisfy((error) => isLightningError(error, 'ERR_FORMAT_VERSION'));
    expect((await readdir(dir)).length).toBe(paths.length);
  });
});
