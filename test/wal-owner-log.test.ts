/**
 * One write-ahead log per owner worker per run: segment removal waits until every partition with
 * records in a segment has checkpointed past them, goes oldest first, never touches a segment a live
 * writer appends to, and tolerates two owners removing the same segment; and through open(), a
 * database whose worker count changes between opens (2, then 1, then 2 workers, writing each time,
 * with a checkpoint in between) keeps every write, its partitions' records spread over the logs of
 * several runs and workers.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { readManifest } from '../src/storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../src/storage/layout.js';
import {
  PartitionLog,
  readWal,
  recordTypeOperation,
  SegmentRemoval,
  WalWriter,
} from '../src/storage/wal/index.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { segmentNames, useTemporaryDirectories } from './support/wal-fixtures.js';

const seed = seedFromEnv(0x0a11_1065);
const temporaryDirectory = useTemporaryDirectories('lightning-owner-log-');

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('segment removal', () => {
  it(`removes a segment only once every partition in it checkpointed past it, oldest first (seed ${seed})`, async () => {
    const random = mulberry32(seed);
    const dir = await temporaryDirectory();
    // Run 1: partitions 0 and 1 share the first segment; the later segments hold partition 0 only.
    const runOne = await WalWriter.open(dir, { epoch: 1, worker: 0 }, { segmentTargetBytes: 4096 });
    const zero = new PartitionLog(runOne, 0, 1);
    const one = new PartitionLog(runOne, 1, 1);
    one.append(recordTypeOperation, [randomBytes(random, 100), randomBytes(random, 100)]);
    for (let i = 0; i < 100; i++) {
      zero.append(recordTypeOperation, [randomBytes(random, 100 + (random() % 200))]);
      await runOne.flush(false);
    }
    await runOne.close();
    const runOneSegments = (await segmentNames(dir)).map((name) => join(dir, name));
    expect(runOneSegments.length).toBeGreaterThanOrEqual(4);
    const lastOfOne = one.nextLsn - 1;
    const lastOfZero = zero.nextLsn - 1;

    // Run 2 reads the earlier logs, as an owner does at start, and writes a log of its own.
    const earlier = await readWal(dir, { beforeEpoch: 2, partitions: new Map(), onRecord: () => {} });
    expect(earlier.contents.map((segment) => segment.path)).toEqual(runOneSegments);
    expect([...earlier.contents[0]!.lastLsns.keys()].sort()).toEqual([0, 1]);
    const runTwo = await WalWriter.open(dir, { epoch: 2, worker: 0 }, { segmentTargetBytes: 4096 });
    const zeroAgain = new PartitionLog(runTwo, 0, zero.nextLsn);
    const removal = new SegmentRemoval(earlier.contents, runTwo);
    const starts = new Map<number, number>([
      [0, 0],
      [1, 0],
    ]);
    const checkpointStart = async (partition: number) => starts.get(partition) ?? 0;
    const stillThere = async () =>
      (await Promise.all(runOneSegments.map(exists))).filter((present) => present).length;

    // Nothing is checkpointed: nothing goes.
    expect(await removal.removeObsolete(checkpointStart)).toBe(0);
    // Partition 0 checkpointed past everything: its segments wait behind the first one, which
    // partition 1 still needs (a log loses segments oldest first, so it never has a hole).
    starts.set(0, lastOfZero + 1);
    expect(await removal.removeObsolete(checkpointStart)).toBe(0);
    // Partition 1 checkpointed up to, not past, its last record there: still nothing.
    starts.set(1, lastOfOne);
    expect(await removal.removeObsolete(checkpointStart)).toBe(0);
    expect(await stillThere()).toBe(runOneSegments.length);
    // Past it: the whole earlier log goes.
    starts.set(1, lastOfOne + 1);
    expect(await removal.removeObsolete(checkpointStart)).toBe(runOneSegments.length);
    expect(await stillThere()).toBe(0);

    // The live writer's segments: closed ones go once checkpointed past, the open one never.
    for (let i = 0; i < 40; i++) {
      zeroAgain.append(recordTypeOperation, [randomBytes(random, 300)]);
      await runTwo.flush(false);
    }
    const closed = runTwo.closedSegments.map((segment) => segment.path);
    expect(closed.length).toBeGreaterThanOrEqual(2);
    starts.set(0, zeroAgain.nextLsn);
    expect(await removal.removeObsolete(checkpointStart)).toBe(closed.length);
    for (const path of closed) expect(await exists(path)).toBe(false);
    expect(await exists(runTwo.activeSegmentPath)).toBe(true);
    expect(removal.candidates).toBe(0);
    await runTwo.close();
    expect((await segmentNames(dir)).length).toBe(1);
  });

  it('two owners removing the same earlier segments both succeed', async () => {
    const dir = await temporaryDirectory();
    const runOne = await WalWriter.open(dir, { epoch: 1, worker: 0 }, { segmentTargetBytes: 4096 });
    const log = new PartitionLog(runOne, 3, 1);
    for (let i = 0; i < 30; i++) {
      log.append(recordTypeOperation, [Buffer.alloc(400, i)]);
      await runOne.flush(false);
    }
    await runOne.close();
    const earlier = await readWal(dir, { beforeEpoch: 2, partitions: new Map(), onRecord: () => {} });
    const owners = await Promise.all(
      [0, 1].map(async (worker) => {
        const writer = await WalWriter.open(dir, { epoch: 2, worker });
        return { writer, removal: new SegmentRemoval(earlier.contents, writer) };
      }),
    );
    const past = async () => log.nextLsn;
    await Promise.all(owners.map(({ removal }) => removal.removeObsolete(past)));
    for (const segment of earlier.contents) expect(await exists(segment.path)).toBe(false);
    for (const { writer } of owners) {
      expect(await exists(writer.activeSegmentPath)).toBe(true);
      await writer.close();
    }
  });
});

describe('worker count changes between opens', () => {
  // Four opens of durable sequential writes: allowed more than the default on a loaded machine.
  it(`2, then 1, then 2 workers, writing each time and checkpointing once: every write is there (seed ${seed})`, {
    timeout: 300_000,
  }, async () => {
    const random = mulberry32(seed ^ 0x2121);
    const dir = join(await temporaryDirectory(), 'db');
    const partitions = 8;
    const expected = new Map<string, string>();
    const runs = [2, 1, 2];
    for (const [run, workers] of runs.entries()) {
      const db = await open(dir, { partitions, workers });
      try {
        for (const [key, value] of expected) expect(db.getString(key), `run ${run}: ${key}`).toBe(value);
        for (let i = 0; i < 80; i++) {
          const key = `k${random() % 200}`;
          const value = `run ${run} write ${i} ${random()}`;
          if (random() % 10 === 0) {
            await db.del(key);
            expected.delete(key);
          } else {
            await db.put(key, value);
            expected.set(key, value);
          }
          // One checkpoint in the middle of the one-worker run.
          if (workers === 1 && i === 40) await db.checkpoint();
        }
        const batch = Array.from({ length: 16 }, (_, i) => ({
          type: 'put' as const,
          key: `batch-${run}-${i}`,
          value: `b${i}`,
        }));
        await db.batch(batch);
        for (const { key, value } of batch) expected.set(key, value);
      } finally {
        await db.close();
      }
    }
    const db = await open(dir, { partitions, workers: 1 });
    try {
      for (const [key, value] of expected) expect(db.getString(key), key).toBe(value);
      expect([...db.range()].length).toBe(expected.size);
    } finally {
      await db.close();
    }
    // The checkpoint in run 2 covered everything run 1's two workers wrote: their logs are gone.
    // Run 2's log (its open segment took writes after the checkpoint), run 3's two, and the last
    // reopen's remain.
    const names = await segmentNames(walDirectory(dir));
    const logOf = (file: string) => {
      const name = file.slice(file.lastIndexOf('/') + 1);
      return `${Number.parseInt(name.slice(4, 20), 16)}/${Number.parseInt(name.slice(21, 25), 16)}`;
    };
    expect([...new Set(names.map(logOf))]).toEqual(['2/0', '3/0', '3/1', '4/0']);
    // From each partition's checkpoint on, its records are gap-free across the logs, and they lie in
    // the logs of different runs and workers.
    const starts = new Map<number, number>();
    for (let partition = 0; partition < partitions; partition++) {
      const manifest = await readManifest(partitionDirectory(dir, partition));
      starts.set(partition, Number(manifest!.checkpoints[0]!.startLsn));
    }
    const logsOf = new Map<number, Set<string>>();
    await readWal(walDirectory(dir), {
      partitions: starts,
      onRecord: (record) => {
        const set = logsOf.get(record.partition) ?? new Set<string>();
        set.add(logOf(record.file));
        logsOf.set(record.partition, set);
      },
    });
    const spread = [...logsOf.values()].filter((set) => set.has('2/0') && (set.has('3/0') || set.has('3/1')));
    expect(spread.length).toBeGreaterThan(0);
    // Without the checkpoints' start LSNs, the records the removed logs held are missing: the read
    // must say so rather than replay from the middle.
    const everything = new Map(Array.from({ length: partitions }, (_, partition) => [partition, 1]));
    await expect(readWal(walDirectory(dir), { partitions: everything, onRecord: () => {} })).rejects.toThrow(
      /are missing/,
    );
  });
});
