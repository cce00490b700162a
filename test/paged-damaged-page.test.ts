/**
 * A leaf page damaged in a closed database's page file (16 bytes overwritten in its cells), reopened
 * over a buffer pool too small to hold the tree: reads and writes of the keys in that leaf fail with
 * ERR_CORRUPTION (a write says nothing of it was applied), every other key reads and writes as
 * before, and the database closes and reopens with those writes. The owner keeps running: a write
 * that meets a damaged page is refused before it is logged.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { pageTypeLeaf, pType } from '../src/shared-memory/page-layout.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';
import { outcome } from './support/call-outcome.js';

const pageSize = 4096;
const options = { partitions: 1, workers: 1, memoryMaxBytes: 64 * pageSize } as const;
const keys = 3000;
const keyName = (index: number): string => `key-${String(index).padStart(5, '0')}`;

let dir = '';
afterEach(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  dir = '';
});

/** Overwrites 16 bytes inside the middle leaf page of the page file; returns its page id. */
function damageMiddleLeaf(file: string): number {
  const fd = openSync(file, 'r+');
  try {
    const leaves: number[] = [];
    const page = Buffer.alloc(pageSize);
    for (let pageId = 1; readSync(fd, page, 0, pageSize, pageId * pageSize) === pageSize; pageId++)
      if (page[pType] === pageTypeLeaf) leaves.push(pageId);
    expect(leaves.length, 'leaf pages in the page file').toBeGreaterThan(10);
    const pageId = leaves[leaves.length >> 1]!;
    writeSync(fd, Buffer.alloc(16, 0xff), 0, 16, pageId * pageSize + 200);
    return pageId;
  } finally {
    closeSync(fd);
  }
}

it('refuses reads and writes of a damaged leaf with ERR_CORRUPTION, and serves every other key', async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-damaged-page-'));
  let db = await open(dir, options);
  for (let first = 0; first < keys; first += 5) {
    await db.batch(
      Array.from({ length: 5 }, (_, i) => ({
        type: 'put' as const,
        key: keyName(first + i),
        value: `loaded ${first + i} ${'.'.repeat(300)}`,
      })),
    );
  }
  await db.close();
  const pageId = damageMiddleLeaf(join(partitionDirectory(dir, 0), pageFileName));

  db = await open(dir, options);
  const damaged: string[] = [];
  try {
    for (let index = 0; index < keys; index++) {
      const key = keyName(index);
      const read = await outcome(() => db.get(key));
      if (read === 'ERR_CORRUPTION') damaged.push(key);
      else expect(read, key).toBe('ok');
    }
    console.log(`paged-damaged-page: page ${pageId} damaged, ${damaged.length} keys unreadable`);
    expect(damaged.length).toBeGreaterThan(0);
    expect(damaged.length).toBeLessThan(keys / 10);

    const refused = await db.put(damaged[0]!, 'rewritten').catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'ERR_CORRUPTION' });
    expect(String(refused)).toContain('nothing of that write was applied');
    for (const key of damaged) {
      expect(await outcome(() => db.put(key, 'rewritten')), `put ${key}`).toBe('ERR_CORRUPTION');
      expect(await outcome(() => db.del(key)), `del ${key}`).toBe('ERR_CORRUPTION');
    }
    const transaction = () => db.transaction((tx) => tx.put(damaged[0]!, 'in a transaction'));
    expect(await outcome(transaction)).toBe('ERR_CORRUPTION');

    // Every other key: rewritten, then read back; the owner still takes writes.
    for (let index = 0; index < keys; index++) {
      const key = keyName(index);
      if (damaged.includes(key)) continue;
      await db.put(key, `rewritten ${index}`);
    }
    await db.close();
    db = await open(dir, options);
    for (let index = 0; index < keys; index++) {
      const key = keyName(index);
      if (damaged.includes(key)) expect(await outcome(() => db.get(key)), key).toBe('ERR_CORRUPTION');
      else expect(db.getString(key), key).toBe(`rewritten ${index}`);
    }
  } finally {
    await db.close();
  }
}, 120_000);
