import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LightningError, open } from '../src/index.js';
import { encodeLockFile, processStartTicks, thisProcess } from '../src/storage/lock-file.js';

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

  it('takes over a lock file (old "pid" format) whose process no longer exists', async () => {
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

  it('lets exactly one of two racing openers win, over no lock and over a stale one', async () => {
    for (const stale of [false, true]) {
      const directory = freshDirectory();
      if (stale) {
        const finished = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
        writeFileSync(join(directory, 'LOCK'), `${finished.stdout.toString()}\n`);
      }
      const outcomes = await Promise.allSettled([
        open(directory, { partitions: 2, workers: 1 }),
        open(directory, { partitions: 2, workers: 1 }),
      ]);
      const opened = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
      expect(opened.length, `stale: ${stale}`).toBe(1);
      expect((refused[0]!.reason as LightningError).code).toBe('ERR_LOCKED');
      await opened[0]!.value.close();
    }
  });

  it('writes the pid on the first line and the holder with its start time and boot on the second', async () => {
    const directory = freshDirectory();
    const db = await open(directory, { partitions: 2, workers: 1 });
    try {
      const text = readFileSync(join(directory, 'LOCK'), 'utf8');
      expect(text).toBe(await encodeLockFile(await thisProcess()));
      expect(text.split('\n')[0]).toBe(String(process.pid));
    } finally {
      await db.close();
    }
  });
});

/**
 * Pid reuse: the lock names the process by pid, start time and boot, so a pid that now belongs to an
 * unrelated live process is recognised as not the holder. Needs /proc (Linux).
 */
describe.skipIf(!existsSync('/proc/self/stat'))('the lock against reused pids', () => {
  /** A live process unrelated to any database: `sleep 60`, with its pid and start time. */
  async function unrelatedLiveProcess(): Promise<{ pid: number; startTicks: string }> {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(child);
    await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
    const pid = child.pid!;
    const startTicks = await processStartTicks(pid);
    expect(startTicks).toMatch(/^[0-9]+$/);
    return { pid, startTicks: startTicks! };
  }

  async function writeLock(directory: string, pid: number, processStartTicks: string): Promise<void> {
    const { bootId } = await thisProcess();
    writeFileSync(join(directory, 'LOCK'), await encodeLockFile({ pid, processStartTicks, bootId }));
  }

  it('takes over a lock whose pid is alive but started at another time (another process)', async () => {
    const directory = freshDirectory();
    const { pid, startTicks } = await unrelatedLiveProcess();
    await writeLock(directory, pid, String(BigInt(startTicks) + 1n));
    const db = await open(directory, { partitions: 2, workers: 1 });
    await db.put('k', 'v');
    expect(readFileSync(join(directory, 'LOCK'), 'utf8').split('\n')[0]).toBe(String(process.pid));
    await db.close();
  });

  it('refuses a lock whose pid is alive with the start time recorded (the holder)', async () => {
    const directory = freshDirectory();
    const { pid, startTicks } = await unrelatedLiveProcess();
    await writeLock(directory, pid, startTicks);
    expect(await codeOf(open(directory, { partitions: 2, workers: 1 }))).toBe('ERR_LOCKED');
  });

  it("takes over a lock naming this process's pid with another start time (a pid reused by this process)", async () => {
    const directory = freshDirectory();
    const own = await thisProcess();
    await writeLock(directory, process.pid, String(BigInt(own.processStartTicks!) + 1n));
    const db = await open(directory, { partitions: 2, workers: 1 });
    await db.close();
  });

  it('takes over a lock written in an earlier boot, even if its pid is alive', async () => {
    const directory = freshDirectory();
    const { pid, startTicks } = await unrelatedLiveProcess();
    const lock = await encodeLockFile({ pid, processStartTicks: startTicks, bootId: 'an-earlier-boot' });
    writeFileSync(join(directory, 'LOCK'), lock);
    const db = await open(directory, { partitions: 2, workers: 1 });
    await db.close();
  });
});
