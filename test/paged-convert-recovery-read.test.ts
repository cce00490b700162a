/**
 * Converting an in-memory database to page files: one owner finishes its recovery and records its
 * partition's first page set while another owner is still reading the earlier runs' logs (every owner
 * reads every log). The first owner must not remove a segment the other has still to read: the open
 * then failed with ENOENT for that segment. No owner removes an earlier run's segment before the
 * opener saw every owner start (SegmentRemoval). A file layer holds the second owner's read of the
 * first owner's segment until that segment is gone or the first owner's set is recorded, so the
 * interleaving is forced, not waited for.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { holdOwnerEnvName, holdSegmentEnvName } from './support/held-read-file-layer.js';
import { mulberry32 } from './support/seeded-random.js';

const layer = fileURLToPath(new URL('./support/held-read-file-layer.ts', import.meta.url));
const keys = 3000;
const tailWrites = 500;
const directories: string[] = [];

afterEach(() => {
  delete process.env[holdOwnerEnvName];
  delete process.env[holdSegmentEnvName];
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe('converting to page files while another owner still reads the logs', () => {
  it('removes no log segment before every owner has read it', async () => {
    const random = mulberry32(14);
    const source = mkdtempSync(join(tmpdir(), 'ldb-convert-read-src-'));
    const directory = mkdtempSync(join(tmpdir(), 'ldb-convert-read-'));
    directories.push(source, directory);
    const value = (i: number): string => `v${i}|${'c'.repeat(100 + (random() % 150))}`;
    const expected = new Map<string, string>();
    const db = await open(source, { partitions: 2, workers: 2 });
    for (let i = 0; i < keys; i += 500) {
      const batch = Array.from({ length: 500 }, (_, j) => [`k${i + j}`, value(i + j)] as const);
      await Promise.all(batch.map(([key, v]) => db.put(key, v)));
      for (const [key, v] of batch) expected.set(key, v);
    }
    await db.checkpoint();
    // A log tail after the checkpoint: each owner's earlier log is still needed at the conversion.
    for (let i = 0; i < tailWrites; i++) {
      await db.put(`k${i}`, `tail${i}`);
      expected.set(`k${i}`, `tail${i}`);
    }
    await db.close();
    cpSync(source, directory, { recursive: true });
    const segments = readdirSync(join(directory, 'wal'));
    // Partition 1's owner (worker 1) writes the second log; partition 0's owner is held reading it.
    const held = segments.find((name) => /^wal-\d+-0001-/.test(name));
    expect(held).toBeDefined();
    process.env[holdOwnerEnvName] = '0000';
    process.env[holdSegmentEnvName] = held!;

    const converted = await open(directory, {
      partitions: 2,
      workers: 2,
      memoryMaxBytes: 2 * 64 * 4096,
      fileLayer: layer,
    });
    let wrong = 0;
    for (const [key, v] of expected) if (converted.getString(key) !== v) wrong++;
    await converted.close();
    expect(wrong).toBe(0);
    // No earlier run's segment went before every owner started (a later checkpoint removes it).
    expect(existsSync(join(directory, 'wal', held!))).toBe(true);

    const reopened = await open(directory, { partitions: 2, memoryMaxBytes: 2 * 64 * 4096 });
    wrong = 0;
    for (const [key, v] of expected) if (reopened.getString(key) !== v) wrong++;
    await reopened.close();
    expect(wrong).toBe(0);
  });
});
