import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bytesName,
  isLightningError,
  kWorkerDoorbell,
  kWorkerSleeping,
  LightningError,
} from '../shared-memory/index.js';
import { type MvccState, txFree } from '../shared-memory/mvcc/mvcc-state.js';
import { type BatchEntry, operationDel, operationPut } from '../shared-memory/ring/operation-codec.js';
import {
  isolationSerializable,
  isolationSnapshot,
  operationTxCommit,
  operationTxPrepare,
  type TransactionPart,
} from '../shared-memory/ring/transaction-codec.js';
import type { KeyInterval } from '../shared-memory/tree/range-options.js';
import type { DecisionLog } from '../storage/decision-log.js';
import type { Failpoints } from '../workers/failpoints.js';
import { PageSetWaitError } from './page-set-wait-error.js';
import type { PartitionRouter } from './partition-router.js';
import { Snapshot, type SnapshotSource } from './snapshot.js';
import { type BufferedWrite, Transaction } from './transaction.js';
import type { WriteChannel } from './write-channel.js';

export interface TransactionOptions {
  /** Conflicts retried before the transaction fails with ERR_TX_CONFLICT. Default 16. */
  retries?: number;
  /** 'serializable' (default: reads validated at commit) or 'snapshot' (only write-write conflicts). */
  isolation?: 'serializable' | 'snapshot';
}

export interface TransactionStats {
  commits: number;
  /** Attempts that failed validation (each is retried, or fails the transaction). */
  conflicts: number;
  retries: number;
  /** Transactions that ran out of retries (ERR_TX_CONFLICT). */
  failed: number;
  crossPartitionCommits: number;
  /**
   * Attempts refused because a partition's buffer pool had to write a page set first while another
   * prepared transaction held it back (PageSetWaitError). Retried, not counted in `conflicts`.
   */
  pageSetWaits: number;
}

/** What a thread's coordinator works with. */
export interface CoordinatorParts {
  source: SnapshotSource;
  router: PartitionRouter;
  mvcc: MvccState;
  /** This thread's committer index in the MVCC block (after the owner workers). */
  committer: number;
  /** This thread's slot: transactions it coordinates are marked with it, for reclaiming it if it dies. */
  thread: number;
  channelOf: (partition: number) => WriteChannel;
  workerOf: (partition: number) => number;
  workerControls: Int32Array[];
  decisionLog: DecisionLog;
  failpoints: Failpoints;
  partitions: number;
  /** Where this thread counts its transactions. */
  stats: TransactionStats;
}

export const retriesDefault = 16;
/**
 * Backoff before retry n is uniform in [0, 2^n) ms, capped: short while conflicts are rare, long
 * enough after several to let a thread whose event loop is busy (so its transactions run slowly and
 * keep losing) get one through.
 */
const backoffMsMax = 1000;
/**
 * Attempts a transaction may be refused for a page set (PageSetWaitError) before it fails with
 * ERR_TX_CONFLICT, each after a pause uniform in [0, 2^n) ms, at most pageSetWaitMsMax: a set takes
 * a few milliseconds once the prepared transactions holding it back have decided. Nothing orders
 * the waiters, so an unlucky one may be refused many times while others take the room a set gave
 * back (on a 64-frame pool with 32 transactions in flight, up to about 250 times on a loaded
 * machine): the budget (about 25 s of pauses) is spent only if sets cannot be written at all.
 * Growing pauses were measured against fixed and shrinking ones: the fewest refusals per
 * transaction and the lowest worst case.
 */
const pageSetWaitsMax = 1000;
const pageSetWaitMsMax = 50;
/** How an attempt to commit ended: committed, conflicted (a retry), or waited for a page set. */
type CommitOutcome = 'committed' | 'conflict' | 'pageSet';
/** Read timestamp of a blind batch: nothing it writes is checked against a snapshot. */
const blindReadTimestamp = 2 ** 53 - 1;
/** The decision log is emptied, once nothing in it is still needed, when it grows past this. */
const decisionLogBytesMax = 1 << 20;

/**
 * Runs transactions for one thread: optimistic execution at a snapshot, then validation and commit by
 * the owners — one message to the owner of a single-partition transaction, two-phase commit across
 * partitions — and automatic retries with backoff on conflicts.
 */
export class TransactionCoordinator {
  readonly #parts: CoordinatorParts;
  /** This thread's counts, kept where every thread's stats() can sum them (thread-counters.ts). */
  readonly stats: TransactionStats;
  /** Status references of committed transactions whose decisions are in the decision log. */
  #logged: number[] = [];
  /** Set on a replicated database's leader: see setReplicatedCommit. */
  #replicatedCommit: ((shipped: () => boolean) => Promise<void>) | null = null;

  constructor(parts: CoordinatorParts) {
    this.#parts = parts;
    this.stats = parts.stats;
  }

  async run<T>(fn: (tx: Transaction) => T | Promise<T>, options: TransactionOptions | undefined): Promise<T> {
    if (typeof fn !== 'function')
      throw new LightningError('ERR_BAD_ARGUMENT', 'transaction takes a function');
    const { retries, isolation } = parseOptions(options);
    const waits = new PageSetWaits();
    for (let attempt = 0, conflicts = 0; ; attempt++) {
      const snapshot = new Snapshot(this.#parts.source, false);
      const tx = new Transaction(snapshot, attempt);
      let result: T;
      let outcome: CommitOutcome;
      try {
        result = await fn(tx);
        tx.finish();
        outcome = await this.#commit(tx.writes, tx.reads, tx.ranges, snapshot.readTimestamp, isolation);
      } finally {
        tx.finish();
        snapshot.release();
      }
      if (outcome === 'committed') {
        this.stats.commits++;
        return result;
      }
      if (outcome === 'pageSet') {
        if (await waits.waited(this.stats)) continue;
        this.stats.failed++;
        throw waits.error();
      }
      this.stats.conflicts++;
      if (conflicts >= retries) {
        this.stats.failed++;
        throw new LightningError(
          'ERR_TX_CONFLICT',
          `the transaction conflicted with concurrent writes ${conflicts + 1} times; retries (${retries}) exhausted`,
        );
      }
      this.stats.retries++;
      await backoff(conflicts++);
    }
  }

  /** Applies writes in any partitions atomically: one owner's batch, or a two-phase commit. */
  async batch(entries: BatchEntry[]): Promise<void> {
    const writes = new Map<string, BufferedWrite>();
    for (const entry of entries) {
      writes.set(bytesName(entry.key), { key: entry.key, value: entry.value });
    }
    const waits = new PageSetWaits();
    for (let conflicts = 0; ; ) {
      const outcome = await this.#commit([...writes.values()], [], [], blindReadTimestamp, isolationSnapshot);
      if (outcome === 'committed') return;
      if (outcome === 'pageSet') {
        if (await waits.waited(this.stats)) continue;
        throw waits.error();
      }
      if (conflicts >= retriesDefault) {
        throw new LightningError(
          'ERR_TX_CONFLICT',
          'the batch met prepared transactions on its keys too often',
        );
      }
      await backoff(conflicts++);
    }
  }

  /** Validates and commits. */
  async #commit(
    writes: BufferedWrite[],
    reads: Uint8Array[],
    ranges: KeyInterval[],
    readTimestamp: number,
    isolation: number,
  ): Promise<CommitOutcome> {
    if (writes.length === 0) return 'committed'; // Read-only: its snapshot is a serial point.
    const parts = this.#split(
      writes,
      isolation === isolationSerializable ? reads : [],
      isolation === isolationSerializable ? ranges : [],
      readTimestamp,
      isolation,
    );
    if (parts.size === 1) {
      const [part] = parts.values();
      part!.kind = operationTxCommit;
      return settleOne(this.#parts.channelOf(part!.partition).transaction(part!));
    }
    return this.#twoPhaseCommit(parts);
  }

  #split(
    writes: BufferedWrite[],
    reads: Uint8Array[],
    ranges: KeyInterval[],
    readTimestamp: number,
    isolation: number,
  ): Map<number, TransactionPart> {
    const parts = new Map<number, TransactionPart>();
    const partOf = (partition: number): TransactionPart => {
      let part = parts.get(partition);
      if (part === undefined) {
        part = {
          kind: operationTxPrepare,
          isolation,
          partition,
          statusReference: 0,
          transactionId: 0,
          readTimestamp,
          reads: [],
          ranges: [],
          writes: [],
        };
        parts.set(partition, part);
      }
      return part;
    };
    const router = this.#parts.router;
    for (const write of writes) {
      partOf(router.partitionOf(write.key)).writes.push({
        kind: write.value === null ? operationDel : operationPut,
        key: write.key,
        value: write.value,
      });
    }
    for (const key of reads) partOf(router.partitionOf(key)).reads.push(key);
    // A range may hold keys of every partition: each validates its share.
    if (ranges.length > 0) {
      for (let partition = 0; partition < this.#parts.partitions; partition++)
        partOf(partition).ranges.push(...ranges);
    }
    return parts;
  }

  /**
   * PREPARE at every participant (each validates, installs intents and logs them durably), then the
   * decision: commit only if all prepared, made durable in this thread's decision log before it is
   * published in the status table, where readers and participants find it.
   */
  async #twoPhaseCommit(parts: Map<number, TransactionPart>): Promise<CommitOutcome> {
    const { mvcc, decisionLog, failpoints } = this.#parts;
    const transactionId = randomInt(2 ** 47) * 64 + randomInt(64);
    const reference = mvcc.allocateTransaction(
      randomInt(mvcc.transactionEntries),
      this.#parts.thread,
      transactionId,
    );
    if (reference < 0) return 'conflict'; // Every status entry busy: retry after a backoff.
    for (const part of parts.values()) {
      part.statusReference = reference;
      part.transactionId = transactionId;
    }
    const outcomes = await Promise.allSettled(
      [...parts.values()].map((part) => this.#parts.channelOf(part.partition).transaction(part)),
    );
    const prepared = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    let committed = prepared === parts.size;
    let failure: unknown = null;
    if (committed) {
      failpoints.hit('tx.after-prepare');
      const gate = failpoints.gate('tx.after-prepare');
      if (gate !== null) await gate;
      // Should this thread die before publishing the decision, whoever reclaims its slot reads the
      // decision logs; this flag tells it a write may still be reaching one.
      mvcc.setDecisionLogging(reference, true);
      try {
        this.#logged.push(reference);
        await decisionLog.append(transactionId);
      } catch (error) {
        committed = false;
        failure = error;
      }
      mvcc.setDecisionLogging(reference, false);
      if (committed) failpoints.hit('tx.after-decision');
    } else {
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected' && !isLightningError(outcome.reason, 'ERR_TX_CONFLICT')) {
          failure = outcome.reason;
          break;
        }
      }
    }
    // The participants counted themselves when they prepared (mvcc.joinTransaction).
    if (committed) {
      const commitTimestamp = mvcc.openWindow(this.#parts.committer);
      mvcc.decide(reference, true, commitTimestamp);
      mvcc.closeWindow(this.#parts.committer);
      this.stats.crossPartitionCommits++;
    } else {
      mvcc.decide(reference, false, 0);
      if (prepared === 0) mvcc.freeTransaction(reference);
    }
    this.#wakeParticipants(parts);
    if (failure !== null) throw failure;
    if (committed && this.#replicatedCommit !== null) {
      await this.#replicatedCommit(() => mvcc.transactionState(reference) === txFree);
    }
    if (committed) {
      await this.#trimDecisionLog();
      return 'committed';
    }
    // A part refused for a key is a conflict; parts refused only until a page set, a wait.
    const conflicted = outcomes.some(
      (outcome) => outcome.status === 'rejected' && !(outcome.reason instanceof PageSetWaitError),
    );
    return conflicted ? 'conflict' : 'pageSet';
  }

  /**
   * Replication: a cross-partition commit is acknowledged only once every participant's decision
   * record is in the replication log (each participant frees the status entry after its log took
   * the record, which the leader ships first). `gate` waits for `shipped()` or throws.
   */
  setReplicatedCommit(gate: (shipped: () => boolean) => Promise<void>): void {
    this.#replicatedCommit = gate;
  }

  #wakeParticipants(parts: Map<number, TransactionPart>): void {
    const woken = new Set<number>();
    for (const partition of parts.keys()) {
      const worker = this.#parts.workerOf(partition);
      if (woken.has(worker)) continue;
      woken.add(worker);
      const control = this.#parts.workerControls[worker]!;
      Atomics.add(control, kWorkerDoorbell, 1);
      if (Atomics.load(control, kWorkerSleeping) !== 0) Atomics.notify(control, kWorkerDoorbell);
    }
  }

  /** Empties the decision log once every decision in it has been logged by all its participants. */
  async #trimDecisionLog(): Promise<void> {
    const { decisionLog, mvcc } = this.#parts;
    if (decisionLog.bytes < decisionLogBytesMax) return;
    this.#logged = this.#logged.filter((reference) => mvcc.transactionState(reference) !== 0);
    if (this.#logged.length > 0) return;
    try {
      await decisionLog.truncate();
    } catch (error) {
      // The transaction committed; a log not emptied now is emptied by a later commit, or at open.
      console.warn('lightning-db: emptying the decision log failed; it is tried again later', error);
    }
  }
}

async function settleOne(sent: Promise<void>): Promise<CommitOutcome> {
  try {
    await sent;
    return 'committed';
  } catch (error) {
    if (error instanceof PageSetWaitError) return 'pageSet';
    if (isLightningError(error, 'ERR_TX_CONFLICT')) return 'conflict';
    throw error;
  }
}

/** One transaction's refusals for page sets: paused between, and bounded (pageSetWaitsMax). */
class PageSetWaits {
  #count = 0;

  /** Counts a refusal in `stats`, then pauses and resolves true, or false once they are exhausted. */
  async waited(stats: TransactionStats): Promise<boolean> {
    stats.pageSetWaits++;
    if (this.#count >= pageSetWaitsMax) return false;
    const ceiling = Math.min(pageSetWaitMsMax, 2 ** Math.min(this.#count++, 10));
    await sleep(Math.random() * ceiling);
    return true;
  }

  error(): LightningError {
    return new LightningError(
      'ERR_TX_CONFLICT',
      `a partition's buffer pool could not write its pages for this transaction in ${this.#count + 1} ` +
        'attempts: prepared transactions kept holding them back, or page sets fail (see the log)',
    );
  }
}

function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(backoffMsMax, 2 ** Math.min(attempt, 10));
  return sleep(Math.random() * ceiling);
}

function parseOptions(options: TransactionOptions | undefined): { retries: number; isolation: number } {
  if (options === undefined) return { retries: retriesDefault, isolation: isolationSerializable };
  if (typeof options !== 'object' || options === null)
    throw new LightningError('ERR_BAD_ARGUMENT', 'transaction options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'retries' && key !== 'isolation')
      throw new LightningError('ERR_BAD_ARGUMENT', `unknown transaction option ${JSON.stringify(key)}`);
  }
  const retries = options.retries ?? retriesDefault;
  if (!Number.isInteger(retries) || retries < 0 || retries > 1000)
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `retries must be an integer from 0 to 1000, got ${String(retries)}`,
    );
  const isolation = options.isolation ?? 'serializable';
  if (isolation !== 'serializable' && isolation !== 'snapshot')
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `isolation must be 'serializable' or 'snapshot', got ${String(isolation)}`,
    );
  return { retries, isolation: isolation === 'serializable' ? isolationSerializable : isolationSnapshot };
}
