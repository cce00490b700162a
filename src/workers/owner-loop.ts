import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type BTree,
  type CommandRing,
  kWorkerBatches,
  kWorkerBatchSizeMax,
  kWorkerDoorbell,
  kWorkerOperations,
  kWorkerSleeping,
  RingConsumer,
} from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import {
  kRingResetRequest,
  recordTypeFragment,
  statusConflict,
  statusDeposed,
  statusPartitionFull,
  statusReplicationFailed,
  statusTooLargeToReplicate,
  statusWaitsForPageSet,
} from '../shared-memory/ring/ring-layout.js';
import { storageCondition } from '../storage/storage-errors.js';
import { flushOwnerLogs, type PartitionLog } from '../storage/wal/index.js';
import { recordBytes } from '../storage/wal/wal-format.js';
import { operationPartition } from './apply-operation.js';
import type { Failpoints } from './failpoints.js';
import type { LogShipper } from './log-shipper.js';
import { OperationApplier, statusWaitForRoom } from './operation-applier.js';
import { observeLogs, recordBatch } from './owner-metrics.js';
import { OwnerStallReport } from './owner-stall-report.js';
import type { PageSets } from './page-sets.js';
import type { PagedTree } from './paged-tree.js';
import { markPass, refusalStatus, rollBackPass } from './pass-rollback.js';
import type { VersionedPartition } from './versioned-partition.js';

export type DurabilityMode = 'sync' | 'relaxed' | 'none';

/**
 * How often an idle owner looks whether the snapshots that kept old versions have closed, and tries
 * again to log decisions a full disk refused.
 */
const garbageCheckIntervalMs = 50;

/** What an owner loop serves: its partitions' trees and logs. */
export interface OwnedPartition {
  tree: BTree;
  /** The partition's view of its owner's one log: its LSN sequence, records tagged with it. */
  log: PartitionLog;
  /** The partition under MVCC: its version store, prepared transactions and their locks. */
  versioned: VersionedPartition;
  /** The tree's page file and buffer pool, for a partition over a page file; null in an arena. */
  pages: PagedTree | null;
}

/** Reassembles an operation that arrived in fragments. */
interface Assembly {
  buffer: Uint8Array;
  filled: number;
}

/**
 * The partition owner's loop: drain every ring of this worker, apply what was drained to the trees,
 * log it, publish completions, and sleep on the doorbell when there is nothing to do.
 *
 * One pass over the rings is one batch, durable before visible: everything callers appended since the
 * last pass is validated and reserved (all that can fail fails here), appended to the owner's
 * write-ahead log (each record tagged with its partition), and written with one write; in 'sync' mode
 * it is followed by one fdatasync (group commit), however many partitions the batch touched. Only
 * then is the batch applied to the trees, where readers on any thread see it, and completion
 * published, so a caller's promise resolves after its write is on disk and no reader sees a 'sync'
 * write a crash can take back. While a batch syncs, callers keep appending, and the next batch is as
 * large as the disk is slow. Between batches the loop yields to the event loop, so control messages
 * (stats, checkpoint, shutdown) are served while writes stream in.
 */
export class OwnerLoop {
  readonly #partitions: Map<number, OwnedPartition>;
  readonly #durability: DurabilityMode;
  /** Logs written without a sync since the last `takeUnsynced()` ('relaxed' and 'none' modes). */
  #unsynced = new Set<PartitionLog>();
  readonly #rings: CommandRing[];
  readonly #consumers: RingConsumer[];
  readonly #completedSeqs: number[];
  readonly #assemblies: (Assembly | null)[];
  readonly #control: Int32Array;
  readonly #failpoints: Failpoints;
  readonly #applier: OperationApplier;
  /**
   * Per ring, plain writes waiting for a prepared transaction to release a key, in ring order. The
   * first `#plainRings` rings carry plain writes (which wait); the others carry transaction parts
   * (which fail fast with a conflict and are retried by their coordinator).
   */
  readonly #deferred: Uint8Array[][];
  readonly #plainRings: number;
  #stopping = false;
  #finished: Promise<void> | null = null;
  /** Set while this database leads a replication log: each pass's records go to the stream first. */
  #shipper: LogShipper | null = null;
  /** The page sets of partitions over page files, written between passes; null without any. */
  readonly #pageSets: PageSets | null;
  /** Where the loop is, for the stall report. */
  #phase = 'starting';
  #stallReport: OwnerStallReport | null = null;

  constructor(
    partitions: Map<number, OwnedPartition>,
    durability: DurabilityMode,
    rings: CommandRing[],
    control: Int32Array,
    failpoints: Failpoints,
    mvcc: MvccState,
    committer: number,
    pageSets: PageSets | null = null,
  ) {
    this.#pageSets = pageSets;
    this.#partitions = partitions;
    this.#durability = durability;
    this.#rings = rings;
    this.#consumers = rings.map((ring) => new RingConsumer(ring));
    this.#completedSeqs = rings.map((ring) => ring.completedSeq());
    this.#assemblies = rings.map(() => null);
    this.#control = control;
    this.#failpoints = failpoints;
    this.#applier = new OperationApplier(
      partitions,
      mvcc,
      committer,
      (partition) => pageSets?.wantRoom(partition),
      (partition) => pageSets?.roomOwed(partition) ?? false,
    );
    this.#deferred = rings.map(() => []);
    this.#plainRings = rings.length / 2;
    observeLogs(control, partitions.values());
  }

  start(): void {
    this.#stallReport = OwnerStallReport.fromEnvironment(() => this.#waitingWork());
    this.#finished = this.#run();
  }

  /** What writes wait on this owner for, or null if none waits (OwnerStallReport). */
  #waitingWork(): string | null {
    const records = this.#anyRecords();
    const sets = this.#pageSets?.describe() ?? null;
    const deferred = this.#deferred.flatMap((queue, ring) => {
      const head = queue[0];
      if (head === undefined) return [];
      const partition = operationPartition(head, 0);
      return [`${queue.length} in ring ${ring}, the first of kind ${head[0]} for partition ${partition}`];
    });
    const idle =
      !this.#stopping &&
      this.#phase !== 'in a pass' &&
      !records &&
      deferred.length === 0 &&
      sets?.requests !== true;
    if (idle) return null;
    return (
      `loop: ${this.#phase}${this.#stopping ? ', stopping' : ''}; records unread: ${records}; ` +
      `writes deferred: ${deferred.length === 0 ? 'none' : deferred.join('; ')}; ` +
      `decisions to apply: ${this.#applier.hasDecisions()}; page sets: ${sets?.text ?? 'none'}`
    );
  }

  /**
   * Starts (or, with null, stops) shipping each pass's records to the replication log before they
   * are written here. Takes effect at the next pass.
   */
  setShipper(shipper: LogShipper | null): void {
    this.#shipper?.close();
    this.#shipper = shipper;
  }

  /** Wakes the loop if it sleeps on its doorbell (work that came by another way than the rings). */
  wake(): void {
    Atomics.add(this.#control, kWorkerDoorbell, 1);
    Atomics.notify(this.#control, kWorkerDoorbell);
  }

  /** Stops after applying everything already appended; resolves when the last batch is complete. */
  async stop(): Promise<void> {
    this.#stopping = true;
    Atomics.add(this.#control, kWorkerDoorbell, 1);
    Atomics.notify(this.#control, kWorkerDoorbell);
    await this.#finished;
  }

  async #run(): Promise<void> {
    const control = this.#control;
    const pageSets = this.#pageSets;
    while (!this.#stopping) {
      this.#phase = 'between passes';
      if (pageSets !== null) await pageSets.betweenPasses();
      this.#phase = 'in a pass';
      const completed = await this.drainOnce();
      this.#phase = 'after a pass';
      if (completed > 0) {
        // A busy replicated owner lets its writers refill its rings before the next pass: every
        // pass costs a round trip to the log's servers, and one started at the first write back
        // carries only the writers that were quickest (PostgreSQL's commit_delay/commit_siblings).
        if (this.#shipper !== null && completed >= replicatedSettleOperations)
          await sleep(replicatedSettleMs);
        else await yieldToEventLoop();
        continue;
      }
      if (pageSets?.busy === true) {
        // Work between passes (a set owed, a sweep) goes on; the event loop must still run, for the
        // sets' file writes among the rest.
        await yieldToEventLoop();
        continue;
      }
      // Announce sleep, then look once more: a producer that appended before seeing the flag is
      // caught by this check, one that appends after it sees the flag and rings the doorbell.
      const doorbell = Atomics.load(control, kWorkerDoorbell);
      Atomics.store(control, kWorkerSleeping, 1);
      if (
        !this.#anyRecords() &&
        !this.#applier.hasDecisions() &&
        !this.#anyResetRequested() &&
        !(pageSets?.busy ?? false) &&
        !this.#stopping
      ) {
        // Versions waiting for snapshots to close are cleaned up on a timer while no writes come, and
        // decisions a full disk refused are logged again on one; so are page sets that wait for a
        // prepared transaction's decision. A deferred write is looked at again on the timer too:
        // what it waits for (a decision, a set) wakes the loop, and the timer bounds the cost of a
        // wake-up ever missed.
        const timed =
          this.#applier.hasGarbage() ||
          this.#applier.hasUnloggedDecisions() ||
          (pageSets?.waiting ?? false) ||
          this.#deferred.some((queue) => queue.length > 0);
        const timeout = timed ? garbageCheckIntervalMs : undefined;
        const wait = Atomics.waitAsync(control, kWorkerDoorbell, doorbell, timeout);
        this.#phase = timed ? 'asleep, on a timer' : 'asleep';
        if (wait.async) await wait.value;
      }
      Atomics.store(control, kWorkerSleeping, 0);
    }
    this.#phase = 'stopping: last passes';
    while ((await this.drainOnce()) > 0 || (pageSets?.roomPending ?? false)) {
      if (pageSets !== null) await pageSets.betweenPasses();
    }
    this.#phase = 'stopping: waiting for the page set under way';
    await pageSets?.idle();
    this.#phase = 'stopping: last log flush';
    // A clean stop leaves nothing unsynced, whatever the durability mode. On a full disk, what the log
    // already holds is synced; anything the disk refused was refused to its caller too.
    try {
      await flushOwnerLogs(
        [...this.#partitions.values()].map((owned) => owned.log),
        true,
      );
    } catch (error) {
      if (storageCondition(error) === null) throw error;
      console.warn('lightning-db owner: the last log flush at close was refused', error);
    }
    this.#phase = 'stopped; the worker closes its files';
  }

  /** The worker has closed everything after `stop()`: nothing is left to report a stall of. */
  closed(): void {
    this.#stallReport?.stop();
  }

  /** Logs written but not synced since the last call; the caller syncs them. */
  takeUnsynced(): PartitionLog[] {
    const logs = [...this.#unsynced];
    this.#unsynced.clear();
    return logs;
  }

  #anyRecords(): boolean {
    for (const consumer of this.#consumers) if (consumer.hasRecords()) return true;
    return false;
  }

  #anyResetRequested(): boolean {
    for (const ring of this.#rings) if (Atomics.load(ring.i32, kRingResetRequest) !== 0) return true;
    return false;
  }

  /**
   * One pass: stages everything in every ring (validate, reserve, append to the log), writes the log
   * (and syncs it, in 'sync' mode), applies what was staged to the trees, and publishes completion.
   * Returns the number of operations completed.
   */
  async drainOnce(): Promise<number> {
    let total = 0;
    const consumers = this.#consumers;
    const finished: number[] = [];
    const touched = new Set<PartitionLog>();
    this.#honorResets();
    const marks = markPass(this.#partitions);
    const startSeqs = this.#completedSeqs.slice();
    this.#applier.beginPass(touched);
    for (let r = 0; r < consumers.length; r++) {
      const consumer = consumers[r]!;
      const deferred = this.#deferred[r]!;
      if (!consumer.hasRecords() && deferred.length === 0) continue;
      let seq = this.#completedSeqs[r]!;
      let applied = 0;
      const waits = r < this.#plainRings;
      // Writes that waited for a prepared transaction's locks, or for a pool's frames, go first, in
      // their order.
      while (deferred.length > 0 && this.#applier.logHasRoom) {
        const operation = deferred[0]!;
        const status = this.#apply(consumer, operation, 0, operation.length, touched);
        if (status === statusWaitForRoom || (status === statusConflict && waits)) break;
        deferred.shift();
        seq = (seq + 1) | 0;
        consumer.setStatus(seq, status);
        applied++;
      }
      const u8 = this.#rings[r]!.u8;
      // A pass whose log is nearly as large as one write may be leaves the rest for the next pass.
      while (this.#applier.logHasRoom && consumer.next()) {
        let operation: Uint8Array;
        let start: number;
        let end: number;
        if (consumer.recordType === recordTypeFragment) {
          const assembled = this.#assemble(r, consumer);
          if (assembled === null) continue;
          operation = assembled;
          start = 0;
          end = assembled.length;
        } else {
          operation = u8;
          start = consumer.payloadStart;
          end = start + consumer.payloadBytes;
        }
        // Behind a waiting write, everything of its ring waits too: one thread's writes stay in order.
        if (deferred.length > 0) {
          deferred.push(operation.slice(start, end));
          continue;
        }
        const status = this.#apply(consumer, operation, start, end, touched);
        if (status === statusWaitForRoom || (status === statusConflict && waits)) {
          deferred.push(operation.slice(start, end));
          continue;
        }
        seq = (seq + 1) | 0;
        consumer.setStatus(seq, status);
        applied++;
      }
      // The log copied what it needs: the ring space can be reused while the batch is written.
      consumer.release();
      if (applied > 0) {
        this.#completedSeqs[r] = seq;
        finished.push(r);
        total += applied;
      }
    }
    if (total === 0 && touched.size === 0) return 0;
    // Durable, then visible: the pass's records reach the log (and the disk, in 'sync' mode) before
    // anything of it is applied. Prepares and decisions of two-phase commits are synced in every mode:
    // a decision may be made durable only once every prepare is, or presumed abort could keep half of
    // a transaction after a power loss.
    const sync = this.#durability === 'sync' || this.#applier.passNeedsSync;
    const passes = (): { consumer: RingConsumer; fromSeq: number; toSeq: number }[] =>
      finished.map((r) => ({
        consumer: consumers[r]!,
        fromSeq: startSeqs[r]!,
        toSeq: this.#completedSeqs[r]!,
      }));
    const shipper = this.#shipper;
    if (shipper !== null) {
      // Replicated: the stream takes the records first; refused there, they never reach this log.
      const refused = await this.#ship(shipper, touched);
      if (refused !== null) {
        rollBackPass(marks, this.#applier, passes(), refused);
        for (const r of finished) consumers[r]!.complete(this.#completedSeqs[r]!);
        return total;
      }
    }
    try {
      await this.#failpoints.pause('owner.before-sync');
      await flushOwnerLogs(touched, sync);
      if (!sync) for (const log of touched) this.#unsynced.add(log);
    } catch (error) {
      const errno = storageCondition(error);
      if (errno === null) {
        // Nothing of the batch is visible, but the log may hold part of it and cannot be trusted to
        // take more: stop this worker. Its writers fail with ERR_WORKER_CRASHED; reopening recovers.
        console.error('lightning-db owner: writing the write-ahead log failed; stopping this worker', error);
        process.exit(74);
      }
      // The disk is full or read-only: an operating condition. The writer dropped the batch; undo
      // the rest of the pass and refuse its writes, and keep serving (the next pass tries again).
      rollBackPass(marks, this.#applier, passes(), refusalStatus(errno));
      // The stream has what this log refused: this database no longer holds what it leads.
      shipper?.diverged(`the owner's log refused records the replication log holds (${errno})`);
      for (const r of finished) consumers[r]!.complete(this.#completedSeqs[r]!);
      return total;
    }
    try {
      this.#applier.applyStaged();
    } catch (error) {
      // Staging reserved room for everything it accepted: a failure here is a bug.
      console.error('lightning-db owner: applying a logged batch failed; stopping this worker', error);
      process.exit(70);
    }
    this.#applier.endPass();
    if (total === 0) return 0;
    this.#stallReport?.progress();
    const control = this.#control;
    Atomics.add(control, kWorkerBatches, 1);
    Atomics.add(control, kWorkerOperations, total);
    if (total > Atomics.load(control, kWorkerBatchSizeMax))
      Atomics.store(control, kWorkerBatchSizeMax, total);
    recordBatch(control, total);
    for (const r of finished) consumers[r]!.complete(this.#completedSeqs[r]!);
    return total;
  }

  /**
   * Ships the pass's records (every log it touched holds them unflushed) and waits for the stream.
   * Returns null once the stream holds them, or the status to refuse the pass with; then the records
   * are dropped from the logs, as if never appended.
   */
  async #ship(shipper: LogShipper, touched: Set<PartitionLog>): Promise<number | null> {
    const writers = new Set([...touched].map((log) => log.writer));
    for (const writer of writers) {
      if (writer.pendingBytes === 0) continue;
      const reply = await shipper.ship(writer.copyPending());
      if (reply.ok) continue;
      for (const dropped of writers) dropped.discardPending();
      return reply.code === 'ERR_DEPOSED' ? statusDeposed : statusReplicationFailed;
    }
    return null;
  }

  /**
   * Forgets what a dead producer left in its rings, when the thread reclaiming its slot asks
   * (kRingResetRequest): records not applied yet, writes waiting for a lock, an operation half sent
   * in fragments. Runs between passes, when every completion of the ring is published.
   */
  #honorResets(): void {
    for (let r = 0; r < this.#rings.length; r++) {
      const i32 = this.#rings[r]!.i32;
      if (Atomics.load(i32, kRingResetRequest) === 0) continue;
      this.#consumers[r]!.skipPublished();
      this.#deferred[r]!.length = 0;
      this.#assemblies[r] = null;
      Atomics.store(i32, kRingResetRequest, 0);
      Atomics.notify(i32, kRingResetRequest);
    }
  }

  /** Adds the current fragment to its operation; returns the operation's bytes once complete. */
  #assemble(ringIndex: number, consumer: RingConsumer): Uint8Array | null {
    const u8 = this.#rings[ringIndex]!.u8;
    const start = consumer.payloadStart;
    const total = readU32(u8, start);
    const chunk = readU32(u8, start + 4);
    let assembly = this.#assemblies[ringIndex];
    if (assembly === null || assembly === undefined) {
      assembly = { buffer: new Uint8Array(total), filled: 0 };
      this.#assemblies[ringIndex] = assembly;
    }
    assembly.buffer.set(u8.subarray(start + 8, start + 8 + chunk), assembly.filled);
    assembly.filled += chunk;
    if (assembly.filled < total) return null;
    this.#assemblies[ringIndex] = null;
    return assembly.buffer;
  }

  /**
   * Stages (validates, reserves and logs) the operation encoded in u8[start, end), from the ring of
   * `consumer`; returns its status. A refusal for want of room leaves its numbers in the ring.
   */
  #apply(
    consumer: RingConsumer,
    u8: Uint8Array,
    start: number,
    end: number,
    touched: Set<PartitionLog>,
  ): number {
    this.#failpoints.hit('owner.apply');
    // A record the replication log cannot carry would fail the whole pass there: refuse it alone.
    // (A record's payload is the operation, or for a prepare its writes plus an 8-byte id.)
    const shipper = this.#shipper;
    if (shipper !== null && recordBytes(end - start + 8) > shipper.recordBytesMax) {
      return statusTooLargeToReplicate;
    }
    let status = this.#applier.stage(u8, start, end, touched);
    // While the disk refuses page sets, a write waiting for room would wait until space returns, and
    // a transaction part refused until a set would be retried in vain: both get the disk's refusal.
    if (status === statusWaitForRoom || status === statusWaitsForPageSet)
      status = this.#pageSets?.refusal ?? status;
    if (status === statusPartitionFull) consumer.recordPartitionFull(this.#applier.lastPartitionFull);
    return status;
  }
}

/** A replicated pass of at least this many operations is followed by a settle. */
const replicatedSettleOperations = 8;
/** How long a busy replicated owner waits for its writers before its next pass (a timer's least). */
const replicatedSettleMs = 1;

function readU32(u8: Uint8Array, at: number): number {
  return (u8[at]! | (u8[at + 1]! << 8) | (u8[at + 2]! << 16) | (u8[at + 3]! << 24)) >>> 0;
}
