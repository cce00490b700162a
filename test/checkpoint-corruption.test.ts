/**
 * A damaged checkpoint is never read as a valid one: a flipped byte anywhere, a truncation at any
 * point, a missing or reordered block, all end in ERR_CORRUPTION naming the file (and for a bad block
 * its byte offset). Leftover temporary files are ignored.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the describe name>.
 */
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LightningError } from '../src/shared-memory/index.js';
import {
  blockHeaderBytes,
  checkpointFooterBytes,
  checkpointHeaderBytes,
  kBlockCompressedBytes,
  kHeaderFormatVersion,
} from '../src/storage/checkpoint/checkpoint-format.js';
import {
  listCheckpoints,
  readCheckpoint,
  readCheckpointHeader,
  writeCheckpoint,
} from '../src/storage/checkpoint/index.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x5eedc0de);

let dir: string;
/** A pristine checkpoint of a few blocks, and where each of its blocks starts. */
let pristine: Buffer;
let blockOffsets: number[];
let entryCount: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-checkpoint-corruption-'));
  const random = mulberry32(seed);
  const entries: [Buffer, Buffer][] = [];
  for (let i = 0; i < 3000; i++) {
    entries.push([
      Buffer.from(`key:${String(i).padStart(6, '0')}`),
      randomBytes(random, 20 + (random() % 60)),
    ]);
  }
  entryCount = entries.length;
  const result = await writeCheckpoint(join(dir, 'pristine'), 4, 0x1234n, [entries]);
  pristine = await readFile(result.path);
  blockOffsets = [];
  for (let at = checkpointHeaderBytes; at < pristine.length - checkpointFooterBytes; ) {
    blockOffsets.push(at);
    at += blockHeaderBytes + pristine.readUInt32LE(at + kBlockCompressedBytes);
  }
  expect(blockOffsets.length).toBe(result.blocks);
  expect(result.blocks).toBeGreaterThanOrEqual(3);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Reads the whole file and returns the error it fails with, or null when it reads cleanly. */
async function readError(file: string): Promise<LightningError | null> {
  let entries = 0;
  try {
    for await (const batch of readCheckpoint(file)) entries += batch.length;
  } catch (error) {
    expect(error).toBeInstanceOf(LightningError);
    return error as LightningError;
  }
  expect(entries).toBe(entryCount);
  return null;
}

let fileNumber = 0;
async function damaged(bytes: Uint8Array): Promise<string> {
  const file = join(dir, `damaged-${fileNumber++}.ckp`);
  await writeFile(file, bytes);
  return file;
}

function flipped(position: number, mask = 0x01): Buffer {
  const copy = Buffer.from(pristine);
  copy[position]! ^= mask;
  return copy;
}

describe(`checkpoint corruption (seed ${seed}, override with LIGHTNING_SEED)`, () => {
  it('the pristine file reads cleanly', async () => {
    expect(await readError(await damaged(pristine))).toBeNull();
  });

  it('a flipped byte in a block names the file and the byte offset of the block', async () => {
    for (const [index, offset] of blockOffsets.entries()) {
      const file = await damaged(flipped(offset + blockHeaderBytes + 40, 0x80));
      const error = await readError(file);
      expect(error?.code).toBe('ERR_CORRUPTION');
      expect(error?.message).toContain(file);
      expect(error?.message).toContain(`byte offset ${offset}: block ${index}: checksum mismatch`);
    }
  });

  it('any flipped byte anywhere is detected (every header and footer byte, sampled block bytes)', async () => {
    const random = mulberry32(seed ^ 0xf11b);
    const positions = new Set<number>();
    for (let i = 0; i < checkpointHeaderBytes + blockHeaderBytes; i++) positions.add(i);
    for (let i = 1; i <= checkpointFooterBytes; i++) positions.add(pristine.length - i);
    for (const offset of blockOffsets)
      for (let i = 0; i < blockHeaderBytes + 8; i++) positions.add(offset + i);
    for (let i = 0; i < 500; i++) positions.add(random() % pristine.length);
    for (const position of positions) {
      const mask = 1 << (random() % 8);
      const error = await readError(await damaged(flipped(position, mask)));
      const versionField = position >= kHeaderFormatVersion && position < kHeaderFormatVersion + 4;
      if (error?.code !== (versionField ? 'ERR_FORMAT_VERSION' : 'ERR_CORRUPTION')) {
        expect.fail(`flipping mask ${mask} at byte ${position} gave ${error?.message ?? 'a clean read'}`);
      }
    }
  });

  it('a truncated file is an incomplete checkpoint at every cut point (sampled across the last block)', async () => {
    const random = mulberry32(seed ^ 0x7c07);
    const lastBlock = blockOffsets[blockOffsets.length - 1]!;
    const cuts = new Set<number>([0, 1, checkpointHeaderBytes - 1, checkpointHeaderBytes, blockOffsets[1]!]);
    for (let cut = pristine.length - checkpointFooterBytes - blockHeaderBytes; cut < pristine.length; cut++) {
      cuts.add(cut);
    }
    for (let cut = lastBlock; cut < lastBlock + blockHeaderBytes + 4; cut++) cuts.add(cut);
    // A fixed number of draws, not "until 300 distinct": a small last block has fewer cut points.
    for (let i = 0; i < 250; i++) cuts.add(lastBlock + (random() % (pristine.length - lastBlock)));
    const file = join(dir, 'truncated.ckp');
    for (const cut of [...cuts].sort((a, b) => b - a)) {
      await writeFile(file, pristine);
      await truncate(file, cut);
      const error = await readError(file);
      if (error?.code !== 'ERR_CORRUPTION' || !error.message.includes('incomplete checkpoint')) {
        expect.fail(`cut at ${cut} of ${pristine.length}: ${error?.message ?? 'a clean read'}`);
      }
      await expect(readCheckpointHeader(file)).rejects.toThrow(/ERR_CORRUPTION: .*incomplete checkpoint/);
    }
  });

  it('a block cut out of the middle, with the footer intact, is caught by the footer counts', async () => {
    const without = Buffer.concat([
      pristine.subarray(0, blockOffsets[1]),
      pristine.subarray(blockOffsets[2]),
    ]);
    const error = await readError(await damaged(without));
    expect(error?.code).toBe('ERR_CORRUPTION');
    expect(error?.message).toContain(`byte offset ${without.length - checkpointFooterBytes}: footer says`);
  });

  it('two blocks swapped are caught by the key order check', async () => {
    const [a, b, c] = blockOffsets as [number, number, number];
    const swapped = Buffer.concat([
      pristine.subarray(0, a),
      pristine.subarray(b, c),
      pristine.subarray(a, b),
      pristine.subarray(c),
    ]);
    const error = await readError(await damaged(swapped));
    expect(error?.code).toBe('ERR_CORRUPTION');
    expect(error?.message).toContain(`byte offset ${a + c - b}: block 1: entry 0 is out of key order`);
  });

  it('a newer format version is ERR_FORMAT_VERSION; a file of another kind is ERR_CORRUPTION', async () => {
    const newer = Buffer.from(pristine);
    newer.writeUInt32LE(2, kHeaderFormatVersion);
    await expect(readCheckpointHeader(await damaged(newer))).rejects.toThrow(
      /ERR_FORMAT_VERSION: .*version 2/,
    );
    const other = await damaged(
      Buffer.from('{"not":"a checkpoint, but long enough to have a header and footer"}'),
    );
    await expect(readCheckpointHeader(other)).rejects.toThrow(/ERR_CORRUPTION: .*bad magic/);
  });

  it('a leftover .tmp file is ignored by listings and replaced by the next write at its LSN', async () => {
    const partitionDir = join(dir, 'leftover');
    const done = await writeCheckpoint(partitionDir, 0, 5n, [[[Buffer.from('a'), Buffer.from('1')]]]);
    const leftover = join(partitionDir, 'checkpoint-000000000000000a.ckp.tmp');
    await writeFile(leftover, pristine.subarray(0, 5000));
    expect((await listCheckpoints(partitionDir)).map((c) => c.name)).toEqual([done.file]);
    expect(await listCheckpoints(partitionDir, { includeTemporary: true })).toEqual([
      { name: done.file, startLsn: 5n, temporary: false },
      { name: 'checkpoint-000000000000000a.ckp.tmp', startLsn: 10n, temporary: true },
    ]);
    const next = await writeCheckpoint(partitionDir, 0, 10n, [[[Buffer.from('b'), Buffer.from('2')]]]);
    expect(await readCheckpointHeader(next.path)).toMatchObject({
      partition: 0,
      startLsn: 10n,
      entryCount: 1,
    });
    expect((await listCheckpoints(partitionDir, { includeTemporary: true })).map((c) => c.name)).toEqual([
      done.file,
      next.file,
    ]);
  });
});
