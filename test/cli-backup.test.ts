/**
 * `lightning-cli backup` and `lightning-cli restore`, end to end: the CLI runs in a child process, as
 * an operator runs it. A backup restored by the CLI opens to exactly the database's contents; a
 * damaged backup is exit 4 (restore and --verify-only) and leaves no target; missing directories are
 * exit 3, bad arguments exit 2, and a database open in another process exit 5.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { readBackupDescriptor } from '../src/storage/backup-descriptor.js';
import { contentsOf } from './support/cli-databases.js';
import { runCli } from './support/cli-runner.js';
import { flipByte, useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-backup-');

/** A closed database of 4 partitions holding `keys` entries, some with binary keys. */
async function createDatabase(root: string, keys = 500): Promise<string> {
  const dir = join(root, 'db');
  const db = await open(dir, { partitions: 4, workers: 1, durability: 'none' });
  for (let i = 0; i < keys; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) =>
        db.put(Buffer.from([0, (i + j) >> 8, (i + j) & 0xff]), `value ${i + j}`),
      ),
    );
  }
  await db.close();
  return dir;
}

async function hexContentsOf(dir: string): Promise<string[]> {
  return (await contentsOf(dir)).map(([key, value]) => `${key.toString('hex')}=${value.toString('hex')}`);
}

describe('lightning-cli backup and restore', () => {
  it('backs up and restores a database that then opens to exactly its contents', async () => {
    const root = await temporaryDirectory();
    const db = await createDatabase(root);
    const expected = await hexContentsOf(db);

    const backup = await runCli(['backup', '--json', db, join(root, 'backup')]);
    expect(backup.stderr).toContain('backup');
    expect(backup.code, backup.stderr).toBe(0);
    const report = JSON.parse(backup.stdout) as { entries: number; files: number; timestamp: string };
    expect(report.entries).toBe(500);
    expect(report.files).toBe(1 + 1 + 4 * 2);
    expect((await readBackupDescriptor(join(root, 'backup')))?.timestamp.toString()).toBe(report.timestamp);

    const verified = await runCli(['restore', '--verify-only', join(root, 'backup')]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('500 entries');

    const restored = await runCli(['restore', join(root, 'backup'), join(root, 'restored')]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain('500 entries');
    expect(await hexContentsOf(join(root, 'restored'))).toEqual(expected);
  });

  it('exits 4 on a damaged backup and leaves no target', async () => {
    const root = await temporaryDirectory();
    const db = await createDatabase(root);
    expect((await runCli(['backup', '-q', db, join(root, 'backup')])).code).toBe(0);
    const descriptor = (await readBackupDescriptor(join(root, 'backup')))!;
    const checkpoint = descriptor.files.find((file) => file.path.endsWith('.ckp'))!;
    await flipByte(join(root, 'backup', checkpoint.path), checkpoint.bytes - 40);

    const verified = await runCli(['restore', '--verify-only', join(root, 'backup')]);
    expect(verified.code).toBe(4);
    expect(verified.stderr).toContain(checkpoint.path.split('/').at(-1));
    const restored = await runCli(['restore', join(root, 'backup'), join(root, 'restored')]);
    expect(restored.code).toBe(4);
    expect(restored.stderr).toContain('ERR_CORRUPTION');
    expect((await readdir(root)).sort()).toEqual(['backup', 'db']);
  });

  it('exits 3 for a missing database or backup, 2 for bad arguments, 5 for a database in use', async () => {
    const root = await temporaryDirectory();
    const db = await createDatabase(root, 100);
    await writeFile(join(root, 'file'), 'x');

    expect((await runCli(['backup', join(root, 'absent'), join(root, 'b1')])).code).toBe(3);
    expect((await runCli(['restore', join(root, 'absent'), join(root, 't1')])).code).toBe(3);
    const occupied = await runCli(['backup', '-q', db, root]);
    expect(occupied.code).toBe(2);
    expect(occupied.stderr).toContain('not empty');
    expect((await runCli(['backup', db])).code).toBe(2);

    expect((await runCli(['backup', '-q', db, join(root, 'backup')])).code).toBe(0);
    expect((await runCli(['restore', join(root, 'backup')])).code).toBe(2);
    expect((await runCli(['restore', '--verify-only', join(root, 'backup'), join(root, 't2')])).code).toBe(2);
    expect((await runCli(['restore', join(root, 'backup'), root])).code).toBe(2);
    expect(await readFile(join(root, 'file'), 'utf8')).toBe('x');

    const holder = await open(db, { workers: 1 });
    try {
      const locked = await runCli(['backup', db, join(root, 'b2')]);
      expect(locked.code).toBe(5);
      expect(locked.stderr).toContain('ERR_LOCKED');
    } finally {
      await holder.close();
    }
    expect((await readdir(root)).sort()).toEqual(['backup', 'db', 'file']);
  });

  it('prints help for both commands', async () => {
    const backupHelp = await runCli(['backup', '--help']);
    expect(backupHelp.code).toBe(0);
    expect(backupHelp.stdout).toContain('Exit codes');
    const restoreHelp = await runCli(['restore', '--help']);
    expect(restoreHelp.code).toBe(0);
    expect(restoreHelp.stdout).toContain('--verify-only');
  });
});
