/**
 * A writable open of a database over page files while a read-only open reads them: the read-only
 * open takes no lock (it leaves the directory as it was), so the writer finds it by the page files it
 * holds open (/proc/<pid>/fd), and is refused with ERR_LOCKED naming the process; once the reader
 * closes, the writer opens. Two readers: a read-only open in this process, and another process that
 * holds one page file open (as a read-only open there would, or a command reading the files).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';

const options = { partitions: 2, workers: 1, memoryMaxBytes: 2 * 256 * 4096 } as const;
let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-ro-writer-'));
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(
  attempt: Promise<{ close(): Promise<void> }>,
): Promise<{ code: string; message: string }> {
  try {
    const db = await attempt;
    await db.close();
    return { code: 'opened', message: '' };
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return { code: code ?? 'none', message };
  }
}

/** A process that opens `path` for reading and holds it until killed; resolves once it holds it. */
async function holdOpen(path: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `require('node:fs').openSync(${JSON.stringify(path)}, 'r'); console.log('holding'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('holding')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
  return child;
}

it('refuses a writer while a read-only open, here or in another process, holds the page files', async () => {
  const writer = await open(dir, options);
  for (let i = 0; i < 200; i++) await writer.put(`key${i}`, `value${i}`);
  await writer.close();

  const reader = await open(dir, { ...options, readOnly: true });
  expect(reader.get('key7')?.toString()).toBe('value7');
  const here = await codeOf(open(dir, options));
  expect(here.code).toBe('ERR_LOCKED');
  expect(here.message).toContain(`${process.pid} (this process)`);
  // The refused writer changed nothing the reader reads.
  expect(reader.get('key199')?.toString()).toBe('value199');
  await reader.close();

  const holder = await holdOpen(join(partitionDirectory(dir, 1), pageFileName));
  const there = await codeOf(open(dir, options));
  expect(there.code).toBe('ERR_LOCKED');
  expect(there.message).toContain(`process ${holder.pid}`);
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));

  const again = await open(dir, options);
  expect(again.get('key42')?.toString()).toBe('value42');
  await again.put('key200', 'value200');
  await again.close();
});
