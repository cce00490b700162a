/**
 * Online backup and restore through the library: a backup of a quiet database restores to exactly
 * its contents (binary keys, empty and 1 MB values); a backup taken while writers keep writing
 * restores to one instant of them, proved against each writer's log (see support/writer-log.ts);
 * one damaged byte anywhere in a backup makes restore fail with ERR_CORRUPTION naming the file and
 * leave nothing behind; bad directories are ERR_BAD_ARGUMENT; a failed backup removes what it wrote.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test names.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open, restore, verifyBackup } from '../src/index.js';
import { hashFile, readBackupDescriptor, writeBackupDescriptor } from '../src/storage/backup-descriptor.js';
import { codeOf, within } from './support/async.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { flipByte, useTemporaryDirectories } from './support/wal-fixtures.js';
import { matchingPrefix, runWriter, type WriterLog } from './support/writer-log.js';

type Database = Awaited<ReturnType<typeof open>>;

const seed = seedFromEnv(0xbac0_0001);
const seedText = `0x${seed.toString(16)}`;
const temporaryDirectory = useTemporaryDirectories('lightning-backup-');
const openDatabases: Database[] = [];

afterEach(async () => {
  for (const db of openDatabases.splice(0))
    await within(db.close(), 10_000, 'close() in afterEach').catch(() => {});
});

async function openDb(dir: string, options: Parameters<typeof open>[1] = {}): Promise<Database> {
  const db = await open(dir, options);
  openDatabases.push(db);
  return db;
}

async function closeDb(db: Database): Promise<void> {
  openDatabases.splice(openDatabases.indexOf(db), 1);
  await db.close();
}

function contentsOf(db: Database): [Buffer, Buffer][] {
  return [...db.range()];
}

/** Byte-exact equality of two sorted entry lists, reporting the first difference. */
function expectSameEntries(actual: [Buffer, Buffer][], expected: [Buffer, Buffer][]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const [key, value] = actual[i]!;
    if (!key.equals(expected[i]![0]) || !value.equals(expected[i]![1])) {
      expect.fail(`entry ${i} differs: key ${key.toString('hex')} vs ${expected[i]![0].toString('hex')}`);
    }
  }
}

/** A quiet database holding binary keys, empty values, 1 MB values and text, over 8 partitions. */
async function sampleDatabase(): Promise<{ db: Database; dir: string }> {
  const dir = join(await temporaryDirectory(), 'db');
  const db = await openDb(dir, { partitions: 8, workers: 2, durability: 'none' });
  const random = mulberry32(seed);
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 3000; i++) {
    writes.push(db.put(randomBytes(random, 1 + (random() % 40)), randomBytes(random, random() % 300)));
  }
  writes.push(db.put(Buffer.from([0]), Buffer.alloc(0)), db.put(Buffer.from([0xff, 0xff]), Buffer.alloc(0)));
  for (let i = 0; i < 3; i++) writes.push(db.put(`big:${i}`, randomBytes(random, 1024 * 1024)));
  writes.push(db.put('text:ключ', 'значение ✓'), db.put('empty', ''));
  await Promise.all(writes);
  return { db, dir };
}

describe(`backup and restore (LIGHTNING_SEED=${seedText})`, () => {
  it('restores a quiet database to exactly its contents', async () => {
    const { db } = await sampleDatabase();
    const expected = contentsOf(db);
    const root = await temporaryDirectory();
    const progress: number[] = [];
    const result = await db.backup(join(root, 'backup'), {
      onProgress: (p) => progress.push(p.partitionsDone),
    });
    expect(result.entries).toBe(expected.length);
    expect(result.files).toBe(1 + 1 + 8 * 2); // BACKUP.json, LIGHTNING.json, a manifest and a checkpoint each
    expect(typeof result.timestamp).toBe('bigint');
    expect(progress.at(-1)).toBe(8);

    const descriptor = await readBackupDescriptor(join(root, 'backup'));
    expect(descriptor?.timestamp).toBe(result.timestamp);
    expect(descriptor?.contents.reduce((sum, p) => sum + p.entries, 0)).toBe(expected.length);
    expect((await verifyBackup(join(root, 'backup'))).entries).toBe(expected.length);

    const restored = await restore(join(root, 'backup'), join(root, 'restored'));
    expect(restored.entries).toBe(expected.length);
    const copy = await openDb(join(root, 'restored'));
    expect(copy.stats().partitions).toBe(8);
    expectSameEntries(contentsOf(copy), expected);
    expect(copy.getString('text:ключ')).toBe('значение ✓');
    expect(copy.get('empty')?.length).toBe(0);
    // The restored database is writable and durable like any other.
    await copy.put('after-restore', 'yes');
    await closeDb(copy);
    const reopened = await openDb(join(root, 'restored'));
    expect(reopened.getString('after-restore')).toBe('yes');
    expect(reopened.stats().entries).toBe(expected.length + 1);
  });

  it('restores a backup taken while writers run to one instant of every writer', async () => {
    const dir = join(await temporaryDirectory(), 'db');
    const db = await openDb(dir, { partitions: 16, workers: 2, durability: 'none' });
    // Unchanging entries make the snapshot's walk long enough for many writes to land during it.
    const base = Array.from({ length: 40_000 }, (_, i) => `base:${String(i).padStart(6, '0')}`);
    for (let i = 0; i < base.length; i += 2000) {
      await Promise.all(base.slice(i, i + 2000).map((key) => db.put(key, `${key}:${'b'.repeat(120)}`)));
    }
    const logs: WriterLog[] = [0, 1, 2].map((w) => ({ prefix: `w${w}:`, operations: [], acknowledged: 0 }));
    let stopped = false;
    let failure: { error: unknown } | null = null;
    const writers = logs.map((log, w) =>
      runWriter(db, log, mulberry32(seed + w), 400, () => stopped || failure !== null).catch(
        (error: unknown) => {
          failure ??= { error };
        },
      ),
    );
    while (failure === null && logs.some((log) => log.acknowledged < 200)) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (failure !== null) throw (failure as { error: unknown }).error;

    const atLeast = logs.map((log) => log.acknowledged);
    const backupDir = join(await temporaryDirectory(), 'backup');
    const result = await db.backup(backupDir);
    const atMost = logs.map((log) => log.operations.length);
    stopped = true;
    await Promise.all(writers);
    if (failure !== null) throw (failure as { error: unknown }).error;
    // The writers really ran during the backup.
    expect(atMost.reduce((sum, n) => sum + n, 0) - atLeast.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(
      20,
    );
    expect(db.stats().mvcc.openSnapshots).toBe(0);

    const target = join(await temporaryDirectory(), 'restored');
    await restore(backupDir, target);
    const copy = await openDb(target);
    const state = new Map(contentsOf(copy).map(([key, value]) => [key.toString(), value.toString()]));
    expect(state.size).toBe(result.entries);
    for (const key of base) {
      if (state.get(key) !== `${key}:${'b'.repeat(120)}`) expect.fail(`base entry ${key} is wrong`);
      state.delete(key);
    }
    for (const [w, log] of logs.entries()) {
      const mine = new Map([...state].filter(([key]) => key.startsWith(log.prefix)));
      for (const key of mine.keys()) state.delete(key);
      const prefix = matchingPrefix(log, mine, atLeast[w]!, atMost[w]!);
      expect(
        prefix,
        `writer ${w}: no prefix of ops ${atLeast[w]}..${atMost[w]} matches the backup`,
      ).toBeGreaterThanOrEqual(atLeast[w]!);
    }
    expect([...state.keys()]).toEqual([]);
  });

  it('fails with ERR_CORRUPTION naming the file on one damaged byte, and leaves no target', async () => {
    const { db } = await sampleDatabase();
    const root = await temporaryDirectory();
    const backupDir = join(root, 'backup');
    await db.backup(backupDir);
    const descriptor = (await readBackupDescriptor(backupDir))!;
    const pristine = new Map<string, Buffer>();
    for (const file of descriptor.files) pristine.set(file.path, await readFile(join(backupDir, file.path)));

    const random = mulberry32(seed ^ 0xc0de);
    for (const file of descriptor.files) {
      const path = join(backupDir, file.path);
      await flipByte(path, random() % file.bytes);
      const target = join(root, 'target');
      const error = await restore(backupDir, target).catch((e: unknown) => e);
      expect(codeOf(error), file.path).toBe('ERR_CORRUPTION');
      expect(String(error)).toContain(path);
      expect(await readdir(root)).toEqual(['backup']);
      expect(codeOf(await verifyBackup(backupDir).catch((e: unknown) => e))).toBe('ERR_CORRUPTION');
      await writeFile(path, pristine.get(file.path)!);
    }
    // A change every reader would accept is still a file that is not the one backed up.
    await writeFile(join(backupDir, 'LIGHTNING.json'), `${pristine.get('LIGHTNING.json')!.toString()}\n`);
    const error = await restore(backupDir, join(root, 'target')).catch((e: unknown) => e);
    expect(codeOf(error)).toBe('ERR_CORRUPTION');
    expect(String(error)).toContain(join(backupDir, 'LIGHTNING.json'));
    await writeFile(join(backupDir, 'LIGHTNING.json'), pristine.get('LIGHTNING.json')!);
    await restore(backupDir, join(root, 'target'));
  });

  it('checks every checkpoint block even when the file checksums were made to match', async () => {
    const { db } = await sampleDatabase();
    const root = await temporaryDirectory();
    const backupDir = join(root, 'backup');
    await db.backup(backupDir);
    const descriptor = (await readBackupDescriptor(backupDir))!;
    const checkpoint = descriptor.files.find((file) => file.path.endsWith('.ckp') && file.bytes > 1000)!;
    await flipByte(join(backupDir, checkpoint.path), Math.floor(checkpoint.bytes / 2));
    // Rewrite BACKUP.json with the damaged file's own checksum, as a careless copy tool might.
    const rehashed = await hashFile(join(backupDir, checkpoint.path));
    await writeBackupDescriptor(backupDir, {
      ...descriptor,
      files: descriptor.files.map((file) =>
        file.path === checkpoint.path ? { ...file, ...rehashed } : file,
      ),
    });
    const error = await restore(backupDir, join(root, 'target')).catch((e: unknown) => e);
    expect(codeOf(error)).toBe('ERR_CORRUPTION');
    expect(String(error)).toContain(join(backupDir, checkpoint.path));
    expect(await readdir(root)).toEqual(['backup']);
  });

  it('refuses a backup without BACKUP.json, and bad directories', async () => {
    const { db, dir } = await sampleDatabase();
    const root = await temporaryDirectory();
    await writeFile(join(root, 'occupied'), 'x');
    expect(codeOf(await db.backup(root).catch((e: unknown) => e))).toBe('ERR_BAD_ARGUMENT');
    expect(codeOf(await db.backup(join(dir, 'inside')).catch((e: unknown) => e))).toBe('ERR_BAD_ARGUMENT');
    expect(codeOf(await db.backup(join(root, 'occupied')).catch((e: unknown) => e))).toBe('ERR_BAD_ARGUMENT');
    expect(await readFile(join(root, 'occupied'), 'utf8')).toBe('x');

    const backupDir = join(root, 'backup');
    await db.backup(backupDir);
    expect(codeOf(await restore(backupDir, root).catch((e: unknown) => e))).toBe('ERR_BAD_ARGUMENT');
    expect(codeOf(await restore(join(root, 'absent'), join(root, 't')).catch((e: unknown) => e))).toBe(
      'ERR_BAD_ARGUMENT',
    );
    // An unfinished backup is one without BACKUP.json, which is written last.
    await rm(join(backupDir, 'BACKUP.json'));
    const error = await restore(backupDir, join(root, 'target')).catch((e: unknown) => e);
    expect(codeOf(error)).toBe('ERR_CORRUPTION');
    expect(String(error)).toContain('BACKUP.json');
    expect((await readdir(root)).sort()).toEqual(['backup', 'occupied']);
  });

  it('removes what it wrote and releases its snapshot when a backup fails midway', async () => {
    const { db } = await sampleDatabase();
    const root = await temporaryDirectory();
    const failing = db.backup(join(root, 'backup'), {
      onProgress: (p) => {
        if (p.entries > 0) throw new Error('stop here');
      },
    });
    await expect(failing).rejects.toThrow('stop here');
    expect(await readdir(root)).toEqual([]);
    expect(db.stats().mvcc.openSnapshots).toBe(0);
    // The database is unaffected and a new backup succeeds.
    const result = await db.backup(join(root, 'backup'));
    expect(result.entries).toBe(db.stats().entries);
  });
});
