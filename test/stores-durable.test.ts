/**
 * Named stores across reopen, crash, backup and threads: created and dropped stores stay so after a
 * close and reopen (and the id counter too); a backup restored elsewhere holds the stores; a process
 * SIGKILLed in the middle of dropStore() leaves the store gone, never half there, and the next
 * store() call deletes what the drop left; two attached app threads and the main thread creating the
 * same stores at once agree on one id per store.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { open, restore } from '../src/index.js';
import type { StoreCreatorInput, StoreCreatorReply } from './fixtures/store-creator-worker.js';
import { codeOf, rejection, within } from './support/async.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dropChild = fileURLToPath(new URL('./fixtures/store-drop-child.ts', import.meta.url));

const dirs: string[] = [];
function temporaryDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-stores-durable-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function contents(entries: Iterable<[Buffer, Buffer]>): Array<[string, string]> {
  return [...entries].map(([key, value]) => [key.toString(), value.toString()]);
}

describe('named stores are durable', () => {
  it('keeps created and dropped stores across close and reopen, and in a restored backup', async () => {
    const dir = temporaryDirectory();
    let db = await open(dir, { partitions: 4, workers: 1 });
    const ids: Record<string, number> = {};
    for (const name of ['alpha', 'beta', 'gamma']) {
      const store = await db.store(name);
      ids[name] = store.id;
      await store.batch(
        Array.from({ length: 20 }, (_, i) => ({ type: 'put', key: `${name}${i}`, value: `${i}` })),
      );
    }
    await db.put('plain', 'default');
    await db.dropStore('beta');
    await db.close();

    db = await open(dir, { partitions: 4, workers: 1 });
    const backupDir = join(temporaryDirectory(), 'backup');
    try {
      expect(db.stores()).toEqual(['alpha', 'gamma']);
      expect(codeOf(await rejection(db.store('beta', { create: false })))).toBe('ERR_NOT_FOUND');
      const alpha = await db.store('alpha', { create: false });
      expect(alpha.id).toBe(ids.alpha);
      expect(contents(alpha.range({ limit: 2 }))).toEqual([
        ['alpha0', '0'],
        ['alpha1', '1'],
      ]);
      expect([...(await db.store('gamma')).range()]).toHaveLength(20);
      expect(contents(db.range())).toEqual([['plain', 'default']]);
      // The id counter survived: a new store gets an id after every one ever created.
      expect((await db.store('delta')).id).toBe(ids.gamma! + 1);
      await db.backup(backupDir);
    } finally {
      await db.close();
    }

    const restored = join(temporaryDirectory(), 'restored');
    await restore(backupDir, restored);
    db = await open(restored, { partitions: 4, workers: 1 });
    try {
      expect(db.stores()).toEqual(['alpha', 'delta', 'gamma']);
      expect((await db.store('gamma', { create: false })).getString('gamma7')).toBe('7');
      expect(contents(db.range())).toEqual([['plain', 'default']]);
    } finally {
      await db.close();
    }
  });

  it('leaves a store fully gone after a SIGKILL in the middle of dropStore(), and finishes the drop', async () => {
    const dir = temporaryDirectory();
    const bigEntries = 5000;
    const keepEntries = 30;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', dropChild, dir, String(bigEntries), String(keepEntries)],
      {
        cwd: root,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const signal = await within(
      new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal))),
      120_000,
      'the drop child to end',
    );
    expect(signal, `stdout: ${stdout}\nstderr: ${stderr}`).toBe('SIGKILL');
    expect(stdout).toMatch(/killing mid-drop \d+/);

    // A read-only open sees the store gone and cannot finish the drop, and says nothing of it.
    const reader = await open(dir, { partitions: 4, workers: 1, readOnly: true });
    try {
      expect(reader.stores()).toEqual(['keep']);
      const entries = reader.stats().entries;
      expect((await reader.store('keep')).getString('k1')).toBe('keep 1');
      expect(codeOf(await rejection(reader.store('big', { create: false })))).toBe('ERR_NOT_FOUND');
      expect(reader.stats().entries).toBe(entries);
    } finally {
      await reader.close();
    }

    const db = await open(dir, { partitions: 4, workers: 1 });
    try {
      // Gone for every reader at once: not listed, not openable, and a store made under its name is
      // new and empty; what the drop had not deleted yet is there until a store() call finishes it.
      expect(db.stores()).toEqual(['keep']);
      const catalogEntries = 2; // the record of "keep" and the id counter
      const left = db.stats().entries - keepEntries - catalogEntries;
      expect(left, 'entries the interrupted drop had not deleted yet, and its record').toBeGreaterThan(0);
      expect(codeOf(await rejection(db.store('big', { create: false })))).toBe('ERR_NOT_FOUND');
      expect(db.stats().entries, 'store() finished the drop').toBe(keepEntries + catalogEntries);
      const keep = await db.store('keep');
      expect(contents(keep.range({ limit: 1 }))).toEqual([['k0', 'keep 0']]);
      const big = await db.store('big');
      expect(big.id).toBe(3);
      expect([...big.range()]).toEqual([]);
    } finally {
      await db.close();
    }
  });
});

describe('named stores across threads', () => {
  it('agrees on one id per store when two attached threads and the main thread create them at once', async () => {
    const dir = temporaryDirectory();
    const db = await open(dir, { partitions: 4, workers: 2, durability: 'none' });
    const mailboxes: WorkerMailbox<StoreCreatorReply>[] = [];
    try {
      const preset = await db.store('preset');
      await preset.put('k', 'written by main');
      const names = ['s1', 's2', 's3', 's4', 's5'];
      const barrier = new SharedArrayBuffer(8);
      const threads = 2;
      for (let i = 0; i < threads; i++) {
        const input: StoreCreatorInput = { handle: db.share(), names, barrier, threads };
        const worker = startTsWorker(new URL('./fixtures/store-creator-worker.ts', import.meta.url), input);
        mailboxes.push(new WorkerMailbox<StoreCreatorReply>(worker, `creator ${i}`));
      }
      for (const mailbox of mailboxes) {
        const seen = await within(mailbox.next('seen'), 60_000, `${mailbox.name} attached`);
        expect(seen.stores).toEqual(['preset']);
        expect(seen.preset).toBe('written by main');
      }
      const flags = new Int32Array(barrier);
      while (Atomics.load(flags, 0) < threads) await new Promise((resolve) => setTimeout(resolve, 1));
      Atomics.store(flags, 1, 1);
      const mine = await Promise.all(names.map((name) => db.store(name)));
      const expected = Object.fromEntries(mine.map((store) => [store.name, store.id]));
      for (const mailbox of mailboxes) {
        const created = await within(mailbox.next('created'), 60_000, `${mailbox.name} created`);
        expect(created.ids).toEqual(expected);
      }
      expect(new Set(Object.values(expected)).size).toBe(names.length);
      expect(db.stores()).toEqual(['preset', ...names]);
    } finally {
      for (const mailbox of mailboxes) await mailbox.worker.terminate();
      await db.close();
    }
  });
});
