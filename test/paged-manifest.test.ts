/**
 * The manifest's record of a partition over a page file: a page set is recorded only once the page
 * file holds it, the page file can never be older than the manifest says, and an open that keeps
 * partitions in memory refuses a partition whose checkpoint is its page file.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { manifestFileName, readManifest, recordPageSet } from '../src/storage/checkpoint/index.js';
import { manifestPagedFormatVersion } from '../src/storage/checkpoint/manifest.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';
import { LogCoverage } from '../src/storage/wal/log-coverage.js';
import { recoverPartitions } from '../src/workers/partition-recovery.js';
import { createPagedDatabase, openPagedPartition } from './fixtures/paged-partition-cycles.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-manifest-'));
  await createPagedDatabase(dir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const noDurableMark = { coversLog: null, durable: null };

async function writeSetAt(redoLsn: number): Promise<void> {
  const { paged } = await openPagedPartition(dir, 1);
  try {
    paged.tree.put('k', `v${redoLsn}`);
    await paged.writePages(redoLsn);
  } finally {
    paged.close();
  }
}

describe('the manifest of a partition over a page file', () => {
  it('records a page set only once the page file holds it', async () => {
    const partitionDir = partitionDirectory(dir, 0);
    await expect(recordPageSet(partitionDir, 0, 5n, noDurableMark)).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
    });
    await writeSetAt(5);
    await expect(recordPageSet(partitionDir, 0, 6n, noDurableMark)).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
    });
    await recordPageSet(partitionDir, 0, 5n, noDurableMark);
    const manifest = await readManifest(partitionDir);
    expect(manifest?.checkpoints).toEqual([{ partition: 0, file: pageFileName, startLsn: 5n, entries: 0 }]);
    // Version 4, which earlier builds refuse as a newer format instead of reading it as damaged.
    const stored = JSON.parse(await readFile(join(partitionDir, manifestFileName), 'utf8')) as {
      formatVersion: number;
    };
    expect(stored.formatVersion).toBe(manifestPagedFormatVersion);
    // Reopened: the tree as of the set, the log replayed from its redo LSN (there is no log here).
    const { paged, nextLsn } = await openPagedPartition(dir, 1);
    try {
      expect(nextLsn).toBe(5);
      expect(paged.tree.get('k')?.toString()).toBe('v5');
    } finally {
      paged.close();
    }
  });

  it('refuses a page file older than the set the manifest records', async () => {
    const partitionDir = partitionDirectory(dir, 0);
    await writeSetAt(5);
    await copyFile(join(partitionDir, pageFileName), join(dir, 'old-pages'));
    await writeSetAt(9);
    await recordPageSet(partitionDir, 0, 9n, noDurableMark);
    await copyFile(join(dir, 'old-pages'), join(partitionDir, pageFileName));
    await expect(openPagedPartition(dir, 1)).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
      message: expect.stringContaining('older than the manifest'),
    });
  });

  it('records the highest commit timestamp a cell may carry, which only rises', async () => {
    const first = await openPagedPartition(dir, 1);
    try {
      expect(first.paged.timestampHigh).toBe(0);
      first.paged.tree.put('k', 'v');
      await first.paged.writePages(5, 9000);
      // A lower oracle value (a caller without MVCC) cannot lower it: older pages keep their stamps.
      await first.paged.writePages(6, 100);
      expect(first.paged.timestampHigh).toBe(9000);
      await expect(first.paged.writePages(7, -1)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    } finally {
      first.paged.close();
    }
    const second = await openPagedPartition(dir, 1);
    try {
      expect(second.paged.timestampHigh).toBe(9000);
      expect(second.paged.redoLsn).toBe(6);
    } finally {
      second.paged.close();
    }
  });

  it('is refused by an open that keeps the partition in memory', async () => {
    await writeSetAt(5);
    await recordPageSet(partitionDirectory(dir, 0), 0, 5n, noDurableMark);
    const tree = BTree.create({ pageSizeBytes: 4096, maxBytes: 1 << 20 });
    await expect(
      recoverPartitions(dir, [{ partition: 0, tree }], new Set(), 1, new LogCoverage([null])),
    ).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT', message: expect.stringContaining('page file') });
  });
});
