import { isLightningError } from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { txPreparing } from '../shared-memory/mvcc/mvcc-state.js';
import type { PartitionFullDetail } from '../shared-memory/ring/command-ring.js';
import {
  type BatchEntry,
  decodeOperation,
  encodedEntries,
  encodedOperationEnd,
  operationBatch,
  operationDel,
  operationPut,
} from '../shared-memory/ring/operation-codec.js';
import {
  statusConflict,
  statusDamagedPage,
  statusInternalError,
  statusOk,
  statusPartitionFull,
  statusWaitsForPageSet,
} from '../shared-memory/ring/ring-layout.js';
import {
  decodeTransaction,
  operationTxCommit,
  operationTxPrepare,
} from '../shared-memory/ring/transaction-codec.js';
import {
  type PartitionLog,
  recordPayloadBytesMax,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
} from '../storage/wal/index.js';
import { flushBytesMax, recordBytes } from '../storage/wal/wal-format.js';
import { applyOperation, operationPartition } from './apply-operation.js';
import type { OwnedPartition } from './owner-loop.js';
import {
  addDecisionPages,
  type DecisionPages,
  decisionPages,
  PartitionFullError,
  type PassReservation,
  PoolRoomError,
  reserveForPass,
} from './pass-reservation.js';
import { PassStaging, type StagedOperation } from './pass-staging.js';
import { encodeDecisionRecord, encodePrepareRecord } from './transaction-records.js';
import type { CommitWindow, DecidedTransaction } from './versioned-partition.js';

/** The entries a staged operation writes (a prepare's writes, for a prepare). */
function stagedEntries(bytes: Uint8Array, operation: StagedOperation): readonly BatchEntry[] {
  if (bytes[operation.start] === operationTxPrepare)
    return decodeTransaction(bytes, operation.start, operation.end).writes;
  return decodeOperation(bytes, operation.start, operation.end).entries;
}

/** A decision a partition applied, and the partition whose log records it. */
interface LoggedDecision extends DecidedTransaction {
  owned: OwnedPartition;
}

/**
 * Not a ring status: the operation's partition lives over a page file whose pool's frames are full of
 * changed pages. The loop keeps the operation for its next pass and writes a page set first.
 */
export const statusWaitForRoom = -1;

/** Operations one commit window covers: snapshots that arrive meanwhile wait at most this long. */
const windowOperationsMax = 256;

/**
 * Applies the operations an owner drains from its rings to its partitions, under MVCC: plain writes
 * and single-partition transactions get the commit timestamp of the current commit window; prepares
 * install intents; decisions published in the status table are applied at the start of each pass.
 * Returns a status per operation, and appends to each partition's log what it applied.
 */
export class OperationApplier {
  readonly #partitions: Map<number, OwnedPartition>;
  readonly #mvcc: MvccState;
  readonly #committer: number;
  #window: CommitWindow | null = null;
  #windowOperations = 0;
  /** Decisions applied and logged, not yet synced: their participants are released after the sync. */
  #decided: LoggedDecision[] = [];
  /**
   * Decisions applied whose records a refused pass took back: logged again at the next pass. Until
   * then the coordinator's decision log, the source of truth, keeps them (participantDone waits).
   */
  #unlogged: LoggedDecision[] = [];
  /** True once this pass logged a prepare or a decision record (see `passNeedsSync`). */
  #transactionRecords = false;
  readonly #staging: PassStaging = new PassStaging((operation): readonly BatchEntry[] =>
    stagedEntries(this.#staging.bytesOf(operation), operation),
  );

  /** Per partition, the dirty pages when a write alone last waited for room (`#roomMayComeBack`). */
  readonly #roomWaits = new Map<number, { dirty: number; sets: number }>();
  /** The partitions whose trees live over buffer pools. */
  readonly #pooled: OwnedPartition[];
  /** Told of a partition whose pool needs a page set before it can take more (PageSets.wantRoom). */
  readonly #onRoomWanted: (partition: number) => void;
  /** True while a partition owes a page set for room that no refusal by the disk holds back (PageSets.roomOwed). */
  readonly #roomOwed: (partition: number) => boolean;

  constructor(
    partitions: Map<number, OwnedPartition>,
    mvcc: MvccState,
    committer: number,
    onRoomWanted: (partition: number) => void = () => {},
    roomOwed: (partition: number) => boolean = () => false,
  ) {
    this.#roomOwed = roomOwed;
    this.#partitions = partitions;
    this.#pooled = [...partitions.values()].filter((owned) => owned.pages !== null);
    this.#onRoomWanted = onRoomWanted;
    this.#mvcc = mvcc;
    this.#committer = committer;
  }

  /** True if a prepared transaction of one of these partitions has been decided. */
  hasDecisions(): boolean {
    for (const owned of this.#partitions.values()) if (owned.versioned.hasDecisions()) return true;
    return false;
  }

  /** True while some partition keeps versions that cleanup may remove once snapshots close. */
  hasGarbage(): boolean {
    for (const owned of this.#partitions.values()) if (owned.versioned.hasGarbage) return true;
    return false;
  }

  /** Applies published decisions and removes versions no snapshot can see; logs the decisions. */
  beginPass(touched: Set<PartitionLog>): void {
    const unlogged = this.#unlogged;
    this.#unlogged = [];
    for (const decision of unlogged) this.#logDecision(decision, touched);
    for (const owned of this.#partitions.values()) {
      for (const decision of owned.versioned.applyDecisions())
        this.#logDecision({ ...decision, owned }, touched);
    }
    // Cleanup needs the oldest snapshot (one word per thread): only when there is something to clean.
    if (!this.hasGarbage()) return;
    const oldest = this.#mvcc.oldestSnapshot();
    for (const [partition, owned] of this.#partitions) {
      // Over a pool, cleanup stops when the frames run short: a page set brings them back.
      if (!owned.versioned.collectGarbage(oldest)) this.#onRoomWanted(partition);
    }
  }

  /** After the pass's logs are written (and synced, in 'sync' mode): decisions are durable here. */
  endPass(): void {
    for (const decision of this.#decided) this.#mvcc.participantDone(decision.reference);
    this.#decided = [];
    this.#transactionRecords = false;
  }

  /** True while decisions wait to be logged again after a refused pass. */
  hasUnloggedDecisions(): boolean {
    return this.#unlogged.length > 0;
  }

  /**
   * Undoes a pass whose log flush the disk refused (full or read-only), before anything of it was
   * applied: its prepared transactions release their locks, what it staged is forgotten, and the
   * decisions it logged wait for the next pass. The caller rolls back the partitions' LSNs and
   * completes the pass's operations with the refusal.
   */
  rollBackPass(): void {
    const staging = this.#staging;
    const bytes = staging.bytes;
    for (const operation of staging.operations) {
      if (bytes[operation.start] !== operationTxPrepare) continue;
      const part = decodeTransaction(bytes, operation.start, operation.end);
      this.#partitions.get(operation.partition)!.versioned.unlockUnlogged(part.statusReference);
    }
    staging.clear();
    for (const owned of this.#partitions.values()) owned.versioned.stagedFromLsn = null;
    this.#unlogged.push(...this.#decided);
    this.#decided = [];
    this.#transactionRecords = false;
  }

  /** Closes the commit window, if one is open: snapshots may read what it installed. */
  closeWindow(): void {
    if (this.#window === null) return;
    this.#mvcc.closeWindow(this.#committer);
    this.#window = null;
    this.#windowOperations = 0;
  }

  /**
   * Stages the operation encoded in u8[start, end): validates it (locks, transaction conflicts, room
   * in its partition), appends it to its partition's log and keeps it for `applyStaged`. Nothing is
   * visible to readers yet. Returns its status; only an operation staged with statusOk was logged.
   */
  stage(u8: Uint8Array, start: number, end: number, touched: Set<PartitionLog>): number {
    const partition = operationPartition(u8, start);
    const owned = this.#partitions.get(partition);
    if (owned === undefined) {
      console.error(
        `lightning-db owner: operation for partition ${partition}, which this worker does not own`,
      );
      return statusInternalError;
    }
    try {
      const status = this.#stageTo(owned, partition, u8, start, end);
      if (status === statusOk) {
        touched.add(owned.log);
        this.#roomWaits.delete(partition);
      }
      return status;
    } catch (error) {
      // Frames come back once a page set writes the dirty pages, and a write that came after others
      // of its pass gets a pass of its own: it waits for both. (With no dirty page and nothing staged
      // before it, neither brings anything back: the write is refused.)
      if (error instanceof PoolRoomError && this.#roomMayComeBack(error, owned, partition)) {
        this.#onRoomWanted(partition);
        // No set is written while a prepared transaction's intents are in the tree. A transaction
        // part waiting for room behind them could wait for a transaction that waits for it (its
        // other part, on a partition waiting the same way): it fails fast, and its coordinator
        // retries it after the set, without counting a conflict. Plain writes wait; they hold
        // nothing others wait for.
        const kind = u8[start];
        if ((kind === operationTxPrepare || kind === operationTxCommit) && !owned.versioned.unlocked)
          return statusWaitsForPageSet;
        return statusWaitForRoom;
      }
      if (error instanceof PartitionFullError) this.lastPartitionFull = error.detail;
      if (isLightningError(error, 'ERR_PARTITION_FULL')) return statusPartitionFull;
      // A page load that failed verification (page-loader.ts) leaves the page evicted and nothing
      // half done: staging only reads, and a refused write takes its placements back. Staging reads
      // the pages applying will read beyond the descent too (tallyEntry, BTree.readCellForWrite):
      // the old overflow chain a put or delete frees, and the siblings a delete may merge with in
      // the tree as it is now. A merge whose sibling earlier writes of the pass changed is not
      // foreseen; if that sibling is damaged the merge is left undone (TreeReshape), the write
      // whole (docs/buffer-pool.md).
      if (isLightningError(error, 'ERR_CORRUPTION')) {
        console.error(`lightning-db owner: a write of partition ${partition} refused: ${error.message}`);
        return statusDamagedPage;
      }
      console.error('lightning-db owner: a write failed', error);
      return statusInternalError;
    }
  }

  /** What the last operation `stage` refused with statusPartitionFull could need, and what was left. */
  lastPartitionFull: PartitionFullDetail = {
    neededPages: 0,
    availablePages: 0,
    pagesMax: 0,
    pageSizeBytes: 0,
  };

  /**
   * True while the owner's log can take any operation more in this pass: one flush writes at most
   * `flushBytesMax`, and a record holds at most `recordPayloadBytesMax`, so the pass stops taking
   * operations (they wait in their rings for the next pass) once less than a largest record is left.
   */
  get logHasRoom(): boolean {
    for (const owned of this.#partitions.values()) {
      return owned.log.writer.pendingBytes <= flushBytesMax - recordBytes(recordPayloadBytesMax);
    }
    return true;
  }

  /** True if this pass staged a prepare or logged a decision: records the log must sync in every mode. */
  get passNeedsSync(): boolean {
    return this.#transactionRecords;
  }

  /**
   * Applies everything staged in this pass to the trees, in order, under commit windows of at most
   * `windowOperationsMax` operations. Called once the pass's log records are written (and synced, where
   * the mode or the records ask for it): from here on readers may see them. Nothing here can fail for
   * want of room (staging reserved it); a failure is a bug, and the caller stops the worker.
   */
  applyStaged(): void {
    // Over a pool, staging counted the pass's changed pages as a group (framesForWrites).
    for (const owned of this.#pooled) owned.tree.coverFrames(true);
    try {
      this.#applyStaged();
    } finally {
      for (const owned of this.#pooled) owned.tree.coverFrames(false);
    }
  }

  #applyStaged(): void {
    const staging = this.#staging;
    for (const operation of staging.operations) {
      const bytes = staging.bytesOf(operation);
      const owned = this.#partitions.get(operation.partition)!;
      const kind = bytes[operation.start]!;
      if (kind === operationTxPrepare) {
        const part = decodeTransaction(bytes, operation.start, operation.end);
        owned.versioned.installPrepared(part);
        // A participant: it applies the decision and calls participantDone. Counted here, before its
        // completion is published, so the count is whole once the coordinator (or whoever reclaims a
        // dead coordinator's slot, after its rings are reset) decides.
        this.#mvcc.joinTransaction(part.statusReference);
      } else {
        this.#applyWrites(owned, bytes, operation.start, operation.end);
      }
      if (++this.#windowOperations >= windowOperationsMax) this.closeWindow();
    }
    this.closeWindow();
    for (const owned of this.#partitions.values()) owned.versioned.stagedFromLsn = null;
    staging.clear();
  }

  #logDecision(decision: LoggedDecision, touched: Set<PartitionLog>): void {
    const log = decision.owned.log;
    log.append(recordTypeDecision, [encodeDecisionRecord(decision.transactionId, decision.committed)]);
    touched.add(log);
    this.#decided.push(decision);
    this.#transactionRecords = true;
  }

  #applyWrites(owned: OwnedPartition, u8: Uint8Array, start: number, end: number): void {
    const window = this.#openWindow();
    const state = owned.versioned;
    if (!window.keepVersions && state.unlocked && state.versionsRetained === 0) {
      // No snapshot can see what these writes replace: write in place, as without MVCC.
      applyOperation(owned.tree, u8, start, end);
      return;
    }
    state.applyWrites(() => encodedEntries(u8, start, end), window);
  }

  #stageTo(owned: OwnedPartition, partition: number, u8: Uint8Array, start: number, end: number): number {
    const kind = u8[start]!;
    const state = owned.versioned;
    const staging = this.#staging;
    if (kind === operationPut || kind === operationDel || kind === operationBatch) {
      // Walked in place, never decoded whole: a batch may hold a million entries.
      const operationEnd = encodedOperationEnd(u8, start, end);
      if (state.writesConflict(encodedEntries(u8, start, operationEnd))) return statusConflict;
      const reserved = this.#reserve(owned, partition, encodedEntries(u8, start, operationEnd));
      const { firstLsn } = owned.log.append(recordTypeOperation, [u8.subarray(start, operationEnd)]);
      staging.add(partition, u8, start, operationEnd, firstLsn, reserved);
      state.stagedFromLsn ??= firstLsn;
      return statusOk;
    }
    if (kind === operationTxCommit) {
      const part = decodeTransaction(u8, start, end);
      if (staging.touchesStaged(part) || !state.validate(part)) return statusConflict;
      if (part.writes.length === 0) return statusOk;
      const reserved = this.#reserve(owned, partition, part.writes);
      // The writes are encoded as one batch operation: logged, and later applied, as a plain batch.
      const { firstLsn } = owned.log.append(recordTypeOperation, [u8.subarray(part.writesStart, part.end)]);
      staging.add(partition, u8, part.writesStart, part.end, firstLsn, reserved);
      state.stagedFromLsn ??= firstLsn;
      return statusOk;
    }
    if (kind === operationTxPrepare) {
      // While a set is owed for room, no new intents come in: none is written while some are in the
      // tree, and under a steady flow of prepares some always would be. The prepared ones decide,
      // the set is written, and this one's coordinator retries it then.
      if (owned.pages !== null && this.#roomOwed(partition)) return statusWaitsForPageSet;
      const part = decodeTransaction(u8, start, end);
      // A coordinator that gave up on this transaction (it aborted) must not find it installed.
      if (this.#mvcc.transactionState(part.statusReference) !== txPreparing) return statusConflict;
      if (staging.touchesStaged(part) || !state.validate(part)) return statusConflict;
      const hold = decisionPages(owned.tree, state.versions, part.writes);
      const reserved = this.#reserve(owned, partition, part.writes, hold);
      const { firstLsn } = owned.log.append(recordTypePrepare, [
        encodePrepareRecord(part.transactionId, u8.subarray(part.writesStart, part.end)),
      ]);
      state.lockPrepared(part, firstLsn, hold);
      staging.add(partition, u8, start, part.end, firstLsn, reserved);
      this.#transactionRecords = true;
      return statusOk;
    }
    console.error(`lightning-db owner: unknown operation kind ${kind}`);
    return statusInternalError;
  }

  #roomMayComeBack(error: PoolRoomError, owned: OwnedPartition, partition: number): boolean {
    if (this.#staging.reserved(partition) !== null) return true;
    const pages = owned.pages;
    const dirty = pages?.pool.dirtyPageCount() ?? 0;
    if (!error.needsPageSet || pages === null || dirty === 0) return false;
    // A write alone that waited once already and, a set written since, found no fewer dirty pages:
    // another set would bring nothing back either. (With no set since, one waits for a decision.)
    const sets = pages.setsWritten;
    const before = this.#roomWaits.get(partition);
    if (before !== undefined && sets > before.sets && dirty >= before.dirty) {
      this.#roomWaits.delete(partition);
      return false;
    }
    if (before === undefined || sets > before.sets) this.#roomWaits.set(partition, { dirty, sets });
    return true;
  }

  #reserve(
    owned: OwnedPartition,
    partition: number,
    entries: Iterable<BatchEntry>,
    prepareHold: Readonly<DecisionPages> | null = null,
  ): PassReservation {
    const staging = this.#staging;
    const state = owned.versioned;
    const kindIsPrepare = prepareHold !== null;
    const mayKeepVersions =
      this.#mvcc.openSnapshots() > 0 || !state.unlocked || state.versionsRetained > 0 || kindIsPrepare;
    // Pages held for undecided prepares, this one's included: no other write may take them.
    const held = { ...state.decisionPagesHeld };
    if (prepareHold !== null) addDecisionPages(held, prepareHold, 1);
    return reserveForPass(
      owned.tree,
      state.versions,
      entries,
      staging.reserved(partition),
      mayKeepVersions,
      held,
      prepareHold ?? undefined,
    );
  }

  #openWindow(): CommitWindow {
    if (this.#window !== null) return this.#window;
    const timestamp = this.#mvcc.openWindow(this.#committer);
    this.#window = { timestamp, keepVersions: this.#mvcc.oldestSnapshot() < timestamp };
    return this.#window;
  }
}
