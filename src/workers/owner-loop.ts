import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { assert } from '../shared-memory/assert.js';
import {
  type BTree,
  isLightningError,
  kWorkerBatches,
  kWorkerBatchSizeMax,
  kWorkerDoorbell,
  kWorkerOperations,
  kWorkerSleeping,
} from '../shared-memory/index.js';
import { type CommandRing, RingConsumer } from '../shared-memory/ring/command-ring.js';
import {
  decodeOperation,
  operationBatch,
  operationDel,
  operationPut,
  read16,
  read32,
} from '../shared-memory/ring/operation-codec.js';
import {
  recordTypeFragment,
  statusInternalError,
  statusOk,
  statusPartitionFull,
} from '../shared-memory/ring/ring-layout.js';
import type { Failpoints } from './failpoints.js';

/** Reassembles an operation that arrived in fragments. */
interface Assembly {
  buffer: Uint8Array;
  filled: number;
}

/**
 * The partition owner's loop: drain every ring of this worker, apply what was drained to the trees,
 * publish completions, and sleep on the doorbell when there is nothing to do.
 *
 * One pass over the rings is one batch: everything callers appended since the last pass is applied
 * together, and completion is published once per ring at the end, which is where the write-ahead log
 * will write and sync the batch. Between batches with work the loop yields to the event loop, so
 * control messages (stats, shutdown) are served while writes stream in.
 */
export class OwnerLoop {
  readonly #trees: Map<number, BTree>;
  readonly #rings: CommandRing[];
  readonly #consumers: RingConsumer[];
  readonly #completedSeqs: number[];
  readonly #assemblies: (Assembly | null)[];
  readonly #control: Int32Array;
  readonly #failpoints: Failpoints;
  #stopping = false;
  #finished: Promise<void> | null = null;

  constructor(trees: Map<number, BTree>, rings: CommandRing[], control: Int32Array, failpoints: Failpoints) {
    this.#trees = trees;
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
      if (this.drainOnce() > 0) {
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
    while (this.drainOnce() > 0) {}
  }

  #anyRecords(): boolean {
    for (const consumer of this.#consumers) if (consumer.hasRecords()) return true;
    return false;
  }

  /** Applies everything in every ring once; returns the number of operations applied. */
  drainOnce(): number {
    let total = 0;
    const consumers = this.#consumers;
    const finished: number[] = [];
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
          status = this.#apply(assembled, 0, assembled.length);
        } else {
          status = this.#apply(u8, consumer.payloadStart, consumer.payloadStart + consumer.payloadBytes);
        }
        seq = (seq + 1) | 0;
        consumer.setStatus(seq, status);
        applied++;
      }
      consumer.release();
      if (applied > 0) {
        this.#completedSeqs[r] = seq;
        finished.push(r);
        total += applied;
      }
    }
    if (total === 0) return 0;
    const control = this.#control;
    Atomics.add(control, kWorkerBatches, 1);
    Atomics.add(control, kWorkerOperations, total);
    if (total > Atomics.load(control, kWorkerBatchSizeMax))
      Atomics.store(control, kWorkerBatchSizeMax, total);
    // The batch is applied; this is where it will be logged and synced before anyone is told.
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

  /** Applies the operation encoded in u8[start, end) to its partition; returns its status. */
  #apply(u8: Uint8Array, start: number, end: number): number {
    this.#failpoints.hit('owner.apply');
    const kind = u8[start]!;
    const partition = read16(u8, start + 2);
    const tree = this.#trees.get(partition);
    if (tree === undefined) {
      console.error(
        `lightning-db owner: operation for partition ${partition}, which this worker does not own`,
      );
      return statusInternalError;
    }
    try {
      // Puts and deletes are applied from the record's bytes directly; the tree copies what it keeps.
      if (kind === operationPut) {
        const keyEnd = start + 10 + read16(u8, start + 4);
        const valueEnd = keyEnd + read32(u8, start + 6);
        assert(valueEnd <= end, 'put fits its record');
        tree.put(u8.subarray(start + 10, keyEnd), u8.subarray(keyEnd, valueEnd));
      } else if (kind === operationDel) {
        const keyEnd = start + 6 + read16(u8, start + 4);
        assert(keyEnd <= end, 'del fits its record');
        tree.delete(u8.subarray(start + 6, keyEnd));
      } else {
        assert(kind === operationBatch, `known operation kind (got ${kind})`);
        tree.applyBatch(decodeOperation(u8, start, end).entries);
      }
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
