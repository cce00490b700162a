/**
 * The partition hash is part of the format: new databases route keys with xxh32 computed in
 * JavaScript (which must equal the reference xxh32 bit for bit), older databases keep xxh64, and the
 * hash each database was created with is what routes its keys, in every thread and after reopening.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { open } from '../src/index.js';
import { createPartitionRouter } from '../src/main/partition-router.js';
import { xxh32 } from '../src/main/xxh32.js';
import { readManifest } from '../src/storage/checkpoint/index.js';
import { metadataFileName, readMetadata } from '../src/storage/database-metadata.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x5eed32);
const directories: string[] = [];

function tempDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ldb-hash-'));
  directories.push(directory);
  return directory;
}

afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

/** The count of entries in each partition, from stats(). */
function entriesPerPartition(db: Awaited<ReturnType<typeof open>>): number[] {
  return db.stats().partitionStats.map((partition) => partition.entries);
}

/** Expected entries per partition when `keys` route by `partitionOf`. */
function expectedPerPartition(keys: string[], partitions: number, partitionOf: (key: Uint8Array) => number) {
  const counts = new Array<number>(partitions).fill(0);
  for (const key of keys) counts[partitionOf(Buffer.from(key))]!++;
  return counts;
}

/**
 * Rewrites an empty database as format version 2 wrote it: LIGHTNING.json version 2 and manifests
 * version 2, neither naming a hash (xxh64 was the only one).
 */
async function rewriteAsVersion2(directory: string): Promise<void> {
  const { h64ToString } = await xxhash();
  const metadataFile = join(directory, metadataFileName);
  const metadata = JSON.parse(await readFile(metadataFile, 'utf8')) as Record<string, unknown>;
  const v2 = {
    format: metadata.format,
    formatVersion: 2,
    partitions: metadata.partitions,
    hash: 'xxh64',
    createdAt: metadata.createdAt,
    databaseId: metadata.databaseId,
  };
  await writeFile(metadataFile, JSON.stringify({ ...v2, checksum: h64ToString(JSON.stringify(v2)) }));
  for (let partition = 0; partition < (metadata.partitions as number); partition++) {
    const file = join(partitionDirectory(directory, partition), 'MANIFEST.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(manifest.checkpoints, 'the database is empty').toEqual([]);
    const canonical = {
      format: manifest.format,
      formatVersion: 2,
      databaseId: manifest.databaseId,
      partitions: manifest.partitions,
      durable: manifest.durable,
      checkpoints: [],
    };
    await writeFile(file, JSON.stringify({ ...canonical, checksum: h64ToString(JSON.stringify(canonical)) }));
  }
}

describe('the partition hash', () => {
  it(`xxh32 in JavaScript equals xxhash-wasm's h32Raw over seeded random inputs of every length (seed ${seed})`, async () => {
    console.log(`partition-hash: seed ${seed}`);
    const { h32Raw } = await xxhash();
    const random = mulberry32(seed);
    let compared = 0;
    for (let length = 0; length <= 300; length++) {
      for (let round = 0; round < 20; round++) {
        const bytes = new Uint8Array(length);
        for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
        expect(xxh32(bytes), `length ${length}`).toBe(h32Raw(bytes));
        compared++;
      }
    }
    // Every byte value in every position of the tail loops, and the high bit set throughout.
    expect(xxh32(new Uint8Array(64).fill(0xff))).toBe(h32Raw(new Uint8Array(64).fill(0xff)));
    expect(compared).toBe(301 * 20);
  });

  it('a new database is created with xxh32 (LIGHTNING.json version 3, every manifest), and routes by it', async () => {
    const directory = tempDirectory();
    const partitions = 8;
    const keys = Array.from({ length: 400 }, (_, i) => `new:${i}`);
    const db = await open(directory, { partitions, workers: 2 });
    try {
      for (const key of keys) await db.put(key, key);
      const { h32Raw } = await xxhash();
      expect(entriesPerPartition(db)).toEqual(
        expectedPerPartition(keys, partitions, (key) => h32Raw(key) % partitions),
      );
    } finally {
      await db.close();
    }
    const metadata = await readMetadata(directory);
    expect(metadata).toMatchObject({ formatVersion: 3, hash: 'xxh32', partitions });
    for (let partition = 0; partition < partitions; partition++) {
      expect((await readManifest(partitionDirectory(directory, partition)))?.hash).toBe('xxh32');
    }
  });

  it('a database of format version 2 keeps xxh64: its keys route as before, also after reopening', async () => {
    const directory = tempDirectory();
    const partitions = 8;
    await (await open(directory, { partitions, workers: 2 })).close();
    await rewriteAsVersion2(directory);
    const keys = Array.from({ length: 400 }, (_, i) => `old:${i}`);
    const { h64Raw } = await xxhash();
    const expected = expectedPerPartition(keys, partitions, (key) =>
      Number(h64Raw(key) % BigInt(partitions)),
    );
    // The two hashes place these keys differently: the check below can tell them apart.
    const { h32Raw } = await xxhash();
    expect(expectedPerPartition(keys, partitions, (key) => h32Raw(key) % partitions)).not.toEqual(expected);

    const db = await open(directory);
    try {
      for (const key of keys) await db.put(key, key);
      expect(entriesPerPartition(db)).toEqual(expected);
      await db.checkpoint();
    } finally {
      await db.close();
    }
    expect(await readMetadata(directory)).toMatchObject({ formatVersion: 2, hash: 'xxh64' });
    // Manifests rewritten by the checkpoint are version 3 and name the hash the database has.
    for (let partition = 0; partition < partitions; partition++) {
      expect((await readManifest(partitionDirectory(directory, partition)))?.hash).toBe('xxh64');
    }
    const reopened = await open(directory);
    try {
      expect(entriesPerPartition(reopened)).toEqual(expected);
      for (const key of keys) expect(reopened.getString(key)).toBe(key);
      const router = await createPartitionRouter(partitions, 'xxh64');
      expect(
        keys.every((key) => reopened.partitionOf(Buffer.from(key)) === router.partitionOf(Buffer.from(key))),
      ).toBe(true);
    } finally {
      await reopened.close();
    }
  });

  it('a manifest naming another hash than LIGHTNING.json is ERR_CORRUPTION', async () => {
    const directory = tempDirectory();
    await (await open(directory, { partitions: 2, workers: 1 })).close();
    const { h64ToString } = await xxhash();
    const file = join(partitionDirectory(directory, 1), 'MANIFEST.json');
    const { checksum: _old, ...manifest } = JSON.parse(await readFile(file, 'utf8')) as Record<
      string,
      unknown
    >;
    const changed = { ...manifest, hash: 'xxh64' };
    await writeFile(file, JSON.stringify({ ...changed, checksum: h64ToString(JSON.stringify(changed)) }));
    await expect(open(directory)).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
      message: expect.stringContaining('partition hash xxh64'),
    });
  });
});
