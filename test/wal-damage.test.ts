/**
 * What the WAL reader does with damaged logs. A torn tail (a log's newest segment ends in a partial
 * or failing record with nothing valid after it) is cut and reported, at every byte where a crash can
 * tear the last record. Everything else is ERR_CORRUPTION naming the file and byte offset: a flipped
 * byte with valid records after it, damage in an older segment, a missing segment, an LSN out of
 * sequence within a log, a partition's records missing between logs, a bad header
 * (ERR_FORMAT_VERSION for another format). The logs hold two partitions' records interleaved.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { isLightningError } from '../src/shared-memory/index.js';
import {
  PartitionLog,
  readWal,
  recordTypeOperation,
  segmentFileName,
  segmentHeaderBytes,
  truncateTornTail,
  type WalRecord,
  WalWriter,
} from '../src/storage/wal/index.js';
import {
  encodeRecord,
  kHeaderChecksum,
  kHeaderFormatVersion,
  recordBytes,
} from '../src/storage/wal/wal-format.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import {
  flipByte,
  openPartitionLog,
  readLog,
  segmentPaths,
  useTemporaryDirectories,
} from './support/wal-fixtures.js';

// Kept signed (seedFromEnv returns it unsigned): the test names have always printed it that way.
const seed = seedFromEnv(0x0bad_f00d) | 0;

const partition = 5;
/** Another partition of the same owner, whose records interleave with partition 5's. */
const neighbour = 6;
const firstLog = { epoch: 1, worker: 0 };
const temporaryDirectory = useTemporaryDirectories('lightning-wal-damage-');

/**
 * A log of several 4 KiB segments holding partitions 5 and 6 interleaved, whose newest segment holds
 * at least the five records of partition 5's last flush, the last one `lastPayloadBytes` long.
 * Returns partition 5's records as read back (with file and offset).
 */
async function buildLog(lastPayloadBytes = 100): Promise<{ dir: string; records: WalRecord[] }> {
  const dir = await temporaryDirectory();
  const random = mulberry32(seed);
  const writer = await WalWriter.open(dir, firstLog, { segmentTargetBytes: 4096 });
  const log = new PartitionLog(writer, partition, 1);
  const other = new PartitionLog(writer, neighbour, 1);
  for (let batch = 0; batch < 40; batch++) {
    const payloads = Array.from({ length: 1 + (random() % 5) }, () => randomBytes(random, random() % 300));
    (random() % 3 === 0 ? other : log).append(recordTypeOperation, payloads);
    if (random() % 2 === 0) other.append(recordTypeOperation, [randomBytes(random, random() % 100)]);
    await writer.flush(false);
  }
  // The last batch goes in the newest segment whole: close() flushes without rotating.
  const lastBatch = Array.from({ length: 4 }, () => randomBytes(random, random() % 64));
  log.append(recordTypeOperation, [...lastBatch, randomBytes(random, lastPayloadBytes)]);
  await writer.close();
  const { records, result } = await readAll(dir);
  expect(result.tornTails).toEqual([]);
  expect(result.segments).toBeGreaterThan(3);
  return { dir, records };
}

const readAll = (dir: string) => readLog(dir, partition);

/** Expects ERR_CORRUPTION (or `code`) whose message names `file` and `at byte <offset>`. */
async function expectDamage(
  dir: string,
  file: string,
  offset: number,
  pattern: RegExp,
  code = 'ERR_CORRUPTION',
) {
  const error = await readAll(dir).then(
    () => expect.fail('the read succeeded'),
    (caught: unknown) => caught,
  );
  expect(isLightningError(error) && error.code).toBe(code);
  const message = (error as Error).message;
  expect(message).toContain(`${file} at byte ${offset}:`);
  expect(message).toMatch(pattern);
}

describe('WAL torn tails', () => {
  it(`a tear at every byte of the last record is cut and reported (seed ${seed})`, async () => {
    const { dir, records } = await buildLog(100);
    const last = records.at(-1)!;
    const pristine = await readFile(last.file);
    const end = last.offset + recordBytes(100);
    expect(end).toBe(pristine.length);
    for (let cut = last.offset; cut <= end; cut++) {
      await writeFile(last.file, pristine.subarray(0, cut));
      const { records: read, result } = await readAll(dir);
      const whole = cut === end;
      expect(read.length).toBe(whole ? records.length : records.length - 1);
      expect(read.at(-1)!.payload.equals(records[read.length - 1]!.payload)).toBe(true);
      const torn =
        cut === last.offset || whole
          ? null
          : { file: last.file, offset: last.offset, bytesDropped: cut - last.offset };
      expect(result.tornTails[0] ?? null).toEqual(torn);
      expect(result.nextLsns.get(partition)).toBe(whole ? last.lsn + 1 : last.lsn);
    }
  });

  it('a torn 5 MB record is cut wherever it tore', async () => {
    const big = 5 * 1024 * 1024;
    const { dir, records } = await buildLog(big);
    const last = records.at(-1)!;
    const pristine = await readFile(last.file);
    for (const into of [1, 7, 8, 16, 17, 24, 4096, big / 2, big - 1, recordBytes(big) - 1]) {
      await writeFile(last.file, pristine.subarray(0, last.offset + into));
      const { records: read, result } = await readAll(dir);
      expect(read.length).toBe(records.length - 1);
      expect(result.tornTails).toEqual([{ file: last.file, offset: last.offset, bytesDropped: into }]);
    }
  });

  it('a flipped byte in the last record of the newest segment is indistinguishable from a tear', async () => {
    const { dir, records } = await buildLog();
    const last = records.at(-1)!;
    await flipByte(last.file, last.offset + 40);
    const { records: read, result } = await readAll(dir);
    expect(read.length).toBe(records.length - 1);
    expect(result.tornTails).toEqual([
      { file: last.file, offset: last.offset, bytesDropped: recordBytes(100) },
    ]);
  });

  it('truncateTornTail cuts the tail durably and a writer continues after it', async () => {
    const { dir, records } = await buildLog();
    const last = records.at(-1)!;
    const pristine = await readFile(last.file);
    await writeFile(last.file, pristine.subarray(0, last.offset + 50));
    const { result } = await readAll(dir);
    await truncateTornTail(result.tornTails[0]!.file, result.tornTails[0]!.offset);
    expect((await stat(last.file)).size).toBe(last.offset);
    // The next run writes a log of its own, continuing the partition's sequence.
    const next = await openPartitionLog(dir, partition, result.nextLsns.get(partition)!, { epoch: 2 });
    next.log.append(recordTypeOperation, [Buffer.from('after the cut')]);
    await next.writer.close();
    const { records: read, result: after } = await readAll(dir);
    expect(after.tornTails).toEqual([]);
    expect(read.map((record) => record.lsn)).toEqual(records.map((record) => record.lsn));
    expect(read.at(-1)!.payload.toString()).toBe('after the cut');
    await expect(truncateTornTail(last.file, 12)).rejects.toSatisfy((e) =>
      isLightningError(e, 'ERR_BAD_ARGUMENT'),
    );
  });

  it('a newest segment with a partial header is a torn tail at byte 0 and is removed by the cut', async () => {
    const { dir, records } = await buildLog();
    const nextLsn = records.at(-1)!.lsn + 1;
    // As a rotation and as a new run leave it: the next segment of the log, or a new log's first.
    for (const [log, ordinal] of [
      [firstLog, (await segmentPaths(dir)).length],
      [{ epoch: 2, worker: 1 }, 0],
    ] as const) {
      const file = join(dir, segmentFileName(log, ordinal));
      await (await WalWriter.open(dir, { epoch: 9, worker: 9 })).close();
      const header = await readFile(join(dir, segmentFileName({ epoch: 9, worker: 9 }, 0)));
      await rm(join(dir, segmentFileName({ epoch: 9, worker: 9 }, 0)));
      for (let length = 0; length < segmentHeaderBytes; length++) {
        await writeFile(file, header.subarray(0, length));
        const { records: read, result } = await readAll(dir);
        expect(read.length).toBe(records.length);
        expect(result.tornTails).toEqual([{ file, offset: 0, bytesDropped: length }]);
        expect(result.nextLsns.get(partition)).toBe(nextLsn);
      }
      await truncateTornTail(file, 0);
      expect((await segmentPaths(dir)).includes(file)).toBe(false);
      expect((await readAll(dir)).result.tornTails).toEqual([]);
    }
  });
});

describe('WAL damage is ERR_CORRUPTION naming file and offset', () => {
  it('a flipped byte in a middle record with valid records after it, in the newest and an older segment', async () => {
    const { dir, records } = await buildLog();
    const paths = await segmentPaths(dir);
    for (const file of [paths.at(-1)!, paths[1]!]) {
      const inFile = records.filter((record) => record.file === file);
      expect(inFile.length).toBeGreaterThanOrEqual(3);
      const middle = inFile[Math.floor(inFile.length / 2)]!;
      // Length (low and high byte), checksum, LSN, partition, type and payload.
      for (const at of [0, 3, 5, 9, 16, 20, 21 + Math.floor(middle.payload.length / 2)]) {
        if (at >= 21 + middle.payload.length) continue;
        const pristine = await readFile(file);
        await flipByte(file, middle.offset + at);
        await expectDamage(dir, file, middle.offset, /valid record of partition \d+, LSN \d+, follows/);
        await writeFile(file, pristine);
      }
    }
  });

  it('damage at the end of an older segment is not a torn tail', async () => {
    const { dir } = await buildLog();
    const older = (await segmentPaths(dir))[1]!;
    // The segment's last record, whichever partition it belongs to.
    const both: WalRecord[] = [];
    await readWal(dir, {
      partitions: new Map([
        [partition, 1],
        [neighbour, 1],
      ]),
      onRecord: (record) => void both.push(record),
    });
    const last = both.filter((record) => record.file === older).at(-1)!;
    await flipByte(older, last.offset + 12); // Its LSN: the payload may be empty, padding is not checksummed.
    await expectDamage(dir, older, last.offset, /not the last segment of its log/);
  });

  it('a deleted middle segment', async () => {
    const { dir } = await buildLog();
    const paths = await segmentPaths(dir);
    await rm(paths[2]!);
    await expectDamage(
      dir,
      paths[3]!,
      0,
      /segment 3 of the log of run 1, worker 0 follows segment 1: segments 2\.\.2 are missing/,
    );
  });

  it(`a partition's records missing between logs of different runs and workers (seed ${seed})`, async () => {
    const dir = await temporaryDirectory();
    const random = mulberry32(seed ^ 0x9a9);
    // Four runs; the worker that owns partition 5 changes (the worker count changed between opens).
    const runs = [
      { epoch: 1, worker: 0 },
      { epoch: 2, worker: 1 },
      { epoch: 3, worker: 0 },
      { epoch: 4, worker: 2 },
    ];
    let nextLsn = 1;
    for (const run of runs) {
      const { writer, log } = await openPartitionLog(dir, partition, nextLsn, run);
      const other = new PartitionLog(writer, neighbour + run.epoch, 1);
      for (let i = 0; i < 5; i++) {
        other.append(recordTypeOperation, [randomBytes(random, 20)]);
        log.append(recordTypeOperation, [randomBytes(random, 1 + (random() % 50))]);
      }
      await writer.close();
      nextLsn = log.nextLsn;
    }
    const { records } = await readAll(dir);
    expect(records.map((record) => record.lsn)).toEqual([...Array(20).keys()].map((i) => i + 1));
    // Run 2's log goes: partition 5's LSNs 6..10 are missing, named at its next record, in run 3's log.
    const paths = await segmentPaths(dir);
    await rm(paths[1]!);
    const next = records.find((record) => record.lsn === 11)!;
    expect(next.file).toBe(paths[2]!);
    await expectDamage(dir, next.file, next.offset, /partition 5: records 6\.\.10 are missing/);
    // From a checkpoint at LSN 11 on, nothing is missing.
    expect((await readLog(dir, partition, 11)).records.length).toBe(10);
  });

  it('LSNs that skip or repeat, with valid checksums', async () => {
    const { h32Raw } = await xxhash();
    for (const skew of [2, 0, -3]) {
      const { dir, records } = await buildLog();
      const last = records.at(-1)!;
      const bytes = await readFile(last.file);
      const forged = Buffer.alloc(recordBytes(4));
      encodeRecord(h32Raw, forged, 0, partition, last.lsn + skew, recordTypeOperation, Buffer.from('fake'));
      await writeFile(last.file, Buffer.concat([bytes, forged]));
      const reason =
        skew > 0 ? /partition 5: LSN gap: expected \d+, found \d+/ : /partition 5: LSN \d+ does not increase/;
      await expectDamage(dir, last.file, bytes.length, reason);
    }
  });

  it('bad segment headers: magic, checksum, name, and other format versions', async () => {
    const { dir } = await buildLog();
    const paths = await segmentPaths(dir);
    const file = paths[1]!;
    const pristine = await readFile(file);
    await flipByte(file, 1);
    await expectDamage(dir, file, 0, /bad magic/);
    await writeFile(file, pristine);
    await flipByte(file, 9); // The worker index, under the header checksum.
    await expectDamage(dir, file, 0, /header checksum mismatch/);
    await writeFile(file, pristine);

    const { h32Raw } = await xxhash();
    const newer = Buffer.from(pristine);
    newer.writeUInt32LE(3, kHeaderFormatVersion);
    newer.writeUInt32LE(h32Raw(newer.subarray(0, kHeaderChecksum)), kHeaderChecksum);
    await writeFile(file, newer);
    await expectDamage(dir, file, 0, /format version 3/, 'ERR_FORMAT_VERSION');
    // Version 1, one log per partition: the message says how to upgrade.
    newer.writeUInt32LE(1, kHeaderFormatVersion);
    newer.writeUInt32LE(h32Raw(newer.subarray(0, kHeaderChecksum)), kHeaderChecksum);
    await writeFile(file, newer);
    await expectDamage(
      dir,
      file,
      0,
      /version 1.*lightning-cli dump.*lightning-cli load/,
      'ERR_FORMAT_VERSION',
    );
    await writeFile(file, pristine);

    // A segment under another log's name.
    const renamed = join(dir, segmentFileName({ epoch: 1, worker: 7 }, 0));
    await rename(paths.at(-1)!, renamed);
    await expectDamage(dir, renamed, 0, /header names segment \d+ of the log of run 1, worker 0/);
  });

  it('an older segment shorter than a header', async () => {
    const { dir } = await buildLog();
    const paths = await segmentPaths(dir);
    await writeFile(paths[1]!, Buffer.alloc(10));
    await expectDamage(dir, paths[1]!, 0, /shorter than a header/);
  });
});
