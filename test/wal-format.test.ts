/**
 * The write-ahead log's writer and reader together: one owner log holding several partitions'
 * records interleaved, written in many batches (empty payloads, 5 MB payloads, every record type),
 * comes back per partition, byte for byte, in each partition's LSN order across segment rotations;
 * concurrent flushes complete in call order; a flush is one write and at most one fdatasync however
 * many partitions it carries; a new run writes a new log and never touches an old one; bad
 * arguments are typed.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLightningError } from '../src/shared-memory/index.js';
import {
  PartitionLog,
  readWal,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
  segmentFileName,
  type WalRecord,
  type WalRecordType,
  WalWriter,
} from '../src/storage/wal/index.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { openPartitionLog, readLog, segmentNames, useTemporaryDirectories } from './support/wal-fixtures.js';

// Kept signed (seedFromEnv returns it unsigned): the test names have always printed it that way.
const seed = seedFromEnv(0x5eed_0a11) | 0;

/** Payload bytes that depend on the random stream, so a misplaced or stale record cannot pass. */
function randomPayload(random: () => number, length: number): Buffer {
  const payload = Buffer.allocUnsafe(length);
  for (let i = 0; i + 4 <= length; i += 4) payload.writeUInt32LE(random(), i);
  for (let i = length - (length % 4); i < length; i++) payload[i] = random() & 0xff;
  return payload;
}

const recordTypes: readonly WalRecordType[] = [recordTypeOperation, recordTypePrepare, recordTypeDecision];
const fiveMegabytes = 5 * 1024 * 1024;
const smallSegmentBytes = 64 * 1024;

interface Expected {
  readonly lsn: number;
  readonly type: WalRecordType;
  readonly payload: Buffer;
}

const temporaryDirectory = useTemporaryDirectories('lightning-wal-');
async function temporaryLogDirectory(): Promise<string> {
  const base = await temporaryDirectory();
  return join(base, 'db', 'wal'); // Nested and missing: the writer creates it.
}

const readAll = readLog;

function expectSameRecords(actual: readonly WalRecord[], expected: readonly Expected[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const got = actual[i]!;
    const want = expected[i]!;
    if (got.lsn !== want.lsn || got.type !== want.type || !got.payload.equals(want.payload)) {
      expect.fail(
        `record ${i}: got LSN ${got.lsn} type ${got.type} (${got.payload.length} bytes), want LSN ${want.lsn}`,
      );
    }
  }
}

describe('WAL round trip', () => {
  it(`three partitions interleaved in one log, with empty and 5 MB payloads, come back per partition in order across rotations (seed ${seed})`, async () => {
    const random = mulberry32(seed);
    const dir = await temporaryLogDirectory();
    const writer = await WalWriter.open(
      dir,
      { epoch: 1, worker: 3 },
      { segmentTargetBytes: smallSegmentBytes },
    );
    const partitionIds = [3, 5, 9];
    // Partition 9 continues a sequence an earlier run started: its first LSN here is 40.
    const logs = partitionIds.map(
      (partition) => new PartitionLog(writer, partition, partition === 9 ? 40 : 1),
    );
    const expected = new Map<number, Expected[]>(partitionIds.map((partition) => [partition, []]));
    const bigAt = new Set([40, 41, 170]); // Two big batches in a row, then one later.
    for (let batch = 0; batch < 240; batch++) {
      const log = logs[random() % logs.length]!;
      const type = recordTypes[random() % recordTypes.length]!;
      const count = bigAt.has(batch) ? 1 + (random() % 2) : 1 + (random() % 24);
      const payloads: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const roll = random() % 10;
        const length = bigAt.has(batch) ? fiveMegabytes + (random() % 9) : roll === 0 ? 0 : random() % 400;
        payloads.push(randomPayload(random, length));
      }
      const list = expected.get(log.partition)!;
      const { firstLsn, lastLsn } = log.append(type, payloads);
      expect(firstLsn).toBe((list.at(-1)?.lsn ?? (log.partition === 9 ? 39 : 0)) + 1);
      expect(lastLsn).toBe(firstLsn + count - 1);
      payloads.forEach((payload, i) => void list.push({ lsn: firstLsn + i, type, payload }));
      if (random() % 3 !== 0) await writer.flush(random() % 2 === 0);
    }
    await writer.close();

    const stats = writer.stats;
    const names = await segmentNames(dir);
    expect(names.length).toBe(stats.segmentsCreated);
    expect(names.length).toBeGreaterThan(8);
    // One log: the run's epoch and the worker name it, and its segments are numbered from 0.
    expect(names).toEqual(names.map((_, i) => segmentFileName({ epoch: 1, worker: 3 }, i)));
    let bytesOnDisk = 0;
    for (const [i, name] of names.entries()) {
      const sizeBytes = (await stat(join(dir, name))).size;
      bytesOnDisk += sizeBytes;
      // A segment is rotated only after the flush that takes it past its target.
      if (i < names.length - 1) expect(sizeBytes).toBeGreaterThan(smallSegmentBytes);
    }
    expect(stats.bytesWritten).toBe(bytesOnDisk);
    expect(stats.directorySyncs).toBe(names.length);
    expect(stats.lastSyncAtMs).toBeGreaterThan(0);
    const total = [...expected.values()].reduce((sum, list) => sum + list.length, 0);
    expect(writer.syncedRecords).toBe(total);
    // The records really are interleaved: some segment holds more than one partition.
    const fileSets = partitionIds.map(() => new Set<string>());

    for (const [i, partition] of partitionIds.entries()) {
      const from = partition === 9 ? 40 : 1;
      const { records, result } = await readAll(dir, partition, from);
      expectSameRecords(records, expected.get(partition)!);
      for (const record of records) {
        expect(record.partition).toBe(partition);
        fileSets[i]!.add(record.file);
      }
      expect(result).toMatchObject({
        logs: 1,
        segments: names.length,
        records: records.length,
        tornTails: [],
      });
      expect(result.nextLsns.get(partition)).toBe((expected.get(partition)!.at(-1)?.lsn ?? from - 1) + 1);
      // Partitions' views count their own records' bytes.
      const partitionBytes = logs[i]!.stats.bytesWritten;
      expect(partitionBytes).toBeGreaterThan(0);
    }
    const shared = [...fileSets[0]!].some((file) => fileSets[1]!.has(file) || fileSets[2]!.has(file));
    expect(shared, 'no segment holds records of two partitions').toBe(true);
    // All partitions at once: the reader delivers each partition's records in its order.
    const seen = new Map<number, number[]>();
    const all = await readWal(dir, {
      partitions: new Map([
        [3, 1],
        [5, 1],
        [9, 40],
      ]),
      onRecord: (record) => {
        const list = seen.get(record.partition) ?? [];
        list.push(record.lsn);
        seen.set(record.partition, list);
      },
    });
    expect(all.records).toBe(total);
    for (const partition of partitionIds) {
      expect(seen.get(partition) ?? []).toEqual(expected.get(partition)!.map((record) => record.lsn));
    }
  });

  it('reading from an LSN skips the records before it; a lost start is ERR_CORRUPTION naming what is missing', async () => {
    const random = mulberry32(seed ^ 0x1234);
    const dir = await temporaryLogDirectory();
    const { writer, log } = await openPartitionLog(dir, 0, 1, { segmentTargetBytes: 4096 });
    for (let batch = 0; batch < 60; batch++) {
      log.append(recordTypeOperation, [randomPayload(random, 200), randomPayload(random, 300)]);
      await writer.flush(false);
    }
    await writer.close();
    const names = await segmentNames(dir);
    const { records: all } = await readAll(dir, 0);
    const fromLsn = all[all.length - 7]!.lsn;
    const { records, result } = await readAll(dir, 0, fromLsn);
    expect(records.map((record) => record.lsn)).toEqual(all.slice(-7).map((record) => record.lsn));
    expect(result.nextLsns.get(0)).toBe(all.length + 1);
    // Without its first segment, the log no longer reaches back to LSN 1.
    const second = all.find((record) => record.file === join(dir, names[1]!))!;
    await rm(join(dir, names[0]!));
    await expect(readAll(dir, 0, 1)).rejects.toSatisfy(
      (error) =>
        isLightningError(error, 'ERR_CORRUPTION') &&
        error.message.includes(`${names[1]!} at byte ${second.offset}`) &&
        error.message.includes(`partition 0: records 1..${second.lsn - 1} are missing`),
    );
    // Read from where the remaining records start, it is whole.
    expect((await readAll(dir, 0, second.lsn)).records.length).toBe(all.length - second.lsn + 1);
  });

  it('a new run continues the sequence in a new log and never touches an old one', async () => {
    const dir = await temporaryLogDirectory();
    const first = await openPartitionLog(dir, 1, 100, { epoch: 1 });
    first.log.append(recordTypeOperation, [Buffer.from('a'), Buffer.from('b')]);
    await first.writer.close();
    const oldName = segmentFileName({ epoch: 1, worker: 0 }, 0);
    const before = await readFile(join(dir, oldName));
    const { result } = await readAll(dir, 1, 100);
    expect(result.nextLsns.get(1)).toBe(102);

    // The worker count changed: worker 1 of run 2 owns partition 1 now.
    const again = await openPartitionLog(dir, 1, result.nextLsns.get(1)!, { epoch: 2, worker: 1 });
    expect(again.log.append(recordTypePrepare, [Buffer.from('c')])).toEqual({ firstLsn: 102, lastLsn: 102 });
    await again.writer.close();
    expect(await readFile(join(dir, oldName))).toEqual(before);
    expect(await segmentNames(dir)).toEqual([oldName, segmentFileName({ epoch: 2, worker: 1 }, 0)]);
    const { records } = await readAll(dir, 1, 100);
    expect(records.map((record) => [record.lsn, record.payload.toString()])).toEqual([
      [100, 'a'],
      [101, 'b'],
      [102, 'c'],
    ]);
    // Reading only the runs before 2 (what run 2's owners do at start) leaves run 2's log out.
    const earlier = await readWal(dir, {
      beforeEpoch: 2,
      partitions: new Map([[1, 100]]),
      onRecord: () => {},
    });
    expect([earlier.logs, earlier.records, earlier.nextLsns.get(1)]).toEqual([1, 2, 102]);
  });

  it('a writer never opens a log that exists, even an empty one: a run never appends to an earlier run', async () => {
    const dir = await temporaryLogDirectory();
    await (await WalWriter.open(dir, { epoch: 7, worker: 0 })).close(); // A run that wrote nothing.
    expect((await readAll(dir, 1, 1)).result).toMatchObject({ segments: 1, records: 0 });
    await expect(WalWriter.open(dir, { epoch: 7, worker: 0 })).rejects.toSatisfy((error) =>
      isLightningError(error, 'ERR_BAD_ARGUMENT'),
    );
    // Another worker of that run, or a later run, is a new log.
    await (await WalWriter.open(dir, { epoch: 7, worker: 1 })).close();
    await (await WalWriter.open(dir, { epoch: 8, worker: 0 })).close();
    expect((await segmentNames(dir)).length).toBe(3);
  });
});

describe('WAL group commit', () => {
  it(`one write and at most one fdatasync per flush, however many partitions it carries (seed ${seed})`, async () => {
    const random = mulberry32(seed ^ 0x5151);
    const dir = await temporaryLogDirectory();
    const writer = await WalWriter.open(dir, { epoch: 1, worker: 0 });
    const logs = Array.from({ length: 8 }, (_, partition) => new PartitionLog(writer, partition, 1));
    const atOpen = writer.stats;
    const passes = 50;
    let syncedPasses = 0;
    for (let pass = 0; pass < passes; pass++) {
      // Every partition takes records in this pass, as a batch spread over all of them does.
      for (const log of logs) log.append(recordTypeOperation, [randomPayload(random, 1 + (random() % 300))]);
      const sync = random() % 4 !== 0;
      if (sync) syncedPasses++;
      await writer.flush(sync);
    }
    const stats = writer.stats;
    console.log(
      `group commit: ${passes} passes over ${logs.length} partitions: ${stats.flushes - atOpen.flushes} writes, ${stats.syncs - atOpen.syncs} fdatasyncs (${syncedPasses} passes asked for one)`,
    );
    expect(stats.flushes - atOpen.flushes).toBe(passes);
    expect(stats.syncs - atOpen.syncs).toBe(syncedPasses);
    expect(stats.segmentsCreated).toBe(1);
    await writer.close();
  });
});

describe('WAL flush ordering', () => {
  it(`concurrent flushes complete in call order and each covers what was appended before it (seed ${seed})`, async () => {
    const random = mulberry32(seed ^ 0x77);
    const dir = await temporaryLogDirectory();
    const { writer, log } = await openPartitionLog(dir, 2, 1, { segmentTargetBytes: 8192 });
    const completed: number[] = [];
    const flushes: Promise<void>[] = [];
    let appended = 0;
    for (let call = 0; call < 200; call++) {
      appended = log.append(recordTypeOperation, [randomPayload(random, random() % 700)]).lastLsn;
      const sync = random() % 4 === 0;
      const covered = appended;
      flushes.push(
        writer.flush(sync).then(() => {
          completed.push(call);
          expect(writer.writtenRecords).toBeGreaterThanOrEqual(covered);
          if (sync) expect(writer.syncedRecords).toBeGreaterThanOrEqual(covered);
        }),
      );
      // Sometimes let the running flush reach its write before the next append and flush.
      if (random() % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(flushes);
    expect(completed).toEqual([...Array(200).keys()]);
    expect(writer.stats.flushes).toBeLessThanOrEqual(200);
    await writer.close();
    const { records } = await readAll(dir, 2);
    expect(records.map((record) => record.lsn)).toEqual([...Array(appended).keys()].map((i) => i + 1));
  });

  it('a sync-only flush syncs bytes an earlier flush wrote without syncing', async () => {
    const dir = await temporaryLogDirectory();
    const { writer, log } = await openPartitionLog(dir, 0, 1);
    const syncsAtOpen = writer.stats.syncs; // The new segment's header.
    log.append(recordTypeOperation, [Buffer.from('x')]);
    await writer.flush(false);
    expect([writer.writtenRecords, writer.syncedRecords, writer.stats.syncs]).toEqual([1, 0, syncsAtOpen]);
    await writer.flush(true);
    expect([writer.syncedRecords, writer.stats.syncs, writer.stats.flushes]).toEqual([1, syncsAtOpen + 1, 1]);
    await writer.flush(true); // Nothing new: no system call.
    expect(writer.stats.syncs).toBe(syncsAtOpen + 1);
    await writer.close();
  });
});

describe('WAL writer arguments', () => {
  it('rejects bad arguments with ERR_BAD_ARGUMENT and use after close with ERR_CLOSED', async () => {
    const dir = await temporaryLogDirectory();
    const bad = (error: unknown) => isLightningError(error, 'ERR_BAD_ARGUMENT');
    await expect(WalWriter.open(dir, { epoch: 0, worker: 0 })).rejects.toSatisfy(bad);
    await expect(WalWriter.open(dir, { epoch: 1, worker: -1 })).rejects.toSatisfy(bad);
    await expect(WalWriter.open(dir, { epoch: 1, worker: 0x1_0000 })).rejects.toSatisfy(bad);
    await expect(WalWriter.open(dir, { epoch: 1, worker: 0 }, { segmentTargetBytes: 100 })).rejects.toSatisfy(
      bad,
    );
    const { writer, log } = await openPartitionLog(dir, 0, 1);
    expect(() => new PartitionLog(writer, 0, 0)).toThrow(/nextLsn/);
    expect(() => new PartitionLog(writer, -1, 1)).toThrow(/partition/);
    expect(() => log.append(9 as WalRecordType, [Buffer.alloc(1)])).toThrow(/unknown WAL record type/);
    expect(() => log.append(recordTypeOperation, [])).toThrow(/non-empty/);
    expect(() => log.append(recordTypeOperation, ['text' as unknown as Uint8Array])).toThrow(/Uint8Array/);
    expect(log.nextLsn).toBe(1); // Nothing was appended by the failed calls.
    expect(writer.pendingBytes).toBe(0);
    await writer.close();
    expect(() => log.append(recordTypeOperation, [Buffer.alloc(1)])).toThrow(/closed/);
    await expect(writer.flush(true)).rejects.toSatisfy((error) => isLightningError(error, 'ERR_CLOSED'));
    await writer.close(); // Idempotent.
    const none = () => {};
    await expect(readWal(dir, { partitions: new Map([[0, 0]]), onRecord: none })).rejects.toSatisfy(bad);
    await expect(readWal(dir, { beforeEpoch: 0, partitions: new Map(), onRecord: none })).rejects.toSatisfy(
      bad,
    );
  });
});
