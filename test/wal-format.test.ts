/**
 * The write-ahead log's writer and reader together: records written in many batches (empty payloads,
 * 5 MB payloads, every record type) come back byte for byte in LSN order across segment rotations;
 * concurrent flushes complete in call order; reopening starts a new segment; bad arguments are typed.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLightningError } from '../src/shared-memory/index.js';
import {
  readWal,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
  segmentFileName,
  segmentHeaderBytes,
  type WalRecord,
  type WalRecordType,
  WalWriter,
} from '../src/storage/wal/index.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { readLog, segmentNames, useTemporaryDirectories } from './support/wal-fixtures.js';

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
  return join(base, 'partition-3', 'wal'); // Nested and missing: the writer creates it.
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
  it(`many batches with empty and 5 MB payloads come back in order across rotations (seed ${seed})`, async () => {
    const random = mulberry32(seed);
    const dir = await temporaryLogDirectory();
    const writer = await WalWriter.open(dir, 3, 1, { segmentTargetBytes: smallSegmentBytes });
    const expected: Expected[] = [];
    const bigAt = new Set([40, 41, 170]); // Two big batches in a row, then one later.
    for (let batch = 0; batch < 240; batch++) {
      const type = recordTypes[random() % recordTypes.length]!;
      const count = bigAt.has(batch) ? 1 + (random() % 2) : 1 + (random() % 24);
      const payloads: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const roll = random() % 10;
        const length = bigAt.has(batch) ? fiveMegabytes + (random() % 9) : roll === 0 ? 0 : random() % 400;
        payloads.push(randomPayload(random, length));
      }
      const { firstLsn, lastLsn } = writer.append(type, payloads);
      expect(firstLsn).toBe(expected.length + 1);
      expect(lastLsn).toBe(firstLsn + count - 1);
      payloads.forEach((payload, i) => void expected.push({ lsn: firstLsn + i, type, payload }));
      if (random() % 3 !== 0) await writer.flush(random() % 2 === 0);
    }
    await writer.close();

    const stats = writer.stats;
    const names = await segmentNames(dir);
    expect(names.length).toBe(stats.segmentsCreated);
    expect(names.length).toBeGreaterThan(8);
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
    expect(writer.syncedLsn).toBe(expected.length);

    const { records, result } = await readAll(dir, 3);
    expectSameRecords(records, expected);
    expect(result).toEqual({
      segments: names.length,
      records: expected.length,
      lastLsn: expected.length,
      nextLsn: expected.length + 1,
      tornTail: null,
    });
    // Each segment is named by its first record's LSN, and every record in it follows in order.
    for (const name of names) {
      const first = records.find((record) => record.file === join(dir, name));
      if (first !== undefined) expect(name).toBe(segmentFileName(first.lsn));
    }
  });

  it('reading from an LSN skips earlier segments without opening them', async () => {
    const random = mulberry32(seed ^ 0x1234);
    const dir = await temporaryLogDirectory();
    const writer = await WalWriter.open(dir, 0, 1, { segmentTargetBytes: 4096 });
    for (let batch = 0; batch < 60; batch++) {
      writer.append(recordTypeOperation, [randomPayload(random, 200), randomPayload(random, 300)]);
      await writer.flush(false);
    }
    await writer.close();
    const names = await segmentNames(dir);
    const { records: all } = await readAll(dir, 0);
    const fromLsn = all[all.length - 7]!.lsn;
    // Damage the first segment's records: a read that starts later must not notice.
    const first = join(dir, names[0]!);
    const bytes = await readFile(first);
    bytes[segmentHeaderBytes + 20] = bytes[segmentHeaderBytes + 20]! ^ 0xff;
    await writeFile(first, bytes);
    const { records, result } = await readAll(dir, 0, fromLsn);
    expect(records.map((record) => record.lsn)).toEqual(all.slice(-7).map((record) => record.lsn));
    expect(result.segments).toBeLessThan(names.length);
    expect(result.nextLsn).toBe(all.length + 1);
    // A log that starts after fromLsn has lost the records in between.
    await rm(first);
    await expect(readAll(dir, 0, 1)).rejects.toSatisfy(
      (error) => isLightningError(error, 'ERR_CORRUPTION') && error.message.includes(names[1]!),
    );
  });

  it('reopening continues at nextLsn in a new segment and never touches an old one', async () => {
    const dir = await temporaryLogDirectory();
    const writer = await WalWriter.open(dir, 1, 100);
    writer.append(recordTypeOperation, [Buffer.from('a'), Buffer.from('b')]);
    await writer.close();
    const before = await readFile(join(dir, segmentFileName(100)));
    const { result } = await readAll(dir, 1);
    expect(result.nextLsn).toBe(102);

    const again = await WalWriter.open(dir, 1, result.nextLsn!);
    expect(again.append(recordTypePrepare, [Buffer.from('c')])).toEqual({ firstLsn: 102, lastLsn: 102 });
    await again.close();
    expect(await readFile(join(dir, segmentFileName(100)))).toEqual(before);
    expect(await segmentNames(dir)).toEqual([segmentFileName(100), segmentFileName(102)]);
    const { records } = await readAll(dir, 1, 100);
    expect(records.map((record) => [record.lsn, record.payload.toString()])).toEqual([
      [100, 'a'],
      [101, 'b'],
      [102, 'c'],
    ]);
  });

  it('an empty segment is replaced when reopened at its LSN; one with records is refused', async () => {
    const dir = await temporaryLogDirectory();
    await (await WalWriter.open(dir, 1, 7)).close(); // A run that wrote nothing.
    expect((await readAll(dir, 1)).result).toMatchObject({
      segments: 1,
      records: 0,
      lastLsn: null,
      nextLsn: 7,
    });
    const writer = await WalWriter.open(dir, 1, 7);
    writer.append(recordTypeOperation, [Buffer.alloc(10)]);
    await writer.close();
    expect(await segmentNames(dir)).toEqual([segmentFileName(7)]);
    await expect(WalWriter.open(dir, 1, 7)).rejects.toSatisfy((error) =>
      isLightningError(error, 'ERR_BAD_ARGUMENT'),
    );
    await expect(WalWriter.open(dir, 1, 6)).rejects.toSatisfy((error) =>
      isLightningError(error, 'ERR_BAD_ARGUMENT'),
    );
    // A segment whose header never fully reached the disk is replaced as well.
    await truncate(join(dir, segmentFileName(7)), segmentHeaderBytes - 5);
    await (await WalWriter.open(dir, 1, 7)).close();
    expect((await stat(join(dir, segmentFileName(7)))).size).toBe(segmentHeaderBytes);
  });
});

describe('WAL flush ordering', () => {
  it(`concurrent flushes complete in call order and each covers what was appended before it (seed ${seed})`, async () => {
    const random = mulberry32(seed ^ 0x77);
    const dir = await temporaryLogDirectory();
    const writer = await WalWriter.open(dir, 2, 1, { segmentTargetBytes: 8192 });
    const completed: number[] = [];
    const flushes: Promise<void>[] = [];
    let appended = 0;
    for (let call = 0; call < 200; call++) {
      appended = writer.append(recordTypeOperation, [randomPayload(random, random() % 700)]).lastLsn;
      const sync = random() % 4 === 0;
      const covered = appended;
      flushes.push(
        writer.flush(sync).then(() => {
          completed.push(call);
          expect(writer.writtenLsn).toBeGreaterThanOrEqual(covered);
          if (sync) expect(writer.syncedLsn).toBeGreaterThanOrEqual(covered);
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
    const writer = await WalWriter.open(dir, 0, 1);
    const syncsAtOpen = writer.stats.syncs; // The new segment's header.
    writer.append(recordTypeOperation, [Buffer.from('x')]);
    await writer.flush(false);
    expect([writer.writtenLsn, writer.syncedLsn, writer.stats.syncs]).toEqual([1, 0, syncsAtOpen]);
    await writer.flush(true);
    expect([writer.syncedLsn, writer.stats.syncs, writer.stats.flushes]).toEqual([1, syncsAtOpen + 1, 1]);
    await writer.flush(true); // Nothing new: no system call.
    expect(writer.stats.syncs).toBe(syncsAtOpen + 1);
    await writer.close();
  });
});

describe('WAL writer arguments', () => {
  it('rejects bad arguments with ERR_BAD_ARGUMENT and use after close with ERR_CLOSED', async () => {
    const dir = await temporaryLogDirectory();
    const bad = (error: unknown) => isLightningError(error, 'ERR_BAD_ARGUMENT');
    await expect(WalWriter.open(dir, 0, 0)).rejects.toSatisfy(bad);
    await expect(WalWriter.open(dir, -1, 1)).rejects.toSatisfy(bad);
    await expect(WalWriter.open(dir, 0, 1, { segmentTargetBytes: 100 })).rejects.toSatisfy(bad);
    const writer = await WalWriter.open(dir, 0, 1);
    expect(() => writer.append(9 as WalRecordType, [Buffer.alloc(1)])).toThrow(/unknown WAL record type/);
    expect(() => writer.append(recordTypeOperation, [])).toThrow(/non-empty/);
    expect(() => writer.append(recordTypeOperation, ['text' as unknown as Uint8Array])).toThrow(/Uint8Array/);
    expect(writer.nextLsn).toBe(1); // Nothing was appended by the failed calls.
    await writer.close();
    expect(() => writer.append(recordTypeOperation, [Buffer.alloc(1)])).toThrow(/closed/);
    await expect(writer.flush(true)).rejects.toSatisfy((error) => isLightningError(error, 'ERR_CLOSED'));
    await writer.close(); // Idempotent.
    await expect(readWal(dir, 0, { fromLsn: 0, onRecord: () => {} })).rejects.toSatisfy(bad);
  });
});
