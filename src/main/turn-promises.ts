import { assert } from '../shared-memory/assert.js';
import { LightningError } from '../shared-memory/index.js';
import {
  statusConflict,
  statusDamagedPage,
  statusDeposed,
  statusDiskFull,
  statusDiskQuota,
  statusOk,
  statusPartitionFull,
  statusReadOnlyFileSystem,
  statusReplicationFailed,
  statusTooLargeToReplicate,
  statusWaitsForPageSet,
} from '../shared-memory/ring/ring-layout.js';
import { PageSetWaitError } from './page-set-wait-error.js';

/**
 * The promises of one write channel's operations: one promise per group of consecutive operations
 * instead of one per operation. Puts and deletes issued in one turn (the caller's synchronous run,
 * until the channel's end-of-turn microtask) join one group and share its promise, as lmdb-js shares
 * one promise per write transaction: they reach the owner together and share its log write, so the
 * caller pays for one promise, two settle functions and their garbage per turn, not per put. Batches
 * and transaction parts get a group of their own: their caller needs their own outcome.
 *
 * Operations complete in the order they were issued, so a group is settled when its last operation
 * completes: resolved if every one of them succeeded, otherwise rejected with the error of its first
 * failed operation. Each operation keeps its own status in the ring: a write that failed (its
 * partition was full, say) changed nothing, and its siblings that succeeded stay applied. The error
 * says how many of the group's writes failed; a caller that needs each write's own outcome issues it
 * in a turn of its own (awaiting between writes) or uses `batch()`, which is all or nothing.
 *
 * Groups live in parallel arrays from `#head`, so the write path allocates nothing per operation.
 */
export class TurnPromises {
  /** Per group: operations not yet completed, operations in all, failed operations, first failure. */
  #remaining: number[] = [];
  #operations: number[] = [];
  #failed: number[] = [];
  #firstFailure: number[] = [];
  /** Per group: what the owner said about its first failure, if anything. */
  #firstDetail: string[] = [];
  #resolvers: (() => void)[] = [];
  #rejecters: ((error: unknown) => void)[] = [];
  #head = 0;
  /** The owners' log directory, named by the errors of writes the disk refused. */
  readonly #logDirectory: string;
  /** The promise of the last group while later operations of this turn may still join it. */
  #open: Promise<void> | null = null;
  #capturedResolve: () => void = noop;
  #capturedReject: (error: unknown) => void = noop;
  readonly #capture = (resolve: () => void, reject: (error: unknown) => void): void => {
    this.#capturedResolve = resolve;
    this.#capturedReject = reject;
  };

  constructor(logDirectory: string) {
    this.#logDirectory = logDirectory;
  }

  /** Groups not yet settled. */
  get groups(): number {
    return this.#resolvers.length - this.#head;
  }

  /** Adds one operation to this turn's group (a new group at the turn's first operation). */
  join(): Promise<void> {
    const open = this.#open;
    if (open !== null) {
      const last = this.#resolvers.length - 1;
      this.#remaining[last]!++;
      this.#operations[last]!++;
      return open;
    }
    const promise = this.#add();
    this.#open = promise;
    return promise;
  }

  /** Adds one operation in a group of its own, which ends this turn's group: order stays issue order. */
  alone(): Promise<void> {
    this.#open = null;
    return this.#add();
  }

  /** The turn ended: later operations start a new group. */
  closeTurn(): void {
    this.#open = null;
  }

  /**
   * Records that the oldest uncompleted operation completed with `status`, and settles its group if
   * that was the group's last operation. The group must be closed: a group still open could grow.
   */
  completed(status: number, detail = ''): void {
    const head = this.#head;
    assert(head < this.#resolvers.length, 'a completed operation belongs to a group');
    if (status !== statusOk && this.#failed[head]!++ === 0) {
      this.#firstFailure[head] = status;
      this.#firstDetail[head] = detail;
    }
    if (--this.#remaining[head]! > 0) return;
    assert(this.#open === null || head < this.#resolvers.length - 1, 'a settled group is closed');
    this.#head = head + 1;
    if (this.#failed[head] === 0) this.#resolvers[head]!();
    else
      this.#rejecters[head]!(
        statusError(
          this.#firstFailure[head]!,
          this.#failed[head]!,
          this.#operations[head]!,
          this.#logDirectory,
          this.#firstDetail[head]!,
        ),
      );
    this.#compact();
  }

  /** Rejects every unsettled group with `error` (the owner died or the database closed). */
  failAll(error: LightningError): void {
    const rejecters = this.#rejecters;
    const from = this.#head;
    this.#open = null;
    this.#remaining = [];
    this.#operations = [];
    this.#failed = [];
    this.#firstFailure = [];
    this.#firstDetail = [];
    this.#resolvers = [];
    this.#rejecters = [];
    this.#head = 0;
    for (let i = from; i < rejecters.length; i++) rejecters[i]!(error);
  }

  #add(): Promise<void> {
    const promise = new Promise<void>(this.#capture);
    this.#remaining.push(1);
    this.#operations.push(1);
    this.#failed.push(0);
    this.#firstFailure.push(statusOk);
    this.#firstDetail.push('');
    this.#resolvers.push(this.#capturedResolve);
    this.#rejecters.push(this.#capturedReject);
    return promise;
  }

  /** Drops settled groups from the front of the arrays once they dominate. */
  #compact(): void {
    const head = this.#head;
    const length = this.#resolvers.length;
    if (head === length) {
      this.#remaining.length = 0;
      this.#operations.length = 0;
      this.#failed.length = 0;
      this.#firstFailure.length = 0;
      this.#firstDetail.length = 0;
      this.#resolvers.length = 0;
      this.#rejecters.length = 0;
      this.#head = 0;
    } else if (head > 1024 && head * 2 > length) {
      this.#remaining = this.#remaining.slice(head);
      this.#operations = this.#operations.slice(head);
      this.#failed = this.#failed.slice(head);
      this.#firstFailure = this.#firstFailure.slice(head);
      this.#firstDetail = this.#firstDetail.slice(head);
      this.#resolvers = this.#resolvers.slice(head);
      this.#rejecters = this.#rejecters.slice(head);
      this.#head = 0;
    }
  }
}

function noop(): void {}

/** The error of a group whose first failed operation had `status`. */
function statusError(
  status: number,
  failed: number,
  operations: number,
  logDirectory: string,
  detail: string,
): LightningError {
  const shared =
    operations === 1
      ? ''
      : ` (${failed} of the ${operations} writes issued in one turn to this partition owner failed` +
        ' and share this error; the others were applied)';
  if (status === statusConflict) {
    return new LightningError(
      'ERR_TX_CONFLICT',
      `a transaction being committed holds a key of this write, or the transaction conflicted; retry${shared}`,
    );
  }
  if (status === statusWaitsForPageSet) return new PageSetWaitError(shared);
  if (status === statusDamagedPage) {
    return new LightningError(
      'ERR_CORRUPTION',
      "a page a write had to read is damaged in its partition's page file (checksum or page id " +
        "mismatch); nothing of that write was applied. The owner's log names the page; " +
        `\`lightning-cli verify\` lists every damaged page, and only a backup restores one${shared}`,
    );
  }
  if (status === statusPartitionFull) {
    return new LightningError(
      'ERR_PARTITION_FULL',
      `the key's partition cannot hold this write${detail || '; delete data or reopen with a larger partitionBytesMax'}${shared}`,
    );
  }
  if (status === statusDeposed) {
    return new LightningError(
      'ERR_DEPOSED',
      `this database no longer leads its replication log; nothing of the write was applied${shared}`,
    );
  }
  if (status === statusReplicationFailed) {
    return new LightningError(
      'ERR_REPLICATION',
      'the replication log did not acknowledge the write in time; it was not applied here, and the ' +
        `log may hold it (a follower would then apply it)${shared}`,
    );
  }
  if (status === statusTooLargeToReplicate) {
    return new LightningError(
      'ERR_VALUE_TOO_LARGE',
      "the write's log record is larger than one message of the replication log can carry (the NATS " +
        "servers' max_payload, 1 MiB by default, less 4 KiB); nothing of it was applied: write it in " +
        `smaller parts, or raise the servers' max_payload${shared}`,
    );
  }
  const refusal = refusedErrno(status);
  if (refusal !== null) return refusedWriteError(refusal, logDirectory, shared);
  return new LightningError(
    'ERR_INTERNAL',
    `the partition owner failed to apply the write; see its log${shared}`,
  );
}

function refusedErrno(status: number): 'ENOSPC' | 'EDQUOT' | 'EROFS' | null {
  if (status === statusDiskFull) return 'ENOSPC';
  if (status === statusDiskQuota) return 'EDQUOT';
  if (status === statusReadOnlyFileSystem) return 'EROFS';
  return null;
}

/**
 * ERR_DISK_FULL or ERR_READ_ONLY for a write the owner's log refused, naming the log directory, with
 * the errno as the cause (the owner's own error stays in its thread; its code is what the status says).
 */
function refusedWriteError(
  errno: 'ENOSPC' | 'EDQUOT' | 'EROFS',
  logDirectory: string,
  shared: string,
): LightningError {
  const cause = Object.assign(new Error(`${errno}: writing the log in ${logDirectory}`), {
    code: errno,
    syscall: 'write',
    path: logDirectory,
  });
  if (errno === 'EROFS') {
    return new LightningError(
      'ERR_READ_ONLY',
      `writing the log in ${logDirectory}: the file system is read-only (EROFS); nothing of the write was applied${shared}`,
      { cause },
    );
  }
  const what = errno === 'EDQUOT' ? 'the disk quota is exhausted (EDQUOT)' : 'the disk is full (ENOSPC)';
  return new LightningError(
    'ERR_DISK_FULL',
    `writing the log in ${logDirectory}: ${what}; nothing of the write was applied, reads still work, and writes succeed again once space is freed${shared}`,
    { cause },
  );
}
