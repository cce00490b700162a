import { isLightningError } from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { txPreparing } from '../shared-memory/mvcc/mvcc-state.js';
import {
  decodeOperation,
  operationBatch,
  operationDel,
  operationPut,
} from '../shared-memory/ring/operation-codec.js';
import {
  statusConflict,
  statusInternalError,
  statusOk,
  statusPartitionFull,
} from '../shared-memory/ring/ring-layout.js';
import {
  decodeTransaction,
  operationTxCommit,
  operationTxPrepare,
} from '../shared-memory/ring/transaction-codec.js';
import {
  type PartitionLog,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
} from '../storage/wal/index.js';
import { applyOperation, operationPartition } from './apply-operation.js';
import type { OwnedPartition } from './owner-loop.js';
import { encodeDecisionRecord, encodePrepareRecord } from './transaction-records.js';
import type { CommitWindow } from './versioned-partition.js';

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
  #decided: number[] = [];

  constructor(partitions: Map<number, OwnedPartition>, mvcc: MvccState, committer: number) {
    this.#partitions = partitions;
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
    for (const owned of this.#partitions.values()) {
      for (const decision of owned.versioned.applyDecisions()) {
        owned.log.append(recordTypeDecision, [
          encodeDecisionRecord(decision.transactionId, decision.committed),
        ]);
        touched.add(owned.log);
        this.#decided.push(decision.reference);
      }
    }
    // Finding the oldest snapshot scans every snapshot slot: only when there is something to clean.
    if (!this.hasGarbage()) return;
    const oldest = this.#mvcc.oldestSnapshot();
    for (const owned of this.#partitions.values()) owned.versioned.collectGarbage(oldest);
  }

  /** After the pass's logs are written (and synced, in 'sync' mode): decisions are durable here. */
  endPass(): void {
    for (const reference of this.#decided) this.#mvcc.participantDone(reference);
    this.#decided = [];
  }

  /** Closes the commit window, if one is open: snapshots may read what it installed. */
  closeWindow(): void {
    if (this.#window === null) return;
    this.#mvcc.closeWindow(this.#committer);
    this.#window = null;
    this.#windowOperations = 0;
  }

  /** Applies and logs the operation encoded in u8[start, end); returns its status. */
  apply(u8: Uint8Array, start: number, end: number, touched: Set<PartitionLog>): number {
    const partition = operationPartition(u8, start);
    const owned = this.#partitions.get(partition);
    if (owned === undefined) {
      console.error(
        `lightning-db owner: operation for partition ${partition}, which this worker does not own`,
      );
      return statusInternalError;
    }
    try {
      const status = this.#applyTo(owned, u8, start, end);
      if (status === statusOk) touched.add(owned.log);
      return status;
    } catch (error) {
      if (isLightningError(error, 'ERR_PARTITION_FULL')) return statusPartitionFull;
      console.error('lightning-db owner: a write failed', error);
      return statusInternalError;
    } finally {
      if (++this.#windowOperations >= windowOperationsMax) this.closeWindow();
    }
  }

  #applyTo(owned: OwnedPartition, u8: Uint8Array, start: number, end: number): number {
    const kind = u8[start]!;
    const state = owned.versioned;
    if (kind === operationPut || kind === operationDel || kind === operationBatch) {
      const window = this.#openWindow();
      if (!window.keepVersions && state.unlocked && state.versionsRetained === 0) {
        // No snapshot can see what these writes replace: write in place, as without MVCC.
        const encodedEnd = applyOperation(owned.tree, u8, start, end);
        owned.log.append(recordTypeOperation, [u8.subarray(start, encodedEnd)]);
        return statusOk;
      }
      const decoded = decodeOperation(u8, start, end);
      if (state.writesConflict(decoded.entries)) return statusConflict;
      state.applyWrites(decoded.entries, window);
      owned.log.append(recordTypeOperation, [u8.subarray(start, decoded.end)]);
      return statusOk;
    }
    if (kind === operationTxCommit) {
      const part = decodeTransaction(u8, start, end);
      if (!state.validate(part)) return statusConflict;
      if (part.writes.length === 0) return statusOk;
      state.applyWrites(part.writes, this.#openWindow());
      owned.log.append(recordTypeOperation, [u8.subarray(part.writesStart, part.end)]);
      return statusOk;
    }
    if (kind === operationTxPrepare) {
      const part = decodeTransaction(u8, start, end);
      // A coordinator that gave up on this transaction (it aborted) must not find it installed.
      if (this.#mvcc.transactionState(part.statusReference) !== txPreparing) return statusConflict;
      if (!state.validate(part)) return statusConflict;
      const { firstLsn } = owned.log.append(recordTypePrepare, [
        encodePrepareRecord(part.transactionId, u8.subarray(part.writesStart, part.end)),
      ]);
      state.prepare(part, firstLsn);
      return statusOk;
    }
    console.error(`lightning-db owner: unknown operation kind ${kind}`);
    return statusInternalError;
  }

  #openWindow(): CommitWindow {
    if (this.#window !== null) return this.#window;
    const timestamp = this.#mvcc.openWindow(this.#committer);
    this.#window = { timestamp, keepVersions: this.#mvcc.oldestSnapshot() < timestamp };
    return this.#window;
  }
}
