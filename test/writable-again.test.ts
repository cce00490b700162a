/**
 * A database opened on a full disk takes its lock later only if no other process wrote the database
 * meanwhile: WritableAgain with the fingerprint of a directory that has changed since gives up, never
 * starts the owners writing, leaves the lock free and keeps refusing writes. The path where space
 * returns and writes are taken is tested on a real full tmpfs in disk-full.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { WritableAgain } from '../src/main/writable-again.js';
import {
  createControlBlock,
  databaseControlWords,
  kDatabaseWritesRefused,
} from '../src/shared-memory/index.js';
import { directoryFingerprint } from '../src/storage/directory-fingerprint.js';
import { acquireLock } from '../src/storage/lock-file.js';

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function databaseDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ldb-writable-again-'));
  directories.push(directory);
  writeFileSync(join(directory, 'LIGHTNING.json'), '{}');
  return directory;
}

it('a fingerprint changes with any file of the database and ignores the lock', async () => {
  const directory = databaseDirectory();
  const before = await directoryFingerprint(directory);
  writeFileSync(join(directory, 'LOCK'), 'held');
  expect(await directoryFingerprint(directory)).toBe(before);
  writeFileSync(join(directory, 'LIGHTNING.json'), '{"changed":1}');
  const changed = await directoryFingerprint(directory);
  expect(changed).not.toBe(before);
  writeFileSync(join(directory, 'new-file'), '');
  expect(await directoryFingerprint(directory)).not.toBe(changed);
});

it('gives up, starts no owner and frees the lock when another process wrote the database', async () => {
  const directory = databaseDirectory();
  const fingerprint = await directoryFingerprint(directory);
  // Another process wrote the database while this one served reads without its lock.
  writeFileSync(join(directory, 'LIGHTNING.json'), '{"written":"elsewhere"}');
  const databaseControl = new Int32Array(createControlBlock(databaseControlWords(1)).buffer);
  let ownersAsked = 0;
  let finished = 0;
  const watcher = new WritableAgain(
    {
      directory,
      databaseControl,
      becomeWritable: async () => {
        ownersAsked++;
      },
      finishOpen: async () => {
        finished++;
      },
    },
    fingerprint,
  );
  const errors: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    watcher.start();
    let rounds = 0;
    while (watcher.givenUp === null) {
      // It looks every second; a minute without an answer is a hang.
      expect(++rounds).toBeLessThan(240);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    console.error = consoleError;
  }
  expect(watcher.givenUp).toContain('another process changed the database');
  expect(ownersAsked).toBe(0);
  expect(finished).toBe(0);
  expect(Atomics.load(databaseControl, kDatabaseWritesRefused)).toBe(1);
  expect(await watcher.stop()).toBeNull();
  // The lock it took to look is free again.
  const release = await acquireLock(directory);
  await release();
  expect(errors.length).toBe(1);
});
