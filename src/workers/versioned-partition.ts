import { assert } from '../shared-memory/assert.js';
import type { BTree } from '../shared-memory/index.js';
import { type MvccState, txAborted, txCommitted } from '../shared-memory/mvcc/mvcc-state.js';
import {
  decodeVersionValue,
  encodeVersionValue,
  isVersionOf,
  versionKey,
  versionSupersededAt,
} from '../shared-memory/mvcc/version-key.js';
import { readLatest, VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationDel, operationPut } from '../shared-memory/ring/operation-codec.js';
import { type DecodedTransaction, isolationSerializable } from '../shared-memory/ring/transaction-codec.js';
import { cellFlagIntent, cellFlagTimestamp, cellFlagTombstone } from '../shared-memory/tree/node-format.js';
import type { WriteTally } from '../shared-memory/tree/write-pages.js';
import { LockTable } from './lock-table.js';
import {
  addDecisionPages,
  type DecisionPages,
  decisionFrames,
  noDecisionPages,
  tallyEntry,
} from './pass-reservation.js';
import { validateTransactionPart } from './transaction-validation.js';
import { VersionCleanup } from './version-cleanup.js';

/** The commit timestamp writes of the current window carry, and whether old versions must be kept. */
export interface CommitWindow {
  timestamp: number;
  keepVersions: boolean;
}

interface PreparedWrite {
  key: Uint8Array;
  value: Uint8Array | null;
  /** The head the intent replaced: kept in the version store until the decision. */
  hadHead: boolean;
  headFlags: number;
  headTimestamp: number;
}

interface PreparedTransaction {
  reference: number;
  transactionId: number;
  /** LSN of its prepare record: a checkpoint must replay from here while it is undecided. */
  lsn: number;
  writes: PreparedWrite[];
  lockedKeys: Uint8Array[];
  /** Pages held for its decision (pass-reservation.ts `decisionPages`), or null if none were. */
  hold: Readonly<DecisionPages> | null;
}

export interface DecidedTransaction {
  reference: number;
  transactionId: number;
  committed: boolean;
}

/**
 * One partition as its owner writes it under MVCC: the main tree holds each key's newest version
 * (the head); the version store holds what open snapshots may still need; prepared transactions hold
 * intents and locks until their decision.
 *
 * When no snapshot older than the window's timestamp is open, nobody can see the version a write
 * replaces, and writes go to the main tree in place, without timestamps: the cost of MVCC is paid
 * only while snapshots or transactions are open.
 */
export class VersionedPartition {
  readonly tree: BTree;
  readonly versions: BTree;
  readonly reader: VersionedReader;
  readonly #mvcc: MvccState;
  readonly #locks = new LockTable();
  readonly #prepared = new Map<number, PreparedTransaction>();
  /** Prepared transactions whose records are logged and locks taken, intents not installed yet. */
  readonly #locked = new Map<
    number,
    { transactionId: number; lsn: number; lockedKeys: Uint8Array[]; hold: Readonly<DecisionPages> | null }
  >();
  readonly #held: DecisionPages = { ...noDecisionPages };
  readonly #cleanup: VersionCleanup;

  constructor(tree: BTree, versions: BTree, mvcc: MvccState) {
    this.tree = tree;
    this.versions = versions;
    this.#mvcc = mvcc;
    this.reader = new VersionedReader(tree, versions, mvcc);
    this.#cleanup = new VersionCleanup(tree, versions);
  }

  /** True while no lock is held: plain writes then need no conflict checks. */
  get unlocked(): boolean {
    return this.#locks.empty;
  }

  /** True if a prepared transaction holds a key of `entries`: the write must fail fast. */
  writesConflict(entries: Iterable<BatchEntry>, reference = -1): boolean {
    if (this.#locks.empty) return false;
    for (const entry of entries) if (this.#locks.blocksWrite(entry.key, reference)) return true;
    return false;
  }

  /**
   * Applies puts and deletes atomically at the window's timestamp. Throws ERR_PARTITION_FULL first.
   * `entries` is called twice (to reserve, then to write), so a large batch can be walked in place.
   */
  applyWrites(entries: () => Iterable<BatchEntry>, window: CommitWindow): void {
    this.#reserve(entries(), window.keepVersions);
    this.tree.group(() =>
      this.versions.group(() => {
        for (const entry of entries()) {
          this.#write(entry.key, entry.kind === operationDel ? null : entry.value, window);
        }
      }),
    );
  }

  /** Validates a transaction part against this partition's heads and locks (transaction-validation.ts). */
  validate(part: DecodedTransaction): boolean {
    return validateTransactionPart(part, this.tree, this.#locks);
  }

  /**
   * Takes the locks of a validated prepared transaction whose prepare record was just logged (at
   * `lsn`): from now on, writes and transactions that touch its keys conflict, even before its intents
   * are installed (`installPrepared`, once the record is durable). The locks live in this owner only,
   * so taking them early shows readers nothing.
   */
  lockPrepared(part: DecodedTransaction, lsn: number, hold: Readonly<DecisionPages> | null = null): void {
    const reference = part.statusReference;
    const lockedKeys: Uint8Array[] = [];
    for (const entry of part.writes) {
      const key = entry.key.slice();
      this.#locks.lockKey(key, reference, true);
      lockedKeys.push(key);
    }
    if (part.isolation === isolationSerializable) {
      for (const key of part.reads) {
        const copy = key.slice();
        this.#locks.lockKey(copy, reference, false);
        lockedKeys.push(copy);
      }
      for (const range of part.ranges) {
        this.#locks.lockRange(
          { ...range, lower: range.lower?.slice() ?? null, upper: range.upper?.slice() ?? null },
          reference,
        );
      }
    }
    this.#locked.set(reference, { transactionId: part.transactionId, lsn, lockedKeys, hold });
    if (hold !== null) this.#hold(hold, 1);
  }

  /**
   * Pages held, in the tree and the version store, for the decisions of the prepared transactions
   * locked here: staging counts them as taken (reserveForPass's `held`), and each decision's
   * pages are released once it applies.
   */
  get decisionPagesHeld(): Readonly<DecisionPages> {
    return this.#held;
  }

  /**
   * Holds (sign 1) or gives back (-1) a decision's pages, and over a buffer pool the frames its tree
   * pages need: without them, writes staged while the transaction waits could fill the frames with
   * changed pages its decision then finds no room among, and the owner would stop.
   */
  #hold(hold: Readonly<DecisionPages>, sign: 1 | -1): void {
    addDecisionPages(this.#held, hold, sign);
    this.tree.holdFrames(sign * decisionFrames(hold));
  }

  /**
   * Releases the locks of a prepared transaction whose prepare record never reached the log (the disk
   * refused the pass): it was locked and not installed, so nothing else of it exists.
   */
  unlockUnlogged(reference: number): void {
    const locked = this.#locked.get(reference);
    if (locked === undefined) return;
    this.#locked.delete(reference);
    this.#locks.unlock(reference, locked.lockedKeys);
    if (locked.hold !== null) this.#hold(locked.hold, -1);
  }

  /** Installs a locked prepared transaction's intents once its prepare record is durable; old heads are kept. */
  installPrepared(part: DecodedTransaction): void {
    const reference = part.statusReference;
    const locked = this.#locked.get(reference);
    assert(locked !== undefined, 'a prepared transaction is locked before it is installed');
    this.#locked.delete(reference);
    const writes: PreparedWrite[] = [];
    this.#reserve(part.writes, true);
    this.tree.group(() =>
      this.versions.group(() => {
        for (const entry of part.writes) {
          const value = entry.kind === operationDel ? null : entry.value!.slice();
          const key = entry.key.slice();
          const head = this.tree.readCell(key);
          const prepared: PreparedWrite = {
            key,
            value,
            hadHead: head !== undefined,
            headFlags: this.tree.cellFlags,
            headTimestamp: this.tree.cellTimestamp,
          };
          if (head !== undefined && (prepared.headFlags & cellFlagIntent) === 0) {
            const old = (prepared.headFlags & cellFlagTombstone) !== 0 ? null : head;
            this.versions.putCell(versionKey(key, prepared.headTimestamp), encodeVersionValue(old, 0), 0, 0);
          }
          this.tree.putCell(key, value, cellFlagTimestamp | cellFlagIntent, reference);
          writes.push(prepared);
        }
      }),
    );
    this.#prepared.set(reference, {
      reference,
      transactionId: locked.transactionId,
      lsn: locked.lsn,
      writes,
      lockedKeys: locked.lockedKeys,
      hold: locked.hold,
    });
  }

  /** True if some prepared transaction of this partition has been decided. */
  hasDecisions(): boolean {
    for (const reference of this.#prepared.keys()) {
      const state = this.#mvcc.transactionState(reference);
      if (state === txCommitted || state === txAborted) return true;
    }
    return false;
  }

  /** Applies every decision published since the last call; returns them, for the log. */
  applyDecisions(): DecidedTransaction[] {
    const decided: DecidedTransaction[] = [];
    for (const prepared of this.#prepared.values()) {
      const state = this.#mvcc.transactionState(prepared.reference);
      if (state !== txCommitted && state !== txAborted) continue;
      const committed = state === txCommitted;
      // The decision's pages, and over a pool its frames, were held for it: they are its own now.
      if (prepared.hold !== null) this.#hold(prepared.hold, -1);
      if (committed) this.#commit(prepared, this.#mvcc.commitTimestamp(prepared.reference));
      else this.#abort(prepared);
      this.#locks.unlock(prepared.reference, prepared.lockedKeys);
      this.#prepared.delete(prepared.reference);
      decided.push({ reference: prepared.reference, transactionId: prepared.transactionId, committed });
    }
    return decided;
  }

  /**
   * The first LSN of this partition that the owner's current pass logged and has not applied yet, or
   * null: a checkpoint walking the tree meanwhile does not see those writes, so it must replay them.
   */
  stagedFromLsn: number | null = null;

  /**
   * The lowest LSN a checkpoint must replay from, or null: undecided prepares (their intents are not
   * checkpointed) and writes logged but not yet applied.
   */
  oldestLsnToReplay(): number | null {
    let oldest: number | null = this.stagedFromLsn;
    for (const prepared of this.#prepared.values()) {
      if (oldest === null || prepared.lsn < oldest) oldest = prepared.lsn;
    }
    for (const locked of this.#locked.values()) {
      if (oldest === null || locked.lsn < oldest) oldest = locked.lsn;
    }
    return oldest;
  }

  /** Removes what no snapshot at or after `oldestSnapshot` can read (VersionCleanup.collectGarbage). */
  collectGarbage(oldestSnapshot: number): boolean {
    return this.#cleanup.collectGarbage(oldestSnapshot);
  }

  /** Removes tombstones every snapshot reads as absent keys (VersionCleanup.sweepTombstones). */
  sweepTombstones(from: Uint8Array, cellsMax: number): Uint8Array | null {
    return this.#cleanup.sweepTombstones(from, cellsMax);
  }

  get hasGarbage(): boolean {
    return !this.#cleanup.empty;
  }

  /** Versions kept for snapshots or prepared transactions. */
  get versionsRetained(): number {
    return this.versions.count;
  }

  #write(key: Uint8Array, value: Uint8Array | null, window: CommitWindow): void {
    const tree = this.tree;
    if (!window.keepVersions) {
      if (value === null) tree.deleteCell(key);
      else tree.putCell(key, value, 0, 0);
      this.#dropVersions(key);
      return;
    }
    const head = tree.readCell(key);
    const flags = tree.cellFlags;
    const timestamp = tree.cellTimestamp;
    if (head === undefined) {
      if (value !== null) tree.putCell(key, value, cellFlagTimestamp, window.timestamp);
      return;
    }
    const headIsTombstone = (flags & cellFlagTombstone) !== 0;
    if (value === null && headIsTombstone) return;
    const sameVersion = (flags & cellFlagTimestamp) !== 0 && timestamp === window.timestamp;
    if (!sameVersion) {
      const old = headIsTombstone ? null : head;
      this.versions.putCell(versionKey(key, timestamp), encodeVersionValue(old, window.timestamp), 0, 0);
      this.#cleanup.push({
        key: key.slice(),
        versionTimestamp: timestamp,
        supersededAt: window.timestamp,
        tombstone: value === null,
        versionBytes: old?.length ?? 0,
      });
    } else if (value === null) {
      // A delete of what this window put: the put's cleanup item, if it had one, names no tombstone.
      this.#cleanup.nameTombstone(key.slice(), window.timestamp);
    }
    tree.putCell(key, value, cellFlagTimestamp, window.timestamp);
  }

  #commit(prepared: PreparedTransaction, commitTimestamp: number): void {
    const keep = this.#mvcc.oldestSnapshot() < commitTimestamp;
    if (this.#reserveHold(prepared.hold, keep)) {
      const treeWrites = this.tree.newWriteTally();
      const versionWrites = this.versions.newWriteTally();
      for (const write of prepared.writes) {
        const kind = write.value === null ? operationDel : operationPut;
        const entry: BatchEntry = { kind, key: write.key, value: write.value };
        tallyEntry(this.tree, treeWrites, versionWrites, entry, keep, false);
      }
      this.#reserveTallies(treeWrites, versionWrites, keep);
    }
    this.tree.group(() =>
      this.versions.group(() => {
        for (const write of prepared.writes) {
          const stored = versionKey(write.key, write.headTimestamp);
          if (!keep) {
            if (write.value === null) this.tree.deleteCell(write.key);
            else this.tree.putCell(write.key, write.value, 0, 0);
            this.#dropVersions(write.key);
            continue;
          }
          this.tree.putCell(write.key, write.value, cellFlagTimestamp, commitTimestamp);
          if (!write.hadHead) {
            // A delete of a key with no head replaced no version, so no cleanup item names its tombstone.
            if (write.value === null) this.#cleanup.nameTombstone(write.key, commitTimestamp);
            continue;
          }
          // The kept head becomes an ordinary replaced version, cleaned up with the others.
          const version = this.versions.readCell(stored);
          if (version === undefined || versionSupersededAt(version) !== 0) continue;
          const kept = decodeVersionValue(version);
          this.versions.putCell(stored, encodeVersionValue(kept, commitTimestamp), 0, 0);
          this.#cleanup.push({
            key: write.key,
            versionTimestamp: write.headTimestamp,
            supersededAt: commitTimestamp,
            tombstone: write.value === null,
            versionBytes: kept?.length ?? 0,
          });
        }
      }),
    );
  }

  #abort(prepared: PreparedTransaction): void {
    const unheld = this.#reserveHold(prepared.hold, false);
    this.tree.group(() =>
      this.versions.group(() => {
        for (const write of prepared.writes) {
          if (!write.hadHead) {
            this.tree.deleteCell(write.key);
            continue;
          }
          const stored = versionKey(write.key, write.headTimestamp);
          const version = this.versions.readCell(stored);
          const old = version === undefined ? null : decodeVersionValue(version);
          // Restoring the head in place: same key, and a cell no larger than the intent's or the old one.
          if (unheld) this.tree.reserve(this.tree.pagesForPut(write.key, old ?? new Uint8Array(0)));
          this.tree.putCell(write.key, old, write.headFlags & cellFlagTimestamp, write.headTimestamp);
          if (version !== undefined) this.#removeIntentVersion(stored);
          // Cleanup passes over an intent, so the restored tombstone's item may have been taken meanwhile.
          if ((write.headFlags & cellFlagTombstone) !== 0)
            this.#cleanup.nameTombstone(write.key, write.headTimestamp);
        }
      }),
    );
  }

  /**
   * Removes every stored version of `key`: called when a write replaced its head while no snapshot
   * could see an older version. A head without a timestamp must never sit above stored versions, or
   * "the newest stored version at or before T" would pick one older than that head.
   */
  #dropVersions(key: Uint8Array): void {
    const versions = this.versions;
    if (versions.count === 0) return;
    const from = versionKey(key, readLatest);
    for (;;) {
      const stored = versions.firstKeyFrom(from);
      if (stored === undefined || !isVersionOf(stored, key)) return;
      versions.deleteCell(stored);
    }
  }

  #removeIntentVersion(stored: Uint8Array): void {
    const version = this.versions.readCell(stored);
    if (version !== undefined && versionSupersededAt(version) === 0) this.versions.deleteCell(stored);
  }

  /**
   * Makes room for a decision's writes with the pages its prepare held (staging counted them from
   * the heads the intents replaced, and no other write took them); returns true, having reserved
   * nothing, if it held none (a prepare locked without a hold), for the caller to count them now.
   * Counted now instead, from the intents, the bound would count versions never written (a put to a
   * key without a head keeps none) and splits of a tree grown meanwhile, and could refuse a decision
   * that fits: the owner would stop.
   */
  #reserveHold(hold: Readonly<DecisionPages> | null, keepVersions: boolean): boolean {
    if (hold === null) return true;
    this.tree.reserve(hold.tree);
    if (keepVersions) this.versions.reserve(hold.versions);
    return false;
  }

  #reserve(entries: Iterable<BatchEntry>, keepVersions: boolean): void {
    const treeWrites = this.tree.newWriteTally();
    const versionWrites = this.versions.newWriteTally();
    for (const entry of entries) tallyEntry(this.tree, treeWrites, versionWrites, entry, keepVersions, false);
    this.#reserveTallies(treeWrites, versionWrites, keepVersions);
  }

  /**
   * Reserves what a group of writes may allocate in both trees (`BTree.pagesForWrites`), so that a
   * full partition fails before anything changes. Staging checked the same bound, counted from the
   * trees before the pass, so on the owner's write path this never fails.
   */
  #reserveTallies(treeWrites: WriteTally, versionWrites: WriteTally, keepVersions: boolean): void {
    this.tree.reserve(this.tree.pagesForWrites(treeWrites).pages);
    if (keepVersions) this.versions.reserve(this.versions.pagesForWrites(versionWrites).pages);
  }
}

/** Reads the newest committed state of a partition, for checkpoints. */
export function latestEntries(partition: VersionedPartition): IterableIterator<[Buffer, Buffer]> {
  return partition.reader.range(undefined, readLatest);
}
