/**
 * The CLI and named stores, end to end in child processes: `lightning-cli stores <directory>` lists
 * the named stores, sorted by name, with their ids, as text and as JSON (a dropped store is not
 * listed); `get`, `scan`, `dump` and `load` take `--store <name>` and then read or write that store's
 * entries (keys without any prefix), not the default store's; a --store that names no store exits 7
 * with a message naming it (load makes it with --create); --store with --url is a usage error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { runCli } from './support/cli-runner.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('lightning-cli stores', () => {
  it('lists the named stores with their ids, as text and as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ldb-stores-cli-'));
    dirs.push(dir);
    const db = await open(dir, { partitions: 2, workers: 1 });
    try {
      for (const name of ['orders', 'users', 'gone', 'ünï']) await db.store(name);
      await db.dropStore('gone');
      await db.put('plain', 'x');
    } finally {
      await db.close();
    }
    const text = await runCli(['stores', dir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.split('\n')).toEqual([
      'name    id',
      'orders   1',
      'users    2',
      'ünï      4',
      `3 named store(s) in ${dir}`,
      '',
    ]);
    const json = await runCli(['stores', dir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      command: 'stores',
      database: dir,
      stores: [
        { id: 1, name: 'orders' },
        { id: 2, name: 'users' },
        { id: 4, name: 'ünï' },
      ],
    });
  });
});

describe('lightning-cli get, scan, dump and load with --store', () => {
  it('reads and writes the named store, dumps it with progress and loads it into another store', async () => {
    const seed = seedFromEnv(0x5c11);
    const random = mulberry32(seed);
    const dir = mkdtempSync(join(tmpdir(), 'ldb-stores-cli-'));
    dirs.push(dir);
    // Binary keys and values too: the store's stored bytes travel as the default store's do.
    const entries = Array.from({ length: 300 }, (_, i): [Buffer, Buffer] => [
      Buffer.concat([Buffer.from(`k${String(i).padStart(3, '0')}`), randomBytes(random, random() % 4)]),
      randomBytes(random, random() % 40),
    ]).sort(([a], [b]) => Buffer.compare(a, b));
    const db = await open(dir, { partitions: 3, workers: 1 });
    try {
      const users = await db.store('users');
      await users.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value })));
      await users.put('u1', 'alice');
      await db.put('u1', 'the default store');
      await db.store('empty');
    } finally {
      await db.close();
    }
    const all = [...entries, [Buffer.from('u1'), Buffer.from('alice')] as [Buffer, Buffer]].sort(([a], [b]) =>
      Buffer.compare(a, b),
    );

    const [fromStore, fromDefault] = [
      await runCli(['get', dir, 'u1', '--store', 'users']),
      await runCli(['get', dir, 'u1']),
    ];
    expect(fromStore.code, fromStore.stderr).toBe(0);
    expect(fromStore.stdout).toBe('alice\n');
    expect(fromDefault.stdout).toBe('the default store\n');
    const missingKey = await runCli(['get', dir, 'nope', '--store', 'users']);
    expect(missingKey.code).toBe(6);
    expect(missingKey.stderr).toContain('no key "nope" in store "users"');

    const scan = await runCli(['scan', dir, '--store', 'users', '--prefix', 'u', '--format', 'jsonl']);
    expect(scan.code, scan.stderr).toBe(0);
    expect(scan.stdout).toBe('{"key":"u1","value":"alice"}\n');
    const keysOnly = await runCli(['scan', dir, '--store', 'users', '--keys-only', '--key-encoding', 'hex']);
    expect(keysOnly.stdout.trimEnd().split('\n')).toEqual(all.map(([key]) => key.toString('hex')));
    const emptyScan = await runCli(['scan', dir, '--store', 'empty']);
    expect(emptyScan.code, emptyScan.stderr).toBe(0);
    expect(emptyScan.stdout).toBe('');

    const file = join(dir, '..', `${dir.split('/').pop()}-users.jsonl`);
    dirs.push(file);
    const dumped = await runCli(['dump', dir, file, '--store', 'users']);
    expect(dumped.code, `seed ${seed}: ${dumped.stderr}`).toBe(0);
    expect(dumped.stdout).toContain(`dumped ${all.length} entries`);
    // The progress counts the store's entries, not the database's.
    expect(dumped.stderr).toContain(`dump: ${all.length}/${all.length} rows`);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(all.length);
    expect(lines).toContain('{"key":"u1","value":"alice"}');
    expect((await runCli(['dump', dir, '--store', 'users'])).stdout).toBe(readFileSync(file, 'utf8'));

    const missingStore = await runCli(['load', dir, file, '--store', 'copy']);
    expect(missingStore.code).toBe(7);
    expect(missingStore.stderr).toContain('no store named "copy"');
    const loaded = await runCli(['load', dir, file, '--store', 'copy', '--create']);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toContain(`loaded ${all.length} entries`);
    expect(loaded.stderr).toMatch(/load: .* rows, .*, done\n/);
    const check = await open(dir, { partitions: 3, workers: 1 });
    try {
      expect(check.stores()).toEqual(['copy', 'empty', 'users']);
      const copy = await check.store('copy', { create: false });
      expect([...copy.range()], `seed ${seed}`).toEqual(all);
      expect(check.getString('u1')).toBe('the default store');
      expect(check.count(), 'the default store got nothing').toBe(1);
    } finally {
      await check.close();
    }
  });

  it('exits 7 for a store that does not exist, 2 for a bad name or --store with --url', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ldb-stores-cli-'));
    dirs.push(dir);
    const db = await open(dir, { partitions: 2, workers: 1 });
    await db.put('k', 'v');
    await db.close();
    const runs = [
      await runCli(['get', dir, 'k', '--store', 'nope']),
      await runCli(['scan', dir, '--store', 'nope']),
      await runCli(['dump', dir, '--store', 'nope']),
    ];
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(7);
      expect(run.stderr).toContain('no store named "nope"');
      expect(run.stdout).toBe('');
    }
    const badName = await runCli(['get', dir, 'k', '--store', '']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('a store name must not be empty');
    const viaUrl = await runCli(['get', dir, 'k', '--store', 'users', '--url', 'http://127.0.0.1:1']);
    expect(viaUrl.code).toBe(2);
    expect(viaUrl.stderr).toContain('--store cannot be read through --url');
    const reopened = await open(dir, { partitions: 2, workers: 1 });
    try {
      expect(reopened.stores(), 'a missing store is not made by a read').toEqual([]);
    } finally {
      await reopened.close();
    }
  });
});
