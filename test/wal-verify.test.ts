/**
 * verifyWal reports a log's segments, records and every problem (file and offset) without throwing;
 * repairWal cuts the log at the end of its valid prefix, says exactly what it dropped, and leaves a
 * log that reads back as precisely the records before the cut and that a writer continues.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { isLightningError } from '../src/shared-memory/index.js';
import {
  recordTypeOperation,
  repairWal,
  verifyWal,
  type WalRecord,
  WalWriter,
} from '../src/storage/wal/index.js';
import { kHeaderChecksum, kHeaderFormatVersion } from '../src/storage/wal/wal-format.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { flipByte, readLog, useTemporaryDirectories } from './support/wal-fixtures.js';

// Kept signed (seedFromEnv returns it unsigned): the test names have always printed it that way.
const seed = seedFromEnv(0x7e57_0c0d) | 0;

const partition = 9;
const temporaryDirectory = useTemporaryDirectories('lightning-wal-verify-');

async function buildLog(): Promise<{ dir: string; records: WalRecord[]; paths: string[] }> {
  const dir = await temporaryDirectory();
  const random = mulberry32(seed);
  const writer = await WalWriter.open(dir, partition, 1, { segmentTargetBytes: 4096 });
  for (let batch = 0; batch < 90; batch++) {
    const payloads = Array.from({ length: 1 + (random() % 4) }, () => Buffer.alloc(random() % 250, batch));
    writer.append(recordTypeOperation, payloads);
    await writer.flush(batch % 5 === 0);
  }
  // Closing flushes without rotating, so the newest segment holds at least these three records.
  writer.append(recordTypeOperation, [Buffer.from('x'), Buffer.from('y'), Buffer.from('z')]);
  await writer.close();
  const { records } = await readAll(dir);
  const paths = (await readdir(dir)).sort().map((name) => join(dir, name));
  expect(paths.length).toBeGreaterThanOrEqual(5);
  return { dir, records, paths };
}

const readAll = (dir: string) => readLog(dir, partition);

describe('verifyWal', () => {
  it(`reports a clean log in full (seed ${seed})`, async () => {
    const { dir, records, paths } = await buildLog();
    const report = await verifyWal(dir, partition);
    let bytes = 0;
    for (const path of paths) bytes += (await stat(path)).size;
    expect(report).toMatchObject({
      records: records.length,
      firstLsn: 1,
      lastLsn: records.length,
      bytes,
      tornTail: null,
      problems: [],
      cut: null,
      ok: true,
    });
    expect(report.segments.map((segment) => segment.file)).toEqual(paths);
    expect(report.segments.reduce((sum, segment) => sum + segment.records, 0)).toBe(records.length);
    expect(await verifyWal(join(dir, 'absent'), partition)).toMatchObject({
      segments: [],
      records: 0,
      ok: true,
    });
  });

  it('reports every problem with its file and offset, goes on past them, and never throws', async () => {
    const { dir, records, paths } = await buildLog();
    const damaged = [records.find((record) => record.file === paths[1])!, records.at(-2)!];
    expect(damaged[1]!.file).toBe(paths.at(-1));
    for (const record of damaged) await flipByte(record.file, record.offset + 12, 0xff); // Its LSN: always checksummed.
    await rm(paths[3]!);
    const report = await verifyWal(dir, partition);
    expect(report.ok).toBe(false);
    expect(report.problems.map(({ file, offset }) => ({ file, offset }))).toEqual([
      { file: damaged[0]!.file, offset: damaged[0]!.offset },
      { file: paths[4]!, offset: 0 },
      { file: damaged[1]!.file, offset: damaged[1]!.offset },
    ]);
    expect(report.problems[1]!.message).toMatch(/a segment is missing/);
    const missing = records.filter((record) => record.file === paths[3]).length;
    expect(report.records).toBe(records.length - 2 - missing);
    expect(report.cut).toMatchObject({
      file: damaged[0]!.file,
      offset: damaged[0]!.offset,
      nextLsn: damaged[0]!.lsn,
    });
  });

  it('reports a torn tail separately from problems', async () => {
    const { dir, records } = await buildLog();
    const last = records.at(-1)!;
    const bytes = await readFile(last.file);
    await writeFile(last.file, bytes.subarray(0, last.offset + 5));
    const report = await verifyWal(dir, partition);
    expect(report.ok).toBe(true);
    expect(report.tornTail).toEqual({ file: last.file, offset: last.offset, bytesDropped: 5 });
    expect(report.cut).toMatchObject({ file: last.file, offset: last.offset, nextLsn: last.lsn, records: 0 });
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

    const { dropped, nextLsn } = await repairWal(dir, partition);
    expect(nextLsn).toBe(bad.lsn);
    const lsnsIn = (path: string) =>
      records.filter((record) => record.file === path).map((record) => record.lsn);
    const afterBad = inSecond.slice(2).map((record) => record.lsn);
    expect(dropped).toEqual([
      {
        file: bad.file,
        fromOffset: bad.offset,
        toOffset: size,
        fileDeleted: false,
        records: afterBad.length,
        firstLsn: afterBad[0] ?? null,
        lastLsn: afterBad.at(-1) ?? null,
      },
      ...paths.slice(2).map((path, i) => ({
        file: path,
        fromOffset: 0,
        toOffset: sizes[i + 2],
        fileDeleted: true,
        records: lsnsIn(path).length,
        firstLsn: lsnsIn(path)[0] ?? null,
        lastLsn: lsnsIn(path).at(-1) ?? null,
      })),
    ]);

    const { records: read, result } = await readAll(dir);
    expect(read.map((record) => record.lsn)).toEqual(
      records.filter((r) => r.lsn < bad.lsn).map((r) => r.lsn),
    );
    expect(read.every((record, i) => record.payload.equals(records[i]!.payload))).toBe(true);
    expect(result).toMatchObject({ tornTail: null, nextLsn: bad.lsn });
    expect((await verifyWal(dir, partition)).ok).toBe(true);

    const writer = await WalWriter.open(dir, partition, bad.lsn);
    writer.append(recordTypeOperation, [Buffer.from('continued')]);
    await writer.close();
    expect((await readAll(dir)).records.at(-1)).toMatchObject({ lsn: bad.lsn });
  });

  it('drops a segment that follows a missing one, and cuts a torn tail like recovery would', async () => {
    const { dir, records, paths } = await buildLog();
    await rm(paths[2]!);
    const firstMissing = records.find((record) => record.file === paths[2])!.lsn;
    const { dropped, nextLsn } = await repairWal(dir, partition);
    expect(nextLsn).toBe(firstMissing);
    expect(dropped.map(({ file, fromOffset, fileDeleted }) => ({ file, fromOffset, fileDeleted }))).toEqual(
      paths.slice(3).map((file) => ({ file, fromOffset: 0, fileDeleted: true })),
    );
    const { records: read } = await readAll(dir);
    expect(read.at(-1)!.lsn).toBe(firstMissing - 1);

    const last = read.at(-1)!;
    await writeFile(last.file, (await readFile(last.file)).subarray(0, last.offset + 3));
    const torn = await repairWal(dir, partition);
    expect(torn.dropped).toEqual([
      {
        file: last.file,
        fromOffset: last.offset,
        toOffset: last.offset + 3,
        fileDeleted: false,
        records: 0,
        firstLsn: null,
        lastLsn: null,
      },
    ]);
    expect((await stat(last.file)).size).toBe(last.offset);
    expect(await repairWal(dir, partition)).toMatchObject({ dropped: [], nextLsn: last.lsn });
  });

  it('refuses to touch a log with a segment of a newer format', async () => {
    const { dir, paths } = await buildLog();
    const { h32Raw } = await xxhash();
    const bytes = await readFile(paths[1]!);
    bytes.writeUInt32LE(2, kHeaderFormatVersion);
    bytes.writeUInt32LE(h32Raw(bytes.subarray(0, kHeaderChecksum)), kHeaderChecksum);
    await writeFile(paths[1]!, bytes);
    await expect(repairWal(dir, partition)).rejects.toSatisfy((error) =>
      isLightningError(error, 'ERR_FORMAT_VERSION'),
    );
    expect((await readdir(dir)).length).toBe(paths.length);
  });
});
