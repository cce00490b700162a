import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LightningError, open } from '../src/index.js';

/**
 * The single-writer lock: a database directory is open in at most one place, because two owners of
 * one partition would interleave records in its log. Stale locks of dead processes are taken over.
 */

const directories: string[] = [];
const children: ChildProcess[] = [];

function freshDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ldb-lock-'));
  directories.push(directory);
  return directory;
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(LightningError);
    return (error as LightningError).code;
  }
}

/** A child process that opens `directory`, writes one key, says "ready" and then waits to be killed. */
function holdOpenInChild(directory: string): Promise<ChildProcess> {
  const script = `
    import { open } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    const db = await open(${JSON.stringify(directory)}, { partitions: 2, workers: 1 });
    await db.put('held', 'by a child');
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the child did not open the database within 20 s')),
      20_000,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`the child exited early with code ${code}`)));
  });
}

describe('the single-writer lock', () => {
  it('refuses a second open in the same process with ERR_LOCKED, and allows it after close', async () => {
    const directory = freshDirectory();
    const db = await open(directory, { partitions: 2, workers: 1 });
    await db.put('k', 'v');
    expect(await codeOf(open(directory, { workers: 1 }))).toBe('ERR_LOCKED');
    await db.close();
    const reopened = await open(directory, { workers: 1 });
    expect(reopened.getString('k')).toBe('v');
    await reopened.close();
  });

  it('refuses a directory held by another live process, and takes over once that process is killed', async () => {
    const directory = freshDirectory();
    const child = await holdOpenInChild(directory);
    expect(await codeOf(open(directory, { workers: 1 }))).toBe('ERR_LOCKED');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const db = await open(directory, { workers: 1 });
    expect(db.getString('held')).toBe('by a child');
    await db.close();
  }, 60_000);

  it('takes over a lock file whose process no longer exists', async () => {
    const directory = freshDirectory();
    const finished = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(finished.stdout.toString());
    expect(Number.isInteger(deadPid) && deadPid > 0).toBe(true);
    writeFileSync(join(directory, 'LOCK'), `${deadPid}\n`);
    const db = await open(directory, { partitions: 2, workers: 1 });
    await db.put('k', 'v');
    await db.close();
  });

  it('releases the lock when open() is refused', async () => {
    const directory = freshDirectory();
    const db = await open(directory, { partitions: 2, workers: 1 });
    await db.close();
    expect(await codeOf(open(directory, { partitions: 3, workers: 1 }))).toBe('ERR_BAD_ARGUMENT');
    const reopened = await open(directory, { workers: 1 });
    await reopened.close();
  });
});
