/**
 * The decision of a prepared transaction (commit or abort) is applied passes after its prepare, once
 * it is durable: it must not fail then. A commit writes each intent again as a put and re-puts each
 * kept version with its new header; an abort puts each head back; all of these may allocate. Writes
 * staged between the prepare and the decision used to be free to take those pages: filling the
 * partition meanwhile (each write refused cleanly once full) made the decision throw in the owner's
 * pass, which stopped the owner, and a replay of the log no longer fit the partition. Staging now
 * holds the pages each undecided prepare's decision may need (`decisionPages`), and releases them
 * when it applies. Each case here fills the partition while a transaction is prepared, then decides.
 * test/decision-pages-db.test.ts does the same through open().
 */
import { describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import {
  addDecisionPages,
  decisionPages,
  noReservation,
  reserveForPass,
} from '../src/workers/pass-reservation.js';
import { VersionedPartition } from '../src/workers/versioned-partition.js';
import { snapshotPrepare } from './support/prepared-part.js';

const sizes = { committers: 2, threads: 1, slotsPerThread: 2, transactionEntries: 4 };

function setup(treeBytes: number, versionBytes: number) {
  const mvcc = MvccState.create(sizes);
  const partition = new VersionedPartition(
    BTree.create({ maxBytes: treeBytes }),
    BTree.create({ maxBytes: versionBytes }),
    mvcc,
  );
  /** Stages as the owner does (throws ERR_PARTITION_FULL there), then applies in its own window. */
  const write = (entries: BatchEntry[]): void => {
    const mayKeepVersions = mvcc.openSnapshots() > 0 || !partition.unlocked || partition.versionsRetained > 0;
    const held = partition.decisionPagesHeld;
    reserveForPass(partition.tree, partition.versions, entries, noReservation, mayKeepVersions, held);
    const timestamp = mvcc.openWindow(0);
    try {
      partition.applyWrites(() => entries, { timestamp, keepVersions: mvcc.oldestSnapshot() < timestamp });
    } finally {
      mvcc.closeWindow(0);
    }
  };
  const prepare = (writes: BatchEntry[]): number => {
    const reference = mvcc.allocateTransaction(0, -1, 7);
    const part = snapshotPrepare(reference, 7, mvcc.now(), writes);
    // As OperationApplier stages a prepare: reserved with mayKeepVersions and the pages its decision
    // may need held, then locked, then installed.
    const hold = decisionPages(partition.tree, partition.versions, writes);
    const held = { ...partition.decisionPagesHeld };
    addDecisionPages(held, hold, 1);
    reserveForPass(partition.tree, partition.versions, writes, noReservation, true, held);
    partition.lockPrepared(part, 1, hold);
    partition.installPrepared(part);
    mvcc.joinTransaction(reference);
    return reference;
  };
  /** Writes until staging refuses; returns how many went through. */
  const fill = (make: (i: number) => BatchEntry[]): number => {
    let i = 0;
    for (; ; i++) {
      try {
        write(make(i));
      } catch (error) {
        if ((error as { code?: string }).code !== 'ERR_PARTITION_FULL') throw error;
        return i;
      }
    }
  };
  return { mvcc, partition, write, prepare, fill };
}

const big = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe('decisions applied after the partition filled', () => {
  it('commit of a prepared delete of a large value re-puts the kept version: version store full', () => {
    const { mvcc, partition, write, prepare, fill } = setup(4096 * 1024, 4096 * 48);
    const K = Buffer.from('K');
    write([{ kind: operationPut, key: K, value: big(30_000, 1) }]);
    mvcc.registerSnapshot(0, 0);
    const reference = prepare([{ kind: operationDel, key: K, value: null }]);
    // Fill the version store with other deleted values, large then small, each refused at staging.
    let n = 0;
    for (const size of [30_000, 8_000, 2_000, 500]) {
      n += fill((i) => {
        const key = Buffer.from(`f${size}-${i}`);
        write([{ kind: operationPut, key, value: big(size, 2) }]);
        return [{ kind: operationDel, key, value: null }];
      });
    }
    expect(n).toBeGreaterThan(0);
    const commitTimestamp = mvcc.openWindow(1);
    mvcc.decide(reference, true, commitTimestamp);
    mvcc.closeWindow(1);
    expect(() => partition.applyDecisions()).not.toThrow();
    expect(partition.reader.get(K, readLatest)).toBeUndefined();
    expect(partition.decisionPagesHeld).toEqual({ tree: 0, versions: 0 });
    // The trees take writes again.
    write([{ kind: operationPut, key: Buffer.from('after'), value: Buffer.from('x') }]);
    expect(partition.reader.get(Buffer.from('after'), readLatest)?.toString()).toBe('x');
  });

  it('commit of a prepared put needs pages in a tree that filled since the prepare', () => {
    const { mvcc, partition, prepare, fill } = setup(4096 * 48, 4096 * 1024);
    const K = Buffer.from('K');
    const reference = prepare([{ kind: operationPut, key: K, value: big(20_000, 1) }]);
    let n = 0;
    // Keys other than K (not locked); no snapshot is open.
    for (const size of [20_000, 4_000, 500, 50])
      n += fill((i) => [{ kind: operationPut, key: Buffer.from(`f${size}-${i}`), value: big(size, 2) }]);
    expect(n).toBeGreaterThan(0);
    const commitTimestamp = mvcc.openWindow(1);
    mvcc.decide(reference, true, commitTimestamp);
    mvcc.closeWindow(1);
    expect(() => partition.applyDecisions()).not.toThrow();
    expect(partition.reader.get(K, readLatest)?.length).toBe(20_000);
  });

  it('abort of a prepared delete restores a large head in a tree that filled since the prepare', () => {
    const { mvcc, partition, write, prepare, fill } = setup(4096 * 48, 4096 * 1024);
    const K = Buffer.from('K');
    write([{ kind: operationPut, key: K, value: big(30_000, 1) }]);
    const reference = prepare([{ kind: operationDel, key: K, value: null }]);
    let n = 0;
    for (const size of [20_000, 4_000, 500, 50])
      n += fill((i) => [{ kind: operationPut, key: Buffer.from(`f${size}-${i}`), value: big(size, 2) }]);
    expect(n).toBeGreaterThan(0);
    mvcc.decide(reference, false, 0);
    expect(() => partition.applyDecisions()).not.toThrow();
    expect(partition.reader.get(K, readLatest)?.length).toBe(30_000);
  });

  it('commit re-puts the kept large version with its new header, with version-store pages held for it', () => {
    const { mvcc, partition, write, prepare, fill } = setup(4096 * 1024, 4096 * 48);
    const K = Buffer.from('K');
    write([{ kind: operationPut, key: K, value: big(30_000, 1) }]);
    const snapshot = mvcc.registerSnapshot(0, 0);
    const reference = prepare([{ kind: operationDel, key: K, value: null }]);
    // The kept 30,000-byte version's overflow chain, written anew with its new header.
    expect(partition.decisionPagesHeld.versions).toBe(8);
    // Versions of other keys, small ones last, until staging refuses.
    let n = 0;
    for (const size of [4_000, 300])
      n += fill((i) => {
        const key = Buffer.from(`f${size}-${i}`);
        write([{ kind: operationPut, key, value: big(size, 2) }]);
        return [{ kind: operationDel, key, value: null }];
      });
    expect(n).toBeGreaterThan(0);
    expect(partition.versions.pagesAvailable()).toBeGreaterThanOrEqual(partition.decisionPagesHeld.versions);
    const commitTimestamp = mvcc.openWindow(1);
    mvcc.decide(reference, true, commitTimestamp);
    mvcc.closeWindow(1);
    expect(() => partition.applyDecisions()).not.toThrow();
    expect(partition.reader.get(K, snapshot)?.equals(big(30_000, 1))).toBe(true);
    expect(partition.reader.get(K, readLatest)).toBeUndefined();
  });
});
