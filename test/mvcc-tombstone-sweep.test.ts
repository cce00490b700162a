/**
 * VersionedPartition.sweepTombstones: the tombstones a restart leaves unnamed. Deletes made while a
 * snapshot is open leave tombstones in the main tree, which the cleanup queue removes once no
 * snapshot needs them; the queue lives in memory, but a page file keeps the tombstones. The runs here
 * model the restart by a new VersionedPartition (empty queue, new MVCC state) over the same trees.
 * The sweep, in steps of a few cells, must remove every tombstone and nothing else; it must keep a
 * tombstone over stored versions (a snapshot older than it reads them; a later put would show them
 * to newer ones) and an intent; over a buffer pool of a few frames it stops while the frames are
 * short, and goes on after a page set.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { VersionedPartition } from '../src/workers/versioned-partition.js';
import { snapshotPrepare } from './support/prepared-part.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x70b5);
console.log(`mvcc-tombstone-sweep: seed ${seed} (LIGHTNING_SEED to replay)`);

const sizes = { committers: 2, threads: 1, slotsPerThread: 2, transactionEntries: 4 };
const keyCount = 600;
const key = (i: number): Buffer => Buffer.from(`key${String(i).padStart(5, '0')}`);
const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function write(partition: VersionedPartition, mvcc: MvccState, entries: BatchEntry[]): number {
  const timestamp = mvcc.openWindow(0);
  partition.applyWrites(() => entries, { timestamp, keepVersions: mvcc.oldestSnapshot() < timestamp });
  mvcc.closeWindow(0);
  return timestamp;
}

/**
 * Fills `tree` with `keyCount` keys, then deletes a seeded third of them while a snapshot is open,
 * and returns the deleted keys' indexes: the run that left the tombstones, before the restart.
 */
function leaveTombstones(tree: BTree): Set<number> {
  const mvcc = MvccState.create(sizes);
  const partition = new VersionedPartition(tree, BTree.create(), mvcc);
  const random = mulberry32(seed);
  for (let i = 0; i < keyCount; i += 50) {
    const batch: BatchEntry[] = [];
    for (let k = i; k < i + 50; k++)
      batch.push({ kind: operationPut, key: key(k), value: Buffer.alloc(40 + (k % 200), k) });
    write(partition, mvcc, batch);
  }
  mvcc.registerSnapshot(0, 0);
  const deleted = new Set<number>();
  while (deleted.size < keyCount / 3) {
    const k = random() % keyCount;
    if (deleted.has(k)) continue;
    deleted.add(k);
    write(partition, mvcc, [{ kind: operationDel, key: key(k), value: null }]);
  }
  return deleted;
}

/** Sweeps `cellsMax` cells at a time until the end; `stalled` runs when a step made no progress. */
async function sweepAll(
  partition: VersionedPartition,
  cellsMax: number,
  stalled: () => Promise<void> = async () => {
    throw new Error('the sweep stopped with frames to spare');
  },
): Promise<number> {
  let cursor: Uint8Array | null = new Uint8Array(0);
  let steps = 0;
  while (cursor !== null) {
    const next = partition.sweepTombstones(cursor, cellsMax);
    if (next !== null && Buffer.compare(next, cursor) === 0) await stalled();
    cursor = next;
    steps++;
  }
  return steps;
}

function expectLive(partition: VersionedPartition, deleted: Set<number>): void {
  for (let k = 0; k < keyCount; k++) {
    const value = partition.reader.get(key(k), readLatest);
    if (deleted.has(k)) expect(value, `key ${k}`).toBeUndefined();
    else expect(value?.equals(Buffer.alloc(40 + (k % 200), k)), `key ${k}`).toBe(true);
  }
}

describe('sweeping the tombstones a restart leaves', () => {
  it('removes every tombstone and nothing else, a few cells at a time', async () => {
    const tree = BTree.create();
    const deleted = leaveTombstones(tree);
    expect(tree.tombstoneCount).toBe(deleted.size);
    // The restart: an empty queue, a new oracle started above the old run's timestamps.
    const mvcc = MvccState.create(sizes);
    mvcc.startAbove(10_000);
    const partition = new VersionedPartition(tree, BTree.create(), mvcc);
    expect(partition.hasGarbage).toBe(false);
    const steps = await sweepAll(partition, 7);
    expect(steps).toBeGreaterThan(keyCount / 7);
    expect(tree.tombstoneCount).toBe(0);
    expect(checkTree(tree).entries).toBe(keyCount - deleted.size);
    expectLive(partition, deleted);
  });

  it('keeps a tombstone over stored versions, and an intent', async () => {
    const mvcc = MvccState.create(sizes);
    const partition = new VersionedPartition(BTree.create(), BTree.create(), mvcc);
    write(partition, mvcc, [
      { kind: operationPut, key: key(1), value: Buffer.from('one') },
      { kind: operationPut, key: key(2), value: Buffer.from('two') },
    ]);
    const snapshot = mvcc.registerSnapshot(0, 0);
    write(partition, mvcc, [{ kind: operationDel, key: key(1), value: null }]);
    // A prepared transaction's deletes of key 2 and of key 3, which has no head: intents, decided later.
    const reference = mvcc.allocateTransaction(0, -1, 7);
    const part = snapshotPrepare(reference, 7, mvcc.now(), [
      { kind: operationDel, key: key(2), value: null },
      { kind: operationDel, key: key(3), value: null },
    ]);
    partition.lockPrepared(part, 1);
    partition.installPrepared(part);
    mvcc.joinTransaction(reference);

    await sweepAll(partition, 100);
    // The snapshot still reads key 1; the intents stand.
    expect(partition.reader.get(key(1), snapshot)?.toString()).toBe('one');
    expect(partition.tree.tombstoneCount).toBe(3);
    mvcc.releaseSnapshot(0, 0);
    // No snapshot needs key 1's version now, but it is still stored: its cleanup item removes both.
    await sweepAll(partition, 100);
    expect(partition.tree.tombstoneCount).toBe(3);
    expect(partition.collectGarbage(mvcc.oldestSnapshot())).toBe(true);
    expect(partition.tree.tombstoneCount).toBe(2);
    expect(partition.versionsRetained).toBe(1);
    expect(partition.reader.get(key(1), readLatest)).toBeUndefined();
    // Aborted: the intent goes, and key 2 reads as before.
    mvcc.decide(reference, false, 0);
    for (const decided of partition.applyDecisions()) mvcc.participantDone(decided.reference);
    expect(partition.reader.get(key(2), readLatest)?.toString()).toBe('two');
    expect(partition.tree.tombstoneCount).toBe(0);
  });

  it('never shows a deleted value again to a snapshot that read the delete', async () => {
    const mvcc = MvccState.create(sizes);
    const partition = new VersionedPartition(BTree.create(), BTree.create(), mvcc);
    write(partition, mvcc, [{ kind: operationPut, key: key(1), value: Buffer.from('old') }]);
    mvcc.registerSnapshot(0, 0);
    write(partition, mvcc, [{ kind: operationDel, key: key(1), value: null }]);
    mvcc.releaseSnapshot(0, 0);
    // Opened after the delete, before cleanup ran: the version 'old' is still stored.
    const snapshot = mvcc.registerSnapshot(0, 1);
    expect(partition.reader.get(key(1), snapshot)).toBeUndefined();
    await sweepAll(partition, 100);
    write(partition, mvcc, [{ kind: operationPut, key: key(1), value: Buffer.from('new') }]);
    expect(partition.reader.get(key(1), readLatest)?.toString()).toBe('new');
    expect(partition.reader.get(key(1), snapshot)).toBeUndefined();
    mvcc.releaseSnapshot(0, 1);
  });

  it('removes a tombstone with no stored versions under an older snapshot, which reads the key as absent either way', async () => {
    const mvcc = MvccState.create(sizes);
    const partition = new VersionedPartition(BTree.create(), BTree.create(), mvcc);
    const snapshot = mvcc.registerSnapshot(0, 0);
    // Put and deleted in one commit window while the snapshot is open: a tombstone, no version.
    write(partition, mvcc, [
      { kind: operationPut, key: key(1), value: Buffer.from('brief') },
      { kind: operationDel, key: key(1), value: null },
    ]);
    expect(partition.tree.tombstoneCount).toBe(1);
    expect(partition.versionsRetained).toBe(0);
    await sweepAll(partition, 100);
    expect(partition.tree.tombstoneCount).toBe(0);
    write(partition, mvcc, [{ kind: operationPut, key: key(1), value: Buffer.from('later') }]);
    expect(partition.reader.get(key(1), snapshot)).toBeUndefined();
    expect(partition.reader.get(key(1), readLatest)?.toString()).toBe('later');
    mvcc.releaseSnapshot(0, 0);
  });

  it('stops while a buffer pool is short of frames, and goes on after a page set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lightning-sweep-'));
    dirs.push(dir);
    await createPageFile(dir, { pageSizeBytes: 4096, partition: 0 });
    const open = (framesMax: number) =>
      PagedTree.open({ dir, partition: 0, pageSizeBytes: 4096, pagesMax: 2048, framesMax });
    const written = await open(256);
    const deleted = leaveTombstones(written.tree);
    await written.writePages(1, 10_000);
    written.close();

    const paged = await open(16);
    try {
      const mvcc = MvccState.create(sizes);
      mvcc.startAbove(paged.timestampHigh);
      const partition = new VersionedPartition(paged.tree, BTree.create(), mvcc);
      expect(paged.tree.tombstoneCount).toBe(deleted.size);
      let sets = 0;
      await sweepAll(partition, 50, async () => {
        sets++;
        await paged.writePages(1, mvcc.now());
      });
      expect(sets).toBeGreaterThan(0);
      expect(paged.tree.tombstoneCount).toBe(0);
      expect(checkTree(paged.tree).entries).toBe(keyCount - deleted.size);
      expectLive(partition, deleted);
    } finally {
      paged.close();
    }
  });
});
