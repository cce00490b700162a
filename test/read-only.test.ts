/**
 * `open(path, { readOnly: true })` never writes to the directory — no LOCK file, no log segment, no
 * torn-tail cut, no metadata, no checkpoint: the listing (names, sizes, mtimes) is the same after as
 * before — and refuses every write, transaction commit and checkpoint with ERR_READ_ONLY. On a
 * read-only file system (a real tmpfs remounted ro) a writable open and the creation of a database
 * directory are ERR_READ_ONLY naming the path, and a read-only open serves reads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isLightningError, open } from '../src/index.js';
import { walDirectory } from '../src/storage/layout.js';
import { rejection } from './support/async.js';
import { refuseFlagEnvName } from './support/refusing-file-layer.js';
import { listTree, mountTmpfs, type Tmpfs, tmpfsRefusal } from './support/tmpfs.js';

if (tmpfsRefusal !== null) console.log(`read-only file system tests skipped: ${tmpfsRefusal}`);

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function scratch(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ldb-read-only-'));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

function expectCode(error: Error, code: 'ERR_READ_ONLY' | 'ERR_BAD_ARGUMENT', path: string): void {
  expect(isLightningError(error, code), String(error)).toBe(true);
  expect(error.message).toContain(path);
}

/** A database with a checkpoint and a log tail after it, in `directory`. */
async function createDatabase(directory: string): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  const db = await open(directory, { partitions: 4, workers: 2 });
  for (let i = 0; i < 40; i++) {
    values.set(`key-${i}`, `value-${i}`);
    await db.put(`key-${i}`, `value-${i}`);
  }
  await db.checkpoint();
  for (let i = 0; i < 40; i += 3) {
    values.set(`key-${i}`, `later-${i}`);
    await db.put(`key-${i}`, `later-${i}`);
  }
  await db.del('key-1');
  values.delete('key-1');
  await db.close();
  return values;
}

describe('open with { readOnly: true }', () => {
  it('writes nothing to the directory and refuses writes, commits and checkpoints', async () => {
    const directory = join(scratch(), 'db');
    const values = await createDatabase(directory);
    const before = listTree(directory);
    const db = await open(directory, { readOnly: true, workers: 2 });
    expect(db.stats().readOnly).toBe(true);
    for (const [key, value] of values) expect(db.getString(key)).toBe(value);
    expect(db.get('key-1')).toBeUndefined();
    expect([...db.range({ gte: 'key-', lt: 'key.' })].length).toBe(values.size);

    expectCode(await rejection(db.put('key-2', 'changed')), 'ERR_READ_ONLY', directory);
    expectCode(await rejection(db.del('key-2')), 'ERR_READ_ONLY', directory);
    expectCode(
      await rejection(
        db.batch([
          { type: 'put', key: 'key-2', value: 'x' },
          { type: 'put', key: 'key-3', value: 'y' },
        ]),
      ),
      'ERR_READ_ONLY',
      directory,
    );
    expectCode(
      await rejection(
        db.transaction((tx) => {
          tx.put('key-2', String(tx.getString('key-2')));
        }),
      ),
      'ERR_READ_ONLY',
      directory,
    );
    // A transaction that only reads commits: it writes nothing.
    expect(await db.transaction((tx) => tx.getString('key-0'))).toBe(values.get('key-0'));
    expectCode(await rejection(db.checkpoint()), 'ERR_READ_ONLY', directory);
    expect(db.getString('key-2')).toBe(values.get('key-2'));
    await db.close();
    expect(listTree(directory)).toEqual(before);
    expect(before.has('LOCK')).toBe(false);
  });

  it('refuses a directory without a database, creating nothing', async () => {
    const base = scratch();
    const missing = join(base, 'missing');
    expectCode(await rejection(open(missing, { readOnly: true })), 'ERR_BAD_ARGUMENT', missing);
    writeFileSync(join(base, 'marker'), '');
    const before = listTree(base);
    expectCode(await rejection(open(base, { readOnly: true })), 'ERR_BAD_ARGUMENT', base);
    expect(listTree(base)).toEqual(before);
  });

  it('names the path when a file stands where the database directory would be created', async () => {
    const base = scratch();
    writeFileSync(join(base, 'file'), 'not a directory');
    const path = join(base, 'file', 'db');
    expectCode(await rejection(open(path)), 'ERR_BAD_ARGUMENT', path);
  });
});

describe.skipIf(tmpfsRefusal !== null)('a read-only file system (real tmpfs remounted ro)', () => {
  it('is ERR_READ_ONLY for a writable open and for a new directory, and serves a read-only open', async () => {
    const mount: Tmpfs = mountTmpfs(8 * 1024 * 1024);
    cleanups.push(() => mount.unmount());
    const directory = join(mount.directory, 'db');
    const values = await createDatabase(directory);
    mount.remount('ro');
    cleanups.push(() => mount.remount('rw'));

    const writable = await rejection(open(directory));
    expectCode(writable, 'ERR_READ_ONLY', directory);
    expect((writable.cause as NodeJS.ErrnoException).code).toBe('EROFS');
    expect(writable.message).toContain('readOnly');

    const created = join(mount.directory, 'new-db');
    const refused = await rejection(open(created));
    expectCode(refused, 'ERR_READ_ONLY', created);
    expect((refused.cause as NodeJS.ErrnoException).code).toBe('EROFS');

    const db = await open(directory, { readOnly: true });
    for (const [key, value] of values) expect(db.getString(key)).toBe(value);
    expectCode(await rejection(db.put('key-0', 'x')), 'ERR_READ_ONLY', directory);
    await db.close();
  });
});

/**
 * A file system that turns read-only under an open database (the kernel does that after disk errors;
 * a tmpfs cannot be remounted ro while the log is open for writing, so the file-layer seam plays it):
 * writes reject with ERR_READ_ONLY naming the log directory, change nothing, and succeed again once
 * the file system is writable.
 */
describe('a file system that turns read-only while open (file-layer seam)', () => {
  it('refuses writes with ERR_READ_ONLY and takes them again once writable', async () => {
    const base = scratch();
    const directory = join(base, 'db');
    const flag = join(base, 'refuse');
    const previous = process.env[refuseFlagEnvName];
    process.env[refuseFlagEnvName] = flag;
    cleanups.push(() => {
      if (previous === undefined) delete process.env[refuseFlagEnvName];
      else process.env[refuseFlagEnvName] = previous;
    });
    const layer = fileURLToPath(new URL('./support/refusing-file-layer.ts', import.meta.url));
    const db = await open(directory, { partitions: 2, workers: 1, fileLayer: layer });
    await db.put('kept', 'before');
    writeFileSync(flag, 'EROFS');
    const refused = await rejection(db.put('kept', 'refused'));
    expectCode(refused, 'ERR_READ_ONLY', walDirectory(directory));
    expect((refused.cause as NodeJS.ErrnoException).code).toBe('EROFS');
    const batch = await rejection(
      db.batch([
        { type: 'put', key: 'kept', value: 'refused' },
        { type: 'put', key: 'other', value: 'refused' },
      ]),
    );
    expectCode(batch, 'ERR_READ_ONLY', walDirectory(directory));
    expect(db.getString('kept')).toBe('before');
    expect(db.get('other')).toBeUndefined();
    rmSync(flag);
    await db.put('kept', 'after');
    await db.close();
    const reopened = await open(directory, { fileLayer: layer });
    expect(reopened.getString('kept')).toBe('after');
    expect(reopened.get('other')).toBeUndefined();
    await reopened.close();
  });
});
