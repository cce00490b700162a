/**
 * `lightning-cli stores <directory>` end to end in a child process: it lists the named stores of a
 * database, sorted by name, with their ids, as text and as JSON; a dropped store is not listed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { runCli } from './support/cli-runner.js';

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
