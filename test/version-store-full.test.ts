/**
 * A delete or a small overwrite of a large value while a snapshot is open keeps the large value in
 * the partition's version store. Staging used to count that version with the size of the value
 * replacing it (nothing, for a delete), so a partition whose version store was nearly full took the
 * write, logged it, and then failed to apply it: the owner stopped, and every writer of its
 * partitions got ERR_WORKER_CRASHED. Staging now counts the head the write replaces, so the write is
 * refused with ERR_PARTITION_FULL before it is logged, and the database goes on serving.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { noReservation, reserveForPass } from '../src/workers/pass-reservation.js';
import { VersionedPartition } from '../src/workers/versioned-partition.js';
import { codeOf } from './support/async.js';

const dirs: string[] = [];
const databases: Database[] = [];
afterEach(async () => {
  for (const db of databases.splice(0)) await db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const big = (round: number, i: number): Buffer => Buffer.alloc(30_000, round * 16 + i);

describe('a version store near full', () => {
  it('refuses, before applying, a delete that would keep a large version the store has no room for', () => {
    const mvcc = MvccState.create({ committers: 2, threads: 1, slotsPerThread: 2, transactionEntries: 4 });
    const maxBytes = 4096 * 64;
    const partition = new VersionedPartition(BTree.create({ maxBytes }), BTree.create({ maxBytes }), mvcc);
    /** Stages as the owner does, then applies in a commit window of its own. */
    const write = (entries: BatchEntry[]): void => {
      const mayKeepVersions = mvcc.openSnapshots() > 0 || partition.versionsRetained > 0;
      reserveForPass(partition.tree, partition.versions, entries, noReservation, mayKeepVersions);
      const timestamp = mvcc.openWindow(0);
      try {
        partition.applyWrites(() => entries, { timestamp, keepVersions: mvcc.oldestSnapshot() < timestamp });
      } finally {
        mvcc.closeWindow(0);
      }
    };
    const snapshot = mvcc.registerSnapshot(0, 0);
    let deleted = 0;
    let refusal: unknown = null;
    let refused = { round: -1, i: -1 };
    // Each round puts six 30,000-byte values (each staged against the version store's room as it
    // was), then deletes them: every delete moves one to the version store.
    rounds: for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 6; i++)
        write([{ kind: operationPut, key: Buffer.from(`k${round}-${i}`), value: big(round, i) }]);
      for (let i = 0; i < 6; i++) {
        try {
          write([{ kind: operationDel, key: Buffer.from(`k${round}-${i}`), value: null }]);
          deleted++;
        } catch (error) {
          refusal = error;
          refused = { round, i };
          break rounds;
        }
      }
    }
    expect(codeOf(refusal)).toBe('ERR_PARTITION_FULL');
    expect(String(refusal)).toContain('version store');
    expect(deleted).toBeGreaterThan(6);
    // Refused at staging: the key keeps its value, and both trees still take writes.
    const refusedKey = Buffer.from(`k${refused.round}-${refused.i}`);
    expect(partition.reader.get(refusedKey, readLatest)?.equals(big(refused.round, refused.i))).toBe(true);
    write([{ kind: operationPut, key: Buffer.from('after'), value: Buffer.from('x') }]);
    expect(partition.reader.get(Buffer.from('after'), readLatest)?.toString()).toBe('x');
    expect(partition.reader.get(refusedKey, snapshot)).toBeUndefined();
    mvcc.releaseSnapshot(0, 0);
    expect(partition.collectGarbage(mvcc.oldestSnapshot())).toBe(true);
    expect(partition.versionsRetained).toBe(0);
  });

  it('a database refuses the delete with ERR_PARTITION_FULL and goes on serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ldb-version-store-full-'));
    dirs.push(dir);
    const db = await open(dir, { partitions: 1, workers: 1, partitionBytesMax: 256 * 1024 });
    databases.push(db);
    for (let i = 0; i < 6; i++) await db.put(`k0-${i}`, big(0, i));
    // Keeps every value deleted from now on.
    const snapshot = db.snapshot();
    let refusal: unknown = null;
    let deleted = 0;
    rounds: for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 6 && round > 0; i++) {
        try {
          await db.put(`k${round}-${i}`, big(round, i));
        } catch (error) {
          refusal = error;
          break rounds;
        }
      }
      for (let i = 0; i < 6; i++) {
        try {
          await db.del(`k${round}-${i}`);
          deleted++;
        } catch (error) {
          refusal = error;
          break rounds;
        }
      }
    }
    // Refused, at a put or at a delete, for want of pages: never an owner that stopped.
    expect(codeOf(refusal)).toBe('ERR_PARTITION_FULL');
    expect(deleted).toBeGreaterThan(0);
    await db.put('after', 'x');
    expect(db.getString('after')).toBe('x');
    expect(Buffer.from(snapshot.get('k0-0') ?? []).equals(big(0, 0))).toBe(true);
    snapshot.release();
    // With no snapshot open the versions go, and the writes the store refused fit again.
    for (let i = 0; i < 6; i++) await db.del(`k0-${i}`);
    await db.put('later', big(9, 9));
    expect(Buffer.from(db.get('later') ?? []).equals(big(9, 9))).toBe(true);
  });
});
