/**
 * The manifest: round trip (with start LSNs beyond 2^53), corruption and version detection, and
 * recordCheckpoint, which must remove a superseded checkpoint only once the manifest naming its
 * successor is durable.
 */
import { access, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LightningError } from '../src/shared-memory/index.js';
import {
  type Manifest,
  manifestFileName,
  readManifest,
  recordCheckpoint,
  writeCheckpoint,
  writeManifest,
} from '../src/storage/checkpoint/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-manifest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function expectCode(promise: Promise<unknown>, code: LightningError['code'], text = ''): Promise<void> {
  const error = await promise.then(
    () => expect.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LightningError);
  expect((error as LightningError).code).toBe(code);
  expect((error as LightningError).message).toContain(text);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Writes a checkpoint of `count` entries for `partition` under `dir/p<partition>`. */
async function checkpointOf(partition: number, startLsn: bigint, count: number): Promise<string> {
  const entries: [Buffer, Buffer][] = [];
  for (let i = 0; i < count; i++)
    entries.push([Buffer.from(`k${String(i).padStart(5, '0')}`), Buffer.from(`v${i}`)]);
  const result = await writeCheckpoint(join(dir, `p${partition}`), partition, startLsn, [entries]);
  return `p${partition}/${result.file}`;
}

const big = (1n << 60n) + 12_345n;
/** Every manifest names its database and the partition's durable mark. */
const databaseId = 'ab'.repeat(16);
const durable = { lsn: 0n, log: null };
const sample: Manifest = {
  databaseId,
  durable,
  partitions: 4,
  checkpoints: [
    {
      partition: 2,
      file: `p2/checkpoint-${big.toString(16).padStart(16, '0')}.ckp`,
      startLsn: big,
      entries: 10,
    },
    { partition: 0, file: 'p0/checkpoint-0000000000000064.ckp', startLsn: 100n, entries: 0 },
  ],
};

describe('manifest', () => {
  it('is absent (null) in a new directory, and round trips with u64 start LSNs as decimal strings', async () => {
    expect(await readManifest(dir)).toBeNull();
    await writeManifest(dir, sample);
    const read = await readManifest(dir);
    expect(read).toEqual({
      databaseId,
      durable,
      partitions: 4,
      // A manifest that names no hash is one of a database routed with xxh64 (before version 3).
      hash: 'xxh64',
      checkpoints: [sample.checkpoints[1], sample.checkpoints[0]],
    });
    const json = JSON.parse(await readFile(join(dir, manifestFileName), 'utf8')) as Record<string, unknown>;
    expect(json).toMatchObject({
      format: 'lightning-db-manifest',
      formatVersion: 3,
      partitions: 4,
      hash: 'xxh64',
    });
    expect(json.checksum).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(json.checkpoints)).toContain(`"startLsn":"${big}"`);
    expect(await readdir(dir)).toEqual([manifestFileName]);
  });

  it('detects a changed field, broken JSON and a foreign file as ERR_CORRUPTION', async () => {
    await writeManifest(dir, sample);
    const file = join(dir, manifestFileName);
    const text = await readFile(file, 'utf8');
    const tampered = text.replace('"entries": 10', '"entries": 11');
    expect(tampered).not.toBe(text);
    await writeFile(file, tampered);
    await expectCode(readManifest(dir), 'ERR_CORRUPTION', 'checksum mismatch');
    await writeFile(file, text.slice(0, text.length / 2));
    await expectCode(readManifest(dir), 'ERR_CORRUPTION', 'not valid JSON');
    await writeFile(file, '{"format":"something-else"}');
    await expectCode(readManifest(dir), 'ERR_CORRUPTION', 'not a lightning-db manifest');
    // A file path escaping the directory is refused before cleanup could ever act on it.
    await writeFile(file, text.replace('p0/checkpoint', '../checkpoint'));
    await expectCode(readManifest(dir), 'ERR_CORRUPTION', 'not a relative checkpoint name');
    await writeFile(file, text.replace(`"${big}"`, '"18446744073709551616"'));
    await expectCode(readManifest(dir), 'ERR_CORRUPTION', 'start LSN');
  });

  it('a newer format version is ERR_FORMAT_VERSION', async () => {
    await writeManifest(dir, sample);
    const file = join(dir, manifestFileName);
    await writeFile(file, (await readFile(file, 'utf8')).replace('"formatVersion": 3', '"formatVersion": 5'));
    await expectCode(
      readManifest(dir),
      'ERR_FORMAT_VERSION',
      'manifest format version 5; this build reads version 4',
    );
  });

  it('a leftover MANIFEST.json.tmp is ignored and replaced by the next write', async () => {
    await writeManifest(dir, sample);
    await writeFile(join(dir, `${manifestFileName}.tmp`), '{"half a manifest');
    expect(await readManifest(dir)).toMatchObject({ partitions: 4 });
    await writeManifest(dir, { databaseId, durable, partitions: 4, checkpoints: [] });
    expect(await readManifest(dir)).toEqual({
      databaseId,
      durable,
      partitions: 4,
      hash: 'xxh64',
      checkpoints: [],
    });
    expect(await readdir(dir)).toEqual([manifestFileName]);
  });

  it('writeManifest refuses an invalid manifest', async () => {
    const record = sample.checkpoints[1]!;
    await expectCode(
      writeManifest(dir, { databaseId, durable, partitions: 0, checkpoints: [] }),
      'ERR_BAD_ARGUMENT',
    );
    await expectCode(
      writeManifest(dir, { databaseId, durable, partitions: 1, checkpoints: [{ ...record, partition: 1 }] }),
      'ERR_BAD_ARGUMENT',
    );
    await expectCode(
      writeManifest(dir, { databaseId, durable, partitions: 4, checkpoints: [record, record] }),
      'ERR_BAD_ARGUMENT',
    );
    await expectCode(
      writeManifest(dir, { databaseId, durable, partitions: 4, checkpoints: [{ ...record, startLsn: 99n }] }),
      'ERR_BAD_ARGUMENT',
    );
    expect(await readManifest(dir)).toBeNull();
  });
});

describe('recordCheckpoint', () => {
  it('records checkpoints, and removes the older one only after the new manifest is durable', async () => {
    await writeManifest(dir, { databaseId, durable, partitions: 2, checkpoints: [] });
    const first = await checkpointOf(0, 100n, 3);
    expect(await recordCheckpoint(dir, 0, first, 100n, 3)).toEqual({
      manifest: {
        databaseId,
        durable,
        partitions: 2,
        hash: 'xxh64',
        checkpoints: [{ partition: 0, file: first, startLsn: 100n, entries: 3 }],
      },
      removed: [],
    });

    // The manifest write fails (its temporary name is taken by a directory): the old checkpoint stays.
    const second = await checkpointOf(0, 200n, 5);
    const blocker = join(dir, `${manifestFileName}.tmp`);
    await mkdir(blocker);
    await expect(recordCheckpoint(dir, 0, second, 200n, 5)).rejects.toThrow();
    expect(await exists(join(dir, first))).toBe(true);
    expect((await readManifest(dir))?.checkpoints[0]?.file).toBe(first);

    await rmdir(blocker);
    const result = await recordCheckpoint(dir, 0, second, 200n, 5);
    expect(result.removed).toEqual([first]);
    expect(await exists(join(dir, first))).toBe(false);
    expect(await readManifest(dir)).toEqual(result.manifest);
    expect(result.manifest.checkpoints).toEqual([{ partition: 0, file: second, startLsn: 200n, entries: 5 }]);
  });

  it('cleans up stale files of its partition only, and never a newer or recorded one', async () => {
    await writeManifest(dir, { databaseId, durable, partitions: 2, checkpoints: [] });
    const p0 = join(dir, 'p0');
    const current = await checkpointOf(0, 300n, 1);
    await checkpointOf(0, 250n, 1); // complete but never recorded: a crash before recordCheckpoint
    await writeFile(join(p0, 'checkpoint-0000000000000096.ckp.tmp'), 'crashed writer'); // no header
    // Another partition's file in this directory (a misconfiguration) is left alone.
    const foreign = await writeCheckpoint(p0, 1, 0x10n, []);
    await recordCheckpoint(dir, 1, `p0/${foreign.file}`, 0x10n, 0);
    await writeCheckpoint(p0, 1, 0x20n, []);
    const newer = await writeCheckpoint(p0, 0, 400n, []);
    await writeFile(join(p0, 'checkpoint-00000000000001f4.ckp.tmp'), 'in progress');

    const result = await recordCheckpoint(dir, 0, current, 300n, 1);
    expect(result.removed).toEqual(['p0/checkpoint-00000000000000fa.ckp']);
    expect((await readdir(p0)).sort()).toEqual(
      [
        'checkpoint-0000000000000010.ckp',
        'checkpoint-0000000000000020.ckp',
        'checkpoint-0000000000000096.ckp.tmp',
        'checkpoint-000000000000012c.ckp',
        newer.file,
        'checkpoint-00000000000001f4.ckp.tmp',
      ].sort(),
    );
  });

  it('removes a stale temporary file whose header names the partition', async () => {
    await writeManifest(dir, { databaseId, durable, partitions: 1, checkpoints: [] });
    const old = await checkpointOf(0, 1n, 2);
    // A crashed write at LSN 2 left a .tmp with a whole header (copied from a real checkpoint).
    const staleTemporary = join(dir, 'p0', 'checkpoint-0000000000000002.ckp.tmp');
    await writeFile(
      staleTemporary,
      (await readFile(join(dir, await checkpointOf(0, 2n, 2)))).subarray(0, 40),
    );
    await rm(join(dir, 'p0', 'checkpoint-0000000000000002.ckp'));
    await recordCheckpoint(dir, 0, old, 1n, 2);
    const current = await checkpointOf(0, 3n, 2);
    const result = await recordCheckpoint(dir, 0, current, 3n, 2);
    expect(result.removed.sort()).toEqual([old, 'p0/checkpoint-0000000000000002.ckp.tmp'].sort());
  });

  it('serializes concurrent updates: no partition is lost', async () => {
    await writeManifest(dir, { databaseId, durable, partitions: 8, checkpoints: [] });
    const files = await Promise.all(Array.from({ length: 8 }, (_, p) => checkpointOf(p, BigInt(p + 1), p)));
    await Promise.all(files.map((file, p) => recordCheckpoint(dir, p, file, BigInt(p + 1), p)));
    expect((await readManifest(dir))?.checkpoints.map((c) => c.file)).toEqual(files);
  });

  it('refuses a checkpoint that does not match, is older, is incomplete, or has no manifest to go in', async () => {
    const file = await checkpointOf(0, 50n, 4);
    await expectCode(recordCheckpoint(dir, 0, file, 50n, 4), 'ERR_CORRUPTION', 'MANIFEST.json is missing');
    await writeManifest(dir, { databaseId, durable, partitions: 1, checkpoints: [] });
    await expectCode(recordCheckpoint(dir, 0, file, 50n, 5), 'ERR_BAD_ARGUMENT', 'expected 0, 50, 5');
    await expectCode(
      recordCheckpoint(dir, 0, file, 51n, 4),
      'ERR_BAD_ARGUMENT',
      'not a relative checkpoint name',
    );
    await expectCode(
      recordCheckpoint(dir, 1, await checkpointOf(1, 50n, 0), 50n, 0),
      'ERR_BAD_ARGUMENT',
      'partition 1 of 1',
    );
    await recordCheckpoint(dir, 0, file, 50n, 4);
    await expectCode(
      recordCheckpoint(dir, 0, await checkpointOf(0, 40n, 1), 40n, 1),
      'ERR_BAD_ARGUMENT',
      'older',
    );
    const cut = await checkpointOf(0, 60n, 1);
    const bytes = await readFile(join(dir, cut));
    await writeFile(join(dir, cut), bytes.subarray(0, bytes.length - 1));
    await expectCode(recordCheckpoint(dir, 0, cut, 60n, 1), 'ERR_CORRUPTION', 'incomplete checkpoint');
    expect((await readManifest(dir))?.checkpoints).toEqual([
      { partition: 0, file, startLsn: 50n, entries: 4 },
    ]);
  });
});
