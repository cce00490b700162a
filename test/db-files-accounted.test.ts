/**
 * Every file a database needs is accounted for: a missing identity, log, partition directory or
 * checkpoint is ERR_CORRUPTION naming it (never a fresh or a smaller database), damage in log records
 * every checkpoint holds is skipped, and `verify` and `repair` agree with open(). One case of the
 * integrity issue each; test/fault-matrix.test.ts runs every file against every fault.
 */
import {
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLightningError, open } from '../src/index.js';
import { readManifest } from '../src/storage/checkpoint/index.js';
import { type DatabaseMetadata, metadataFileName, readMetadata } from '../src/storage/database-metadata.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { xxhashApi } from '../src/storage/xxhash.js';
import { runCli } from './support/cli-runner.js';
import { verifyInProcess } from './support/fault-matrix/probes.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0xacc0da7a);
const keysBeforeCheckpoint = 1_500;
const keysAfterCheckpoint = 700;
let root: string;
let pristine: string;
/** What the database holds: key → value. */
const model = new Map<string, string>();
/** Every value each key ever had: what a database that lost the newest writes may still show. */
const history = new Map<string, string[]>();

beforeAll(async () => {
  console.log(`db-files-accounted: LIGHTNING_SEED=${seed}`);
  const random = mulberry32(seed);
  root = await mkdtemp(join(tmpdir(), 'lightning-accounted-'));
  pristine = join(root, 'pristine');
  const db = await open(pristine, { partitions: 2, workers: 2 });
  const put = async (count: number) => {
    const batch: { type: 'put'; key: string; value: string }[] = [];
    for (let i = 0; i < count; i++) {
      const key = `k${String(random() % 100_000).padStart(6, '0')}`;
      const value = `v${random().toString(36)}`;
      model.set(key, value);
      history.set(key, [...(history.get(key) ?? []), value]);
      batch.push({ type: 'put', key, value });
      if (batch.length === 50) await db.batch(batch.splice(0));
    }
    if (batch.length > 0) await db.batch(batch);
  };
  await put(keysBeforeCheckpoint);
  await db.checkpoint();
  await put(keysAfterCheckpoint);
  await db.close();
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let copies = 0;
async function copyOf(): Promise<string> {
  const dir = join(root, `copy-${copies++}`);
  await cp(pristine, dir, { recursive: true });
  return dir;
}

/** Opens `dir` and counts the model's keys that do not read back exactly. */
async function openAndCount(dir: string): Promise<number> {
  const db = await open(dir);
  try {
    let wrong = 0;
    for (const [key, value] of model) if (db.getString(key) !== value) wrong++;
    return wrong;
  } finally {
    await db.close();
  }
}

async function openError(dir: string): Promise<Error> {
  try {
    await openAndCount(dir);
  } catch (error) {
    return error as Error;
  }
  throw new Error(`open(${dir}) succeeded on a damaged database`);
}

async function walSegments(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'wal'))).filter((name) => name.endsWith('.log')).sort();
}

describe('every file a database needs is accounted for', () => {
  it('opens the undamaged copy with everything (the fixture is sound)', async () => {
    expect(await openAndCount(await copyOf())).toBe(0);
  });

  it('a deleted LIGHTNING.json is ERR_CORRUPTION, never a fresh database; repair rebuilds it', async () => {
    const dir = await copyOf();
    await unlink(join(dir, metadataFileName));
    const error = await openError(dir);
    expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
    expect(error.message).toContain(metadataFileName);
    // The refused open created nothing in its place.
    await expect(stat(join(dir, metadataFileName))).rejects.toMatchObject({ code: 'ENOENT' });
    const verify = await runCli(['verify', dir, '--quiet']);
    expect(verify.code).toBe(4);
    expect(verify.stderr).toContain(metadataFileName);
    const dryRun = await runCli(['repair', dir, '--quiet']);
    expect(dryRun.code).toBe(2);
    expect(dryRun.stdout).toContain('is missing: a repair would rebuild it');
    expect(dryRun.stdout).toContain('2 partitions');
    const repair = await runCli(['repair', dir, '--yes', '--quiet']);
    expect(repair.stdout).toContain('rebuilt it');
    expect(repair.code).toBe(0);
    expect(await openAndCount(dir)).toBe(0);
  });

  it('a LIGHTNING.json of another database is ERR_CORRUPTION', async () => {
    const dir = await copyOf();
    const other = join(root, 'other');
    await (await open(other, { partitions: 2, workers: 1 })).close();
    await cp(join(other, metadataFileName), join(dir, metadataFileName));
    const error = await openError(dir);
    expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
    expect(error.message).toContain('belongs to database');
    expect((await verifyInProcess(dir)).exitCode).toBe(4);
  });

  for (const fault of ['deleted', 'truncated to 0', 'truncated mid-file'] as const) {
    it(`a log segment ${fault} is ERR_CORRUPTION naming it; repair accepts the loss and says so`, async () => {
      const dir = await copyOf();
      const [segment] = await walSegments(dir);
      const file = join(dir, 'wal', segment!);
      if (fault === 'deleted') await unlink(file);
      else if (fault === 'truncated to 0') await truncate(file, 0);
      else await truncate(file, Math.floor((await stat(file)).size * 0.6));
      const error = await openError(dir);
      expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
      expect(error.message).toContain(segment);
      expect(error.message).toContain('was made durable');
      const verify = await verifyInProcess(dir);
      expect(verify.exitCode).toBe(4);
      expect(verify.text).toContain(segment);
      const repair = await runCli(['repair', dir, '--yes', '--quiet']);
      expect(repair.stdout).toMatch(/were durable and are gone from the logs/);
      expect(repair.code).toBe(0);
      // What remains opens: each key is absent or has a value it once had (the newest writes are the
      // ones gone), and the loss repair reported is real.
      const db = await open(dir);
      try {
        let lost = 0;
        for (const [key, value] of model) {
          const read = db.getString(key);
          if (read !== value) lost++;
          if (read !== undefined) expect(history.get(key)).toContain(read);
        }
        expect(lost).toBeGreaterThan(0);
      } finally {
        await db.close();
      }
    });
  }

  it('the whole wal/ directory deleted is ERR_CORRUPTION', async () => {
    const dir = await copyOf();
    await rm(join(dir, 'wal'), { recursive: true });
    const error = await openError(dir);
    expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
    expect(error.message).toContain('was made durable');
    expect((await verifyInProcess(dir)).exitCode).toBe(4);
  });

  it('a deleted partition directory is ERR_CORRUPTION naming the partition', async () => {
    const dir = await copyOf();
    await rm(join(dir, 'partitions', '0001'), { recursive: true });
    const error = await openError(dir);
    expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
    expect(error.message).toContain('partition 1');
    expect(error.message).toContain('0001');
    const verify = await verifyInProcess(dir);
    expect(verify.exitCode).toBe(4);
    expect(verify.text).toContain('0001');
  });

  it('a deleted checkpoint is ERR_CORRUPTION naming it, not a wrapped ENOENT', async () => {
    const dir = await copyOf();
    const partition = join(dir, 'partitions', '0000');
    const checkpoint = (await readdir(partition)).find((name) => name.endsWith('.ckp'))!;
    await unlink(join(partition, checkpoint));
    const error = await openError(dir);
    expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
    expect(error.message).toContain(checkpoint);
    expect((await verifyInProcess(dir)).exitCode).toBe(4);
  });

  it('a flipped byte in log records every checkpoint holds is skipped: opens with everything', async () => {
    const dir = await copyOf();
    const [segment] = await walSegments(dir);
    const file = join(dir, 'wal', segment!);
    const bytes = await readFile(file);
    // Early in the first log: written before the checkpoint, which holds every record there.
    bytes[200] = bytes[200]! ^ 0xff;
    await writeFile(file, bytes);
    const db = await open(dir);
    try {
      expect(db.stats().recovery?.damagedLogRangesSkipped).toBe(1);
      for (const [key, value] of model) expect(db.getString(key)).toBe(value);
    } finally {
      await db.close();
    }
    const verify = await verifyInProcess(dir);
    expect(verify.exitCode).toBe(0);
    expect(verify.text).toContain('damage below every checkpoint');
  });

  it('a flipped byte in log records past the checkpoint is ERR_CORRUPTION naming file and offset', async () => {
    const dir = await copyOf();
    const [segment] = await walSegments(dir);
    const file = join(dir, 'wal', segment!);
    const bytes = await readFile(file);
    const at = bytes.length - 200;
    bytes[at] = bytes[at]! ^ 0xff;
    await writeFile(file, bytes);
    const error = await openError(dir);
    expect(isLightningError(error, 'ERR_CORRUPTION')).toBe(true);
    expect(error.message).toContain(segment);
    expect(error.message).toMatch(/at byte \d+/);
    expect((await verifyInProcess(dir)).exitCode).toBe(4);
  });
});

describe('a database is created only where it hides nothing', () => {
  it('creates over what an interrupted creation left (no data): empty manifests, logs, a temporary identity', async () => {
    const dir = join(root, 'interrupted');
    const db = await open(dir, { partitions: 2, workers: 1 });
    await db.close();
    // As a power loss before LIGHTNING.json was renamed into place leaves it.
    await cp(join(dir, metadataFileName), join(dir, `${metadataFileName}.tmp`));
    await unlink(join(dir, metadataFileName));
    const again = await open(dir, { partitions: 3, workers: 1 });
    await again.close();
    expect((await readMetadata(dir))?.partitions).toBe(3);
  });

  it('refuses a non-empty directory without create: true, and never creates with create: false', async () => {
    const notEmpty = join(root, 'not-empty');
    await mkdir(notEmpty);
    await writeFile(join(notEmpty, 'notes.txt'), '');
    await expect(open(notEmpty)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    const db = await open(notEmpty, { create: true, partitions: 1, workers: 1 });
    await db.put('a', 'b');
    await db.close();
    expect(await readFile(join(notEmpty, 'notes.txt'), 'utf8')).toBe('');
    await expect(open(join(root, 'absent'), { create: false })).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
    });
    await expect(stat(join(root, 'absent'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('a database of metadata format version 1', () => {
  it('is upgraded at open: an id in LIGHTNING.json and a manifest for every partition', async () => {
    // An empty database rewritten as version 1 wrote it: no id, no hash but xxh64, and manifests only
    // where a checkpoint was made (none). Its keys are then routed with xxh64, as version 1 did.
    const dir = join(root, `v1-${copies++}`);
    await (await open(dir, { partitions: 2, workers: 2 })).close();
    const { h64ToString } = await xxhashApi();
    const metadata = JSON.parse(await readFile(join(dir, metadataFileName), 'utf8')) as DatabaseMetadata;
    const v1 = {
      format: metadata.format,
      formatVersion: 1,
      partitions: metadata.partitions,
      hash: 'xxh64',
      createdAt: metadata.createdAt,
    };
    await writeFile(
      join(dir, metadataFileName),
      JSON.stringify({ ...v1, checksum: h64ToString(JSON.stringify(v1)) }),
    );
    for (let partition = 0; partition < metadata.partitions; partition++) {
      await rm(join(partitionDirectory(dir, partition), 'MANIFEST.json'));
    }
    expect((await readMetadata(dir))?.databaseId).toBeNull();
    const db = await open(dir);
    try {
      for (const [key, value] of model) await db.put(key, value);
    } finally {
      await db.close();
    }
    const upgraded = await readMetadata(dir);
    expect(upgraded?.formatVersion).toBe(3);
    expect(upgraded?.hash).toBe('xxh64');
    expect(upgraded?.databaseId).toMatch(/^[0-9a-f]{32}$/);
    for (let partition = 0; partition < metadata.partitions; partition++) {
      const manifest = await readManifest(partitionDirectory(dir, partition));
      expect(manifest?.databaseId).toBe(upgraded?.databaseId);
      expect(manifest?.hash).toBe('xxh64');
    }
    expect(await openAndCount(dir)).toBe(0);
    // And it is now held to account like any other: a lost log is found.
    await rm(join(dir, 'wal'), { recursive: true });
    expect(isLightningError(await openError(dir), 'ERR_CORRUPTION')).toBe(true);
  });
});
