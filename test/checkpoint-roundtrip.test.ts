/**
 * Checkpoint files round trip: what writeCheckpoint is given, readCheckpoint returns, in the same
 * order, for empty, tiny, large and oversized inputs; bad input is refused without leaving a file.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the describe name>.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyBytesMax, LightningError, valueBytesMax } from '../src/shared-memory/index.js';
import {
  blockTargetBytes,
  type CheckpointBatch,
  readCheckpoint,
  readCheckpointHeader,
  verifyCheckpoint,
  writeCheckpoint,
} from '../src/storage/checkpoint/index.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x0c4ec1d0);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-checkpoint-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Entry = [Buffer, Buffer];

async function readAll(file: string): Promise<{ entries: Entry[]; batches: number[] }> {
  const entries: Entry[] = [];
  const batches: number[] = [];
  for await (const batch of readCheckpoint(file)) {
    batches.push(batch.length);
    entries.push(...batch);
  }
  return { entries, batches };
}

/** Yields `entries` in batches of `size`, asynchronously, as a partition owner's walk would. */
async function* inBatches(entries: readonly Entry[], size: number): AsyncGenerator<CheckpointBatch> {
  for (let i = 0; i < entries.length; i += size) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    yield entries.slice(i, i + size);
  }
}

function expectSameEntries(actual: Entry[], expected: readonly Entry[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    // Compare bytes, not objects: a mismatch should name the index rather than dump two arrays.
    if (!actual[i]![0].equals(expected[i]![0]) || !actual[i]![1].equals(expected[i]![1])) {
      expect.fail(`entry ${i} differs`);
    }
  }
}

async function expectCode(promise: Promise<unknown>, code: LightningError['code']): Promise<LightningError> {
  const error = await promise.then(
    () => expect.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LightningError);
  expect((error as LightningError).code).toBe(code);
  return error as LightningError;
}

const key = (i: number) => Buffer.from(`key:${String(i).padStart(8, '0')}`);

describe(`checkpoint round trip (seed ${seed}, override with LIGHTNING_SEED)`, () => {
  it('an empty checkpoint is a header and a footer and reads back as nothing', async () => {
    const result = await writeCheckpoint(dir, 3, 0n, []);
    expect(result).toMatchObject({
      file: 'checkpoint-0000000000000000.ckp',
      entries: 0,
      blocks: 0,
      bytes: 52,
    });
    expect(await readAll(result.path)).toEqual({ entries: [], batches: [] });
    expect(await readCheckpointHeader(result.path)).toEqual({
      partition: 3,
      startLsn: 0n,
      blockCount: 0,
      entryCount: 0,
      uncompressedBytes: 0,
      fileBytes: 52,
    });
  });

  it('one entry', async () => {
    const entries: Entry[] = [[Buffer.from('k'), Buffer.from('v')]];
    const result = await writeCheckpoint(dir, 0, 7n, [entries]);
    expect(result).toMatchObject({ entries: 1, blocks: 1, uncompressedBytes: 8 });
    expect(await readAll(result.path)).toEqual({ entries, batches: [1] });
  });

  it('100k small entries come back in order, in blocks of about 64 KiB', async () => {
    const random = mulberry32(seed);
    const entries: Entry[] = [];
    for (let i = 0; i < 100_000; i++) entries.push([key(i), randomBytes(random, random() % 48)]);
    const started = performance.now();
    const result = await writeCheckpoint(dir, 1, 123_456n, inBatches(entries, 1000));
    const wroteMs = performance.now() - started;
    const { entries: read, batches } = await readAll(result.path);
    const readMs = performance.now() - started - wroteMs;
    expectSameEntries(read, entries);
    expect(result.entries).toBe(100_000);
    expect(batches.length).toBe(result.blocks);
    const uncompressed = entries.reduce((sum, [k, v]) => sum + 6 + k.length + v.length, 0);
    expect(result.uncompressedBytes).toBe(uncompressed);
    // Blocks are cut at the target size: each but the last is short of it by less than one entry.
    expect(result.blocks).toBeGreaterThanOrEqual(Math.ceil(uncompressed / blockTargetBytes));
    expect(result.blocks).toBeLessThanOrEqual(Math.ceil(uncompressed / (blockTargetBytes - 6 - 12 - 47)));
    console.log(
      `100k entries: ${result.bytes} bytes in ${result.blocks} blocks; write ${wroteMs.toFixed(0)} ms, read ${readMs.toFixed(0)} ms`,
    );
  });

  it('empty keys and empty values', async () => {
    const empty = Buffer.alloc(0);
    const entries: Entry[] = [
      [empty, empty],
      [Buffer.from([0]), empty],
      [Buffer.from([0, 0]), Buffer.from('x')],
      [Buffer.from('a'), empty],
    ];
    const result = await writeCheckpoint(dir, 0, 1n, [entries.slice(0, 1), [], entries.slice(1)]);
    expect(result.uncompressedBytes).toBe(4 * 6 + 4 + 1);
    expect((await readAll(result.path)).entries).toEqual(entries);
  });

  it('a 5 MB value gets a block of its own between ordinary blocks', async () => {
    const random = mulberry32(seed ^ 5);
    const big = randomBytes(random, 5 * 1024 * 1024);
    const entries: Entry[] = [];
    for (let i = 0; i < 3000; i++) entries.push([key(i), i === 1500 ? big : randomBytes(random, 30)]);
    const result = await writeCheckpoint(dir, 0, 2n, inBatches(entries, 700));
    const { entries: read, batches } = await readAll(result.path);
    expectSameEntries(read, entries);
    // The blocks before the big entry are closed early, the big entry is alone, then small again.
    const bigBatch = batches.indexOf(1);
    expect(batches.slice(0, bigBatch).reduce((a, b) => a + b, 0)).toBe(1500);
    expect(batches[bigBatch + 1]).toBeGreaterThan(1);
  });

  it('a value at the 64 MiB limit round trips; one byte more is refused', async () => {
    const value = Buffer.alloc(valueBytesMax);
    for (let i = 0; i < value.length; i += 4096) value[i] = i & 0xff;
    const result = await writeCheckpoint(dir, 0, 3n, [[[Buffer.from('big'), value]]]);
    const { entries } = await readAll(result.path);
    expect(entries.length).toBe(1);
    expect(entries[0]![1].equals(value)).toBe(true);
    await expectCode(
      writeCheckpoint(dir, 0, 4n, [[[Buffer.from('big'), Buffer.alloc(valueBytesMax + 1)]]]),
      'ERR_VALUE_TOO_LARGE',
    );
  });

  it('batches may reuse and mutate their buffers after handing them over', async () => {
    const keyBuffer = Buffer.alloc(4);
    const valueBuffer = Buffer.alloc(2);
    const batch: [Buffer, Buffer][] = [[keyBuffer, valueBuffer]];
    async function* reused(): AsyncGenerator<CheckpointBatch> {
      for (let i = 0; i < 50; i++) {
        keyBuffer.writeUInt32BE(i);
        valueBuffer.writeUInt16BE(i * 3);
        yield batch;
      }
    }
    const result = await writeCheckpoint(dir, 0, 5n, reused());
    const { entries } = await readAll(result.path);
    expect(entries.map(([k, v]) => [k.readUInt32BE(), v.readUInt16BE()])).toEqual(
      Array.from({ length: 50 }, (_, i) => [i, i * 3]),
    );
  });

  it('the event loop keeps turning while a checkpoint is written', async () => {
    const entries: Entry[] = [];
    for (let i = 0; i < 50_000; i++) entries.push([key(i), Buffer.alloc(64, i)]);
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    try {
      await writeCheckpoint(dir, 0, 6n, [entries]);
    } finally {
      clearInterval(timer);
    }
    // One synchronous batch of 50k entries, yet compression and writes yield to timers between blocks.
    expect(turns).toBeGreaterThan(0);
  });

  it('the largest start LSN names the file with 16 hex digits', async () => {
    const startLsn = (1n << 64n) - 1n;
    const result = await writeCheckpoint(dir, 0xffff_ffff, startLsn, [
      [[Buffer.from('a'), Buffer.from('b')]],
    ]);
    expect(result.file).toBe('checkpoint-ffffffffffffffff.ckp');
    expect(await verifyCheckpoint(result.path)).toMatchObject({
      partition: 0xffff_ffff,
      startLsn,
      entryCount: 1,
    });
  });

  it('refuses unsorted or duplicate keys, oversized keys and bad arguments, leaving no file', async () => {
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    await expectCode(writeCheckpoint(dir, 0, 1n, [[[b, a]], [[a, a]]]), 'ERR_BAD_ARGUMENT');
    await expectCode(
      writeCheckpoint(dir, 0, 1n, [
        [
          [a, a],
          [a, b],
        ],
      ]),
      'ERR_BAD_ARGUMENT',
    );
    await expectCode(
      writeCheckpoint(dir, 0, 1n, [[[Buffer.alloc(keyBytesMax + 1), a]]]),
      'ERR_KEY_TOO_LARGE',
    );
    const notPairs = [[['a', 'b']]] as unknown as CheckpointBatch[];
    await expectCode(writeCheckpoint(dir, 0, 1n, notPairs), 'ERR_BAD_ARGUMENT');
    await expectCode(writeCheckpoint(dir, -1, 1n, []), 'ERR_BAD_ARGUMENT');
    await expectCode(writeCheckpoint(dir, 0, -1n, []), 'ERR_BAD_ARGUMENT');
    await expectCode(writeCheckpoint(dir, 0, 1n << 64n, []), 'ERR_BAD_ARGUMENT');
    await expectCode(writeCheckpoint(dir, 0, 1 as unknown as bigint, []), 'ERR_BAD_ARGUMENT');
    expect(await readdir(dir)).toEqual([]);
  });

  it('an error thrown by the entry source removes the temporary file', async () => {
    async function* failing(): AsyncGenerator<CheckpointBatch> {
      yield [[Buffer.from('a'), Buffer.from('1')]];
      throw new Error('walk failed');
    }
    await expect(writeCheckpoint(dir, 0, 9n, failing())).rejects.toThrow('walk failed');
    expect(await readdir(dir)).toEqual([]);
  });
});
