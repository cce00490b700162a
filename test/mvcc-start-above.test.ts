/**
 * The timestamp oracle after a restart over a page file. The pages keep each head's commit timestamp
 * from the run that wrote it, and page 0 records the oracle's value with each set (timestampHigh).
 * A new run's oracle starts at 1: a snapshot taken there would find every recovered head stamped
 * while a snapshot was open newer than itself, and with no older version stored (the version store
 * is not kept), read nothing at all.
 * Recovery reports the high-water (PartitionRecovery.timestampHigh) and each owner raises the shared
 * oracle above it (MvccState.startAbove) before the database serves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { type BatchEntry, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { VersionedPartition } from '../src/workers/versioned-partition.js';

const pageSize = 4096;
const sizes = { committers: 1, threads: 1, slotsPerThread: 1, transactionEntries: 1 };
const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function put(key: string, value: string): BatchEntry {
  return { kind: operationPut, key: Buffer.from(key), value: Buffer.from(value) };
}

async function openPaged(dir: string): Promise<PagedTree> {
  return PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax: 1024, framesMax: 64 });
}

/** What a new snapshot on `mvcc` reads of `keys` in the partition. */
function readAtSnapshot(
  partition: VersionedPartition,
  mvcc: MvccState,
  keys: string[],
): (string | undefined)[] {
  const at = mvcc.registerSnapshot(0, 0);
  try {
    return keys.map((key) => partition.reader.get(Buffer.from(key), at)?.toString());
  } finally {
    mvcc.releaseSnapshot(0, 0);
  }
}

describe('MvccState.startAbove', () => {
  it('raises the oracle, never lowers it, and refuses what is not a timestamp', () => {
    const mvcc = MvccState.create(sizes);
    expect(mvcc.now()).toBe(1);
    mvcc.startAbove(50);
    expect(mvcc.now()).toBe(50);
    expect(mvcc.openWindow(0)).toBe(51);
    mvcc.closeWindow(0);
    mvcc.startAbove(10);
    expect(mvcc.now()).toBe(51);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      expect(() => mvcc.startAbove(bad)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    }
  });

  it('makes heads recovered from a page file visible to the first snapshots of the next run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lightning-start-above-'));
    dirs.push(dir);
    await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
    const keys = Array.from({ length: 40 }, (_, i) => `key${String(i).padStart(3, '0')}`);

    // The earlier run: 40 commit windows, one key each, while a snapshot is open (so the heads carry
    // their commit timestamps), then a page set with the oracle's value.
    const before = MvccState.create(sizes);
    const written = await openPaged(dir);
    const first = new VersionedPartition(written.tree, BTree.create(), before);
    before.registerSnapshot(0, 0);
    for (const key of keys) {
      const timestamp = before.openWindow(0);
      const keepVersions = before.oldestSnapshot() < timestamp;
      expect(keepVersions).toBe(true);
      first.applyWrites(() => [put(key, `value of ${key}`)], { timestamp, keepVersions });
      before.closeWindow(0);
    }
    before.releaseSnapshot(0, 0);
    expect(before.now()).toBe(41);
    await written.writePages(1, before.now());
    written.close();

    // The next run: its oracle starts at 1, below every recovered head.
    const reopened = await openPaged(dir);
    try {
      expect(reopened.timestampHigh).toBe(41);
      const after = MvccState.create(sizes);
      const second = new VersionedPartition(reopened.tree, BTree.create(), after);
      expect(readAtSnapshot(second, after, keys).filter((value) => value !== undefined)).toEqual([]);
      after.startAbove(reopened.timestampHigh);
      expect(readAtSnapshot(second, after, keys)).toEqual(keys.map((key) => `value of ${key}`));
    } finally {
      reopened.close();
    }
  });
});
