import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type BTree,
  type CommandRing,
  isLightningError,
  kWorkerBatches,
  kWorkerBatchSizeMax,
  kWorkerDoorbell,
  kWorkerOperations,
  kWorkerSleeping,
  RingConsumer,
} from '../shared-memory/index.js';
import {
  recordTypeFragment,
  statusInternalError,
  statusOk,
  statusPartitionFull,
} from '../shared-memory/ring/ring-layout.js';
import { recordTypeOperation, type WalWriter } from '../storage/wal/index.js';
import { applyOperation, operationPartition } from './apply-operation.js';
import type { Failpoints } from './failpoints.js';

export type DurabilityMode = 'sync' | 'relaxed' | 'none';

/** What an owner loop serves: its partitions' trees and logs. */
export interface OwnedPartition {
  tree: BTree;
  log: WalWriter;
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
 * One pass over the rings is one batch: everything callers appended since the last pass is applied,
 * appended to its partition's write-ahead log, and written with one write per partition; in 'sync'
 * mode each of those is followed by one fdatasync (group commit). Only then is completion published,
 * so a caller's promise resolves after its write is on disk. While a batch syncs, callers keep
 * appending, and the next batch is as large as the disk is slow. Between batches the loop yields to
 * the event loop, so control messages (stats, checkpoint, shutdown) are served while writes stream in.
 */
export class OwnerLoop {
  readonly #partitions: Map<number, OwnedPartition>;
  readonly #durability: DurabilityMode;
  /** Logs written without a sync since the last `takeUnsynced()` ('relaxed' and 'none' modes). */
  #unsynced = new Set<WalWriter>();
  readonly #rings: CommandRing[];
  readonly #consumers: RingConsumer[];
  readonly #completedSeqs: number[];
  readonly #assemblies: (Assembly | null)[];
  readonly #control: Int32Array;
  readonly #failpoints: Failpoints;
  #stopping = false;
  #finished: Promise<void> | null = null;

  constructor(
    partitions: Map<number, OwnedPartition>,
    durability: DurabilityMode,
    rings: CommandRing[],
    control: Int32Array,
    failpoints: Failpoints,
  ) {
    this.#partitions = partitions;
    this.#durability = durability;
    this.#rings = rings;
    this.#consumers = rings.map((ring) => new RingConsumer(ring));
    this.#completedSeqs = rings.map((ring) => ring.completedSeq());
    this.#assemblies = rings.map(() => null);
    this.#control = control;
    this.#failpoints = failpoints;
  }

  start(): void {
    this.#finished = this.#run();
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
    while (!this.#stopping) {
      if ((await this.drainOnce()) > 0) {
        await yieldToEventLoop();
        continue;
      }
      // Announce sleep, then look once more: a producer that appended before seeing the flag is
      // caught by this check, one that appends after it sees the flag and rings the doorbell.
      const doorbell = Atomics.load(control, kWorkerDoorbell);
      Atomics.store(control, kWorkerSleeping, 1);
      if (!this.#anyRecords() && !this.#stopping) {
        const wait = Atomics.waitAsync(control, kWorkerDoorbell, doorbell);
        if (wait.async) await wait.value;
      }
      Atomics.store(control, kWorkerSleeping, 0);
    }
    while ((await this.drainOnce()) > 0) {}
    // A clean stop leaves nothing unsynced, whatever the durability mode.
    await Promise.all([...this.#partitions.values()].map((owned) => owned.log.flush(true)));
  }

  /** Logs written but not synced since the last call; the caller syncs them. */
  takeUnsynced(): WalWriter[] {
    const logs = [...this.#unsynced];
    this.#unsynced.clear();
    return logs;
  }

  #anyRecords(): boolean {
    for (const consumer of this.#consumers) if (consumer.hasRecords()) return true;
    return false;
  }

  /**
   * Applies everything in every ring once, logs it, and publishes completion once it is written (and
   * synced, in 'sync' mode). Returns the number of operations applied.
   */
  async drainOnce(): Promise<number> {
    let total = 0;
    const consumers = this.#consumers;
    const finished: number[] = [];
    const touched = new Set<WalWriter>();
    for (let r = 0; r < consumers.length; r++) {
      const consumer = consumers[r]!;
      if (!consumer.hasRecords()) continue;
      let seq = this.#completedSeqs[r]!;
      let applied = 0;
      const u8 = this.#rings[r]!.u8;
      while (consumer.next()) {
        let status: number;
        if (consumer.recordType === recordTypeFragment) {
          const assembled = this.#assemble(r, consumer);
          if (assembled === null) continue;
          status = this.#apply(assembled, 0, assembled.length, touched);
        } else {
          const start = consumer.payloadStart;
          status = this.#apply(u8, start, start + consumer.payloadBytes, touched);
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
    if (total === 0) return 0;
    const sync = this.#durability === 'sync';
    try {
      await Promise.all([...touched].map((log) => log.flush(sync)));
      if (!sync) for (const log of touched) this.#unsynced.add(log);
    } catch (error) {
      // The batch is applied in memory but may not be on disk, and the log cannot be trusted to take
      // more: stop this worker. Its writers fail with ERR_WORKER_CRASHED; reopening recovers from disk.
      console.error('lightning-db owner: writing the write-ahead log failed; stopping this worker', error);
      process.exit(74);
    }
    const control = this.#control;
    Atomics.add(control, kWorkerBatches, 1);
    Atomics.add(control, kWorkerOperations, total);
    if (total > Atomics.load(control, kWorkerBatchSizeMax))
      Atomics.store(control, kWorkerBatchSizeMax, total);
    for (const r of finished) consumers[r]!.complete(this.#completedSeqs[r]!);
    return total;
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

  /** Applies and logs the operation encoded in u8[start, end); returns its status. */
  #apply(u8: Uint8Array, start: number, end: number, touched: Set<WalWriter>): number {
    this.#failpoints.hit('owner.apply');
    const partition = operationPartition(u8, start);
    const owned = this.#partitions.get(partition);
    if (owned === undefined) {
      console.error(
        `lightning-db owner: operation for partition ${partition}, which this worker does not own`,
      );
      return statusInternalError;
    }
    try {
      const encodedEnd = applyOperation(owned.tree, u8, start, end);
      // Only what was applied is logged, so replay never meets an operation that failed.
      owned.log.append(recordTypeOperation, [u8.subarray(start, encodedEnd)]);
      touched.add(owned.log);
      return statusOk;
    } catch (error) {
      if (isLightningError(error, 'ERR_PARTITION_FULL')) return statusPartitionFull;
      console.error('lightning-db owner: a write failed', error);
      return statusInternalError;
    }
  }
}

function readU32(u8: Uint8Array, at: number): number {
  return (u8[at]! | (u8[at + 1]! << 8) | (u8[at + 2]! << 16) | (u8[at + 3]! << 24)) >>> 0;
}
