/**
 * Backup, restore and verify in the piscina pool: a backup big enough to be written by pool tasks
 * (one per partition) restores, also in the pool, to files equal byte for byte and a database equal
 * entry for entry; a damaged partition file is named by verifyBackup and by restore, which leaves
 * nothing behind. With the calling thread taking tasks too (as it does outside tests), every
 * partition is written and checked once, wherever it ran, whether or not a pool thread had loaded
 * before the calling thread took the last task.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test name.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, restore, verifyBackup } from '../src/index.js';
import { partitionTaskCounts, partitionTaskOptions, pooledWorkMin } from '../src/main/partition-tasks.js';
import { readBackupDescriptor } from '../src/storage/backup-descriptor.js';
import { codeOf } from './support/async.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { flipByte, useTemporaryDirectories } from './support/wal-fixtures.js';

const seed = seedFromEnv(0xbac0_9001);
const temporaryDirectory = useTemporaryDirectories('lightning-backup-pool-');
const partitions = 4;
const valueBytes = 120;
const entryCount = 10_000;
// Lowered so this small database is written and checked by the pool's threads.
const pooledBackupEntries = 8192;
const pooledCheckBytes = 1024 * 1024;

const savedWorkMin = { ...pooledWorkMin };
beforeAll(() => {
  Object.assign(pooledWorkMin, { backupEntries: pooledBackupEntries, checkBytes: pooledCheckBytes });
});
afterAll(() => {
  Object.assign(pooledWorkMin, savedWorkMin);
  partitionTaskOptions.callerRuns = true;
});

/** Writes `entryCount` seeded entries over `partitions` partitions; returns them as hex, in key order. */
async function fill(db: Awaited<ReturnType<typeof open>>, random: () => number): Promise<[string, string][]> {
  const expected: [string, string][] = [];
  // In windows: one turn's writes to a partition are reserved for at their largest.
  for (let first = 0; first < entryCount; first += 1000) {
    const writes: Promise<void>[] = [];
    for (let i = first; i < Math.min(entryCount, first + 1000); i++) {
      const key = `key-${i.toString().padStart(6, '0')}`;
      const value = randomBytes(random, valueBytes);
      expected.push([key, value.toString('hex')]);
      writes.push(db.put(key, value));
    }
    await Promise.all(writes);
  }
  return expected;
}

async function expectContents(dir: string, expected: [string, string][]): Promise<void> {
  const restored = await open(dir, { workers: 1 });
  try {
    const found = [...restored.range()].map(([key, value]) => [key.toString(), value.toString('hex')]);
    expect(found).toEqual(expected);
  } finally {
    await restored.close();
  }
}

/** Tasks run so far, in the pool and on the calling thread. */
function tasksRun(): { pooled: number; inline: number } {
  return { ...partitionTaskCounts };
}

describe(`backup, restore and verify in the pool (LIGHTNING_SEED=0x${seed.toString(16)})`, () => {
  it('restores a pooled backup byte for byte and names a damaged partition file', async () => {
    // Only the pool's threads take tasks here: the calling thread would finish this small job first.
    partitionTaskOptions.callerRuns = false;
    const random = mulberry32(seed);
    const root = await temporaryDirectory();
    const db = await open(join(root, 'db'), { partitions, workers: 1 });
    let expected: [string, string][];
    try {
      expected = await fill(db, random);
      const pooledBefore = partitionTaskCounts.pooled;
      const result = await db.backup(join(root, 'backup'));
      expect(result.entries).toBe(entryCount);
      expect(partitionTaskCounts.pooled - pooledBefore).toBe(partitions);
    } finally {
      await db.close();
    }
    const backupDir = join(root, 'backup');
    const descriptor = (await readBackupDescriptor(backupDir))!;
    expect(descriptor.files.reduce((sum, file) => sum + file.bytes, 0)).toBeGreaterThan(pooledCheckBytes);

    const pooledBefore = partitionTaskCounts.pooled;
    const target = join(root, 'restored');
    await restore(backupDir, target);
    expect(partitionTaskCounts.pooled - pooledBefore).toBe(partitions);
    for (const file of descriptor.files) {
      const copied = await readFile(join(target, file.path));
      expect(copied.equals(await readFile(join(backupDir, file.path))), file.path).toBe(true);
    }
    await expectContents(target, expected);

    const checkpoints = descriptor.files.filter((file) => file.path.endsWith('.ckp'));
    const damaged = checkpoints[random() % checkpoints.length]!;
    const damagedPath = join(backupDir, ...damaged.path.split('/'));
    await flipByte(damagedPath, random() % damaged.bytes);
    const verifyError = await verifyBackup(backupDir).catch((error: unknown) => error);
    expect(codeOf(verifyError)).toBe('ERR_CORRUPTION');
    expect(String(verifyError)).toContain(damagedPath);
    const restoreError = await restore(backupDir, join(root, 'again')).catch((error: unknown) => error);
    expect(codeOf(restoreError)).toBe('ERR_CORRUPTION');
    expect(String(restoreError)).toContain(damagedPath);
    expect((await readdir(root)).sort()).toEqual(['backup', 'db', 'restored']);
  }, 300_000);

  it('runs every task once between the calling thread and the pool, and restores the result', async () => {
    partitionTaskOptions.callerRuns = true;
    const random = mulberry32(seed ^ 0x5eed);
    const root = await temporaryDirectory();
    const db = await open(join(root, 'db'), { partitions, workers: 1 });
    let expected: [string, string][];
    try {
      expected = await fill(db, random);
      const before = tasksRun();
      const result = await db.backup(join(root, 'backup'));
      expect(result.entries).toBe(entryCount);
      const after = tasksRun();
      expect(after.pooled - before.pooled + after.inline - before.inline).toBe(partitions);
      expect(after.inline - before.inline).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
    const before = tasksRun();
    const verified = await verifyBackup(join(root, 'backup'));
    expect(verified.entries).toBe(entryCount);
    const target = join(root, 'restored');
    await restore(join(root, 'backup'), target);
    const after = tasksRun();
    expect(after.pooled - before.pooled + after.inline - before.inline).toBe(2 * partitions);
    await expectContents(target, expected);
    expect((await readdir(root)).sort()).toEqual(['backup', 'db', 'restored']);
  }, 300_000);
});
