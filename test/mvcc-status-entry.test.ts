/**
 * A transaction status entry is freed once every participant applied the decision, and may be claimed
 * at once by another transaction: a reader that found the entry committed and then reads its commit
 * timestamp must notice the reuse, not take the new transaction's timestamp (0 while it prepares)
 * for the old one's. The interleaving is driven step by step: first on the status table alone, then
 * through a versioned reader whose status table frees and reuses the entry right after the reader
 * has read the state.
 */
import { describe, expect, it } from 'vitest';
import { BTree, TreeReader } from '../src/shared-memory/index.js';
import {
  MvccState,
  transactionEnded,
  txCommitted,
  txFree,
  txPreparing,
} from '../src/shared-memory/mvcc/mvcc-state.js';
import { encodeVersionValue, versionKey } from '../src/shared-memory/mvcc/version-key.js';
import { VersionedReader } from '../src/shared-memory/mvcc/versioned-reader.js';
import { cellFlagIntent, cellFlagTimestamp } from '../src/shared-memory/tree/node-format.js';

/** One committer (index 0) and a single status entry, so that every claim reuses the same entry. */
function singleEntryState(): MvccState {
  return MvccState.create({ committers: 1, threads: 1, slotsPerThread: 1, transactionEntries: 1 });
}

/** Commits `reference` at a fresh timestamp, with one participant to apply it; returns the timestamp. */
function commit(mvcc: MvccState, reference: number): number {
  mvcc.setParticipants(reference, 1);
  const commitTimestamp = mvcc.openWindow(0);
  mvcc.decide(reference, true, commitTimestamp);
  mvcc.closeWindow(0);
  return commitTimestamp;
}

describe('transaction status entries', () => {
  it('tell a reader that read the state before the entry was freed and claimed again', () => {
    const mvcc = singleEntryState();
    const reference = mvcc.allocateTransaction(0);
    const committedAt = commit(mvcc, reference);
    expect(mvcc.transactionState(reference)).toBe(txCommitted);
    expect(mvcc.commitTimestamp(reference)).toBe(committedAt);

    // The reader has read txCommitted; now the participant applies the decision and frees the entry,
    // and another transaction claims it before the reader reads the commit timestamp.
    mvcc.participantDone(reference);
    const next = mvcc.allocateTransaction(0);
    expect(next).not.toBe(reference);
    expect(next % mvcc.transactionEntries).toBe(reference % mvcc.transactionEntries);
    expect(mvcc.transactionState(next)).toBe(txPreparing);
    expect(mvcc.commitTimestamp(reference)).toBe(transactionEnded);
    expect(mvcc.transactionState(reference)).toBe(txFree);

    // Nor does the new transaction's own decision pass for the old one's.
    const nextCommittedAt = commit(mvcc, next);
    expect(mvcc.commitTimestamp(next)).toBe(nextCommittedAt);
    expect(mvcc.commitTimestamp(reference)).toBe(transactionEnded);
    expect(mvcc.transactionState(reference)).toBe(txFree);
  });

  it('never make a write committed after a snapshot visible to it when reused mid-read', () => {
    const mvcc = singleEntryState();
    const main = BTree.create();
    const versions = BTree.create();
    const key = Buffer.from('key');
    const before = Buffer.from('before the snapshot');
    const after = Buffer.from('committed after the snapshot');

    // The key's head, then a snapshot that sees it.
    const writtenAt = mvcc.openWindow(0);
    main.putCell(key, before, cellFlagTimestamp, writtenAt);
    mvcc.closeWindow(0);
    const readTimestamp = mvcc.now();

    // A prepared transaction's intent replaces the head, which waits in the version store (what an
    // owner's prepare writes); the transaction commits after the snapshot.
    const reference = mvcc.allocateTransaction(0);
    versions.putCell(versionKey(key, writtenAt), encodeVersionValue(before, 0), 0, 0);
    main.putCell(key, after, cellFlagTimestamp | cellFlagIntent, reference);
    const committedAt = commit(mvcc, reference);
    expect(committedAt).toBeGreaterThan(readTimestamp);

    // The status table the reader sees applies the decision, frees the entry and lets another
    // transaction claim it, right after the reader read the state and before it reads the timestamp.
    let reusedAfterStateRead = 0;
    const interleaved = new Proxy(mvcc, {
      get(target, property) {
        if (property === 'transactionState') {
          return (asked: number): number => {
            const state = target.transactionState(asked);
            if (asked === reference && reusedAfterStateRead === 0) {
              reusedAfterStateRead++;
              // What the owner's commit writes: the head at its commit timestamp, the old head a
              // version superseded then. Then the last participant frees the entry.
              main.putCell(key, after, cellFlagTimestamp, committedAt);
              versions.putCell(versionKey(key, writtenAt), encodeVersionValue(before, committedAt), 0, 0);
              target.participantDone(reference);
              expect(target.allocateTransaction(0)).not.toBe(-1);
            }
            return state;
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const reader = new VersionedReader(
      TreeReader.attach(main.share()),
      TreeReader.attach(versions.share()),
      interleaved,
    );

    expect(reader.get(key, readTimestamp)).toEqual(before);
    expect(reusedAfterStateRead).toBe(1);
    // Both ways of reading agree: the scan resolves its heads through the same judgement.
    expect([...reader.range(undefined, readTimestamp)]).toEqual([[key, before]]);
    expect(reader.get(key, committedAt)).toEqual(after);
  });
});
