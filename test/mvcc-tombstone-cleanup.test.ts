/**
 * Every tombstone an MVCC partition writes while a snapshot is open is named for cleanup, so that
 * once no snapshot can tell the deleted key from an absent one, cleanup removes it from the main tree.
 * A tombstone no cleanup item names stays until its key is written again: a leak for every key
 * deleted that way. test/mvcc-pool.test.ts found the first and third cases below against its model;
 * the second and fourth follow from the same rule. Each runs here on its own, in arenas, and must end
 * with the main tree and the version store empty.
 */
import { describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { VersionedPartition } from '../src/workers/versioned-partition.js';
import { snapshotPrepare } from './support/prepared-part.js';

const owner = 0;
const coordinator = 1;
const thread = 0;

function put(key: string, value: string): BatchEntry {
  return { kind: operationPut, key: Buffer.from(key), value: Buffer.from(value) };
}

function del(key: string): BatchEntry {
  return { kind: operationDel, key: Buffer.from(key), value: null };
}

/** A partition in arenas, driven as its owner and a coordinator would. */
class Partition {
  readonly mvcc = MvccState.create({ committers: 2, threads: 1, slotsPerThread: 4, transactionEntries: 8 });
  readonly versioned = new VersionedPartition(BTree.create(), BTree.create(), this.mvcc);

  /** Applies `entries` in one commit window. */
  write(...entries: BatchEntry[]): void {
    const timestamp = this.mvcc.openWindow(owner);
    const keepVersions = this.mvcc.oldestSnapshot() < timestamp;
    this.versioned.applyWrites(() => entries, { timestamp, keepVersions });
    this.mvcc.closeWindow(owner);
  }

  /** Prepares a transaction of one write and installs its intent; returns its status reference. */
  prepare(write: BatchEntry): number {
    const reference = this.mvcc.allocateTransaction(0, -1, 1);
    const part = snapshotPrepare(reference, 1, this.mvcc.now(), [write]);
    this.versioned.lockPrepared(part, 1);
    this.versioned.installPrepared(part);
    this.mvcc.joinTransaction(reference);
    return reference;
  }

  decide(reference: number, commit: boolean): void {
    if (commit) {
      const at = this.mvcc.openWindow(coordinator);
      this.mvcc.decide(reference, true, at);
      this.mvcc.closeWindow(coordinator);
    } else {
      this.mvcc.decide(reference, false, 0);
    }
    for (const decided of this.versioned.applyDecisions()) this.mvcc.participantDone(decided.reference);
  }

  /** Cells in the main tree, tombstones included. */
  get cells(): number {
    return checkTree(this.versioned.tree).entries;
  }

  expectEmpty(): void {
    this.versioned.collectGarbage(this.mvcc.oldestSnapshot());
    expect(this.versioned.hasGarbage).toBe(false);
    expect(this.versioned.versionsRetained).toBe(0);
    expect(this.cells).toBe(0);
    expect([...this.versioned.reader.range(undefined, readLatest)]).toEqual([]);
  }
}

describe('tombstones written under a snapshot are cleaned up', () => {
  it('after a put and a delete of one key in one commit window', () => {
    const partition = new Partition();
    partition.write(put('a', 'old'));
    partition.mvcc.registerSnapshot(thread, 0);
    partition.write(put('a', 'new'), del('a'));
    // The snapshot still reads the old value; a read of the newest finds the key deleted.
    expect(partition.versioned.reader.get(Buffer.from('a'), readLatest)).toBeUndefined();
    partition.mvcc.releaseSnapshot(thread, 0);
    partition.expectEmpty();
  });

  it('after a put of a new key and its delete in one commit window', () => {
    const partition = new Partition();
    partition.mvcc.registerSnapshot(thread, 0);
    partition.write(put('b', 'new'), del('b'));
    partition.mvcc.releaseSnapshot(thread, 0);
    partition.expectEmpty();
  });

  it('after a committed transaction deletes a key that had no head', () => {
    const partition = new Partition();
    partition.mvcc.registerSnapshot(thread, 0);
    partition.decide(partition.prepare(del('c')), true);
    expect(partition.cells).toBe(1);
    partition.mvcc.releaseSnapshot(thread, 0);
    partition.expectEmpty();
  });

  it('after an aborted transaction restores a tombstone whose cleanup ran while its intent stood', () => {
    const partition = new Partition();
    partition.write(put('d', 'value'));
    partition.mvcc.registerSnapshot(thread, 0);
    partition.write(del('d'));
    const reference = partition.prepare(del('d'));
    partition.mvcc.releaseSnapshot(thread, 0);
    // Cleanup takes the tombstone's item now, and passes the head over: it is an intent.
    partition.versioned.collectGarbage(partition.mvcc.oldestSnapshot());
    expect(partition.cells).toBe(1);
    partition.decide(reference, false);
    partition.expectEmpty();
  });
});
