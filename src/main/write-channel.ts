import {
  type CommandRing,
  kWorkerDoorbell,
  kWorkerSleeping,
  kWorkerState,
  LightningError,
  RingProducer,
  workerStateCrashed,
  workerStateStopped,
} from '../shared-memory/index.js';
import {
  type BatchEntry,
  batchEncodedBytes,
  delEncodedBytes,
  encodeBatch,
  encodeDel,
  encodePut,
  operationBatch,
  operationDel,
  operationPut,
  putEncodedBytes,
} from '../shared-memory/ring/operation-codec.js';
import {
  kRingCompletedSeq,
  kRingReadOffset,
  kRingWriteOffset,
  statusConflict,
  statusOk,
  statusPartitionFull,
} from '../shared-memory/ring/ring-layout.js';
import {
  encodeTransaction,
  type TransactionPart,
  transactionEncodedBytes,
} from '../shared-memory/ring/transaction-codec.js';
import type { KeepAlive } from './keep-alive.js';

interface Backlogged {
  encoded: Uint8Array;
  sentBytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * One thread's path to one partition-owner worker: appends encoded operations to this thread's
 * command ring for that worker, rings the worker's doorbell, and resolves each operation's promise
 * when the owner publishes its completion.
 *
 * Operations that do not fit the ring now (it is full, too many are in flight, or one is larger than
 * a record) wait in a backlog, in order, and are sent as the owner frees space: a full ring slows
 * callers down, it never drops or throws.
 *
 * The write path allocates nothing per operation but its promise: operations in flight have
 * consecutive sequence numbers, so they are kept as two arrays of settle functions from `#headSeq`.
 */
export class WriteChannel {
  readonly #ring: CommandRing;
  readonly #producer: RingProducer;
  readonly #control: Int32Array;
  readonly #keepAlive: KeepAlive;
  readonly #inFlightMax: number;
  readonly #recordPayloadMax: number;
  /** Sequence number of the last operation sent. */
  #lastSeq: number;
  /** Sequence number of the operation at #head. */
  #headSeq: number;
  #head = 0;
  #resolvers: (() => void)[] = [];
  #rejecters: ((error: unknown) => void)[] = [];
  #backlog: Backlogged[] = [];
  #doorbellThisTick = false;
  #waitingForCompletion = false;
  #waitingForSpace = false;
  #failure: LightningError | null = null;
  #drainWaiters: (() => void)[] = [];
  #capturedResolve: () => void = noop;
  #capturedReject: (error: unknown) => void = noop;
  readonly #capture = (resolve: () => void, reject: (error: unknown) => void): void => {
    this.#capturedResolve = resolve;
    this.#capturedReject = reject;
  };

  constructor(ring: CommandRing, control: Int32Array, keepAlive: KeepAlive) {
    this.#ring = ring;
    this.#producer = new RingProducer(ring);
    this.#control = control;
    this.#keepAlive = keepAlive;
    this.#inFlightMax = ring.statusSlots - 1;
    this.#recordPayloadMax = ring.recordBytesMax - 16;
    this.#lastSeq = ring.completedSeq();
    this.#headSeq = (this.#lastSeq + 1) | 0;
  }

  /** Operations sent or waiting whose promise has not settled. */
  get pending(): number {
    return this.#resolvers.length - this.#head + this.#backlog.length;
  }

  put(partition: number, key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.#send(putEncodedBytes(key, value), operationPut, partition, key, value, null);
  }

  del(partition: number, key: Uint8Array): Promise<void> {
    return this.#send(delEncodedBytes(key), operationDel, partition, key, null, null);
  }

  batch(partition: number, entries: BatchEntry[]): Promise<void> {
    return this.#send(batchEncodedBytes(entries), operationBatch, partition, null, null, entries);
  }

  /** Sends one partition's part of a transaction (commit or prepare); rejects ERR_TX_CONFLICT. */
  transaction(part: TransactionPart): Promise<void> {
    return this.#send(transactionEncodedBytes(part), part.kind, part.partition, null, null, null, part);
  }

  /** Resolves when every operation sent so far has settled. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Fails every pending operation (the owner died or the database closed). */
  fail(error: LightningError): void {
    if (this.#failure === null) this.#failure = error;
    const hadPending = this.pending > 0;
    for (let i = this.#head; i < this.#rejecters.length; i++) this.#rejecters[i]!(error);
    for (const waiting of this.#backlog) waiting.reject(error);
    this.#resolvers = [];
    this.#rejecters = [];
    this.#head = 0;
    this.#backlog = [];
    if (hadPending) this.#settledAll();
  }

  #send(
    bytes: number,
    kind: number,
    partition: number,
    key: Uint8Array | null,
    value: Uint8Array | null,
    entries: BatchEntry[] | null,
    part: TransactionPart | null = null,
  ): Promise<void> {
    if (this.#failure === null) this.#checkWorkerAlive();
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const promise = new Promise<void>(this.#capture);
    if (this.pending === 0) this.#keepAlive.hold();
    if (
      this.#backlog.length === 0 &&
      this.#inFlightCount() < this.#inFlightMax &&
      bytes <= this.#recordPayloadMax
    ) {
      const at = this.#producer.reserve(bytes);
      if (at >= 0) {
        encode(this.#ring.u8, at, kind, partition, key, value, entries, part);
        this.#producer.publish();
        this.#lastSeq = (this.#lastSeq + 1) | 0;
        this.#resolvers.push(this.#capturedResolve);
        this.#rejecters.push(this.#capturedReject);
        this.#afterPublish();
        return promise;
      }
    }
    const encoded = new Uint8Array(bytes);
    encode(encoded, 0, kind, partition, key, value, entries, part);
    this.#backlog.push({
      encoded,
      sentBytes: 0,
      resolve: this.#capturedResolve,
      reject: this.#capturedReject,
    });
    this.#sendBacklog();
    this.#afterPublish();
    return promise;
  }

  #inFlightCount(): number {
    return this.#resolvers.length - this.#head;
  }

  #afterPublish(): void {
    this.#ringDoorbell();
    this.#waitForCompletion();
    if (this.#backlog.length > 0) this.#waitForSpace();
  }

  /**
   * Wakes the owner if it sleeps: at the first write of a tick, so it starts applying while the caller
   * is still writing, and again at the end of the tick, for whatever it has not seen yet.
   */
  #ringDoorbell(): void {
    if (this.#doorbellThisTick) return;
    this.#doorbellThisTick = true;
    this.#notifyOwner();
    queueMicrotask(() => {
      this.#doorbellThisTick = false;
      this.#notifyOwner();
    });
  }

  #notifyOwner(): void {
    const control = this.#control;
    Atomics.add(control, kWorkerDoorbell, 1);
    if (Atomics.load(control, kWorkerSleeping) !== 0) Atomics.notify(control, kWorkerDoorbell);
  }

  /**
   * Sends backlogged operations in order while the ring has room, and rings the doorbell if anything
   * was published (a fragment of a large operation counts: the owner must consume it to make room).
   */
  #sendBacklog(): void {
    const backlog = this.#backlog;
    const writeBefore = Atomics.load(this.#ring.i32, kRingWriteOffset);
    let sent = 0;
    while (sent < backlog.length && this.#inFlightCount() < this.#inFlightMax) {
      const item = backlog[sent]!;
      if (item.encoded.length <= this.#recordPayloadMax) {
        const at = this.#producer.reserve(item.encoded.length);
        if (at < 0) break;
        this.#ring.u8.set(item.encoded, at);
        this.#producer.publish();
      } else {
        item.sentBytes = this.#producer.sendFragments(item.encoded, item.sentBytes);
        if (item.sentBytes < item.encoded.length) break;
      }
      this.#lastSeq = (this.#lastSeq + 1) | 0;
      this.#resolvers.push(item.resolve);
      this.#rejecters.push(item.reject);
      sent++;
    }
    if (sent > 0) backlog.splice(0, sent);
    if (Atomics.load(this.#ring.i32, kRingWriteOffset) !== writeBefore) this.#ringDoorbell();
  }

  /**
   * Waits for the owner to complete more operations. If it already completed some since they were
   * settled, handles them now: waiting for the word to change from its current value would then wait
   * for a completion that may never come.
   */
  #waitForCompletion(): void {
    if (this.#waitingForCompletion || this.#inFlightCount() === 0) return;
    this.#waitingForCompletion = true;
    const completed = this.#ring.completedSeq();
    if (((completed - this.#headSeq) | 0) >= 0) {
      queueMicrotask(this.#onCompletion);
      return;
    }
    const wait = Atomics.waitAsync(this.#ring.i32, kRingCompletedSeq, completed);
    if (wait.async) void wait.value.then(this.#onCompletion);
    else queueMicrotask(this.#onCompletion);
  }

  /**
   * Waits for the owner to free ring space. The read offset is sampled before one more attempt to
   * send, so space freed after that attempt has changed the word and ends the wait at once.
   */
  #waitForSpace(): void {
    if (this.#waitingForSpace) return;
    const seen = Atomics.load(this.#ring.i32, kRingReadOffset);
    this.#sendBacklog();
    // What was just sent (the last fragments of a large operation, say) needs a completion wait.
    this.#waitForCompletion();
    if (this.#backlog.length === 0) return;
    this.#waitingForSpace = true;
    const wait = Atomics.waitAsync(this.#ring.i32, kRingReadOffset, seen);
    if (wait.async) void wait.value.then(this.#onSpace);
    else queueMicrotask(this.#onSpace);
  }

  readonly #onSpace = (): void => {
    this.#waitingForSpace = false;
    if (this.#failure !== null) return;
    this.#checkWorkerAlive();
    if (this.#failure !== null) return;
    this.#sendBacklog();
    if (this.#backlog.length > 0) this.#waitForSpace();
    this.#waitForCompletion();
  };

  /** Settles every operation the owner has completed, then sends more and waits again if needed. */
  readonly #onCompletion = (): void => {
    this.#waitingForCompletion = false;
    if (this.#failure !== null) return;
    const ring = this.#ring;
    const completed = ring.completedSeq();
    const settled = ((completed - this.#headSeq) | 0) + 1;
    if (settled > 0) {
      const u8 = ring.u8;
      const statusStart = ring.statusStart;
      const statusMask = ring.statusSlots - 1;
      const end = this.#head + Math.min(settled, this.#inFlightCount());
      let seq = this.#headSeq;
      for (let i = this.#head; i < end; i++) {
        const status = u8[statusStart + (seq & statusMask)]!;
        if (status === statusOk) this.#resolvers[i]!();
        else this.#rejecters[i]!(statusError(status));
        seq = (seq + 1) | 0;
      }
      this.#headSeq = seq;
      this.#head = end;
      this.#compactInFlight();
    }
    this.#checkWorkerAlive();
    if (this.#failure !== null) return;
    if (this.#backlog.length > 0) this.#sendBacklog();
    if (this.pending === 0) {
      this.#settledAll();
      return;
    }
    this.#waitForCompletion();
    if (this.#backlog.length > 0) this.#waitForSpace();
  };

  /** Drops settled entries from the front of the in-flight arrays once they dominate. */
  #compactInFlight(): void {
    const head = this.#head;
    if (head === this.#resolvers.length) {
      this.#resolvers = [];
      this.#rejecters = [];
      this.#head = 0;
    } else if (head > 1024 && head * 2 > this.#resolvers.length) {
      this.#resolvers = this.#resolvers.slice(head);
      this.#rejecters = this.#rejecters.slice(head);
      this.#head = 0;
    }
  }

  #settledAll(): void {
    this.#keepAlive.release();
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Fails everything if the owner worker has crashed or stopped. */
  #checkWorkerAlive(): void {
    const state = Atomics.load(this.#control, kWorkerState);
    if (state === workerStateCrashed) {
      this.fail(
        new LightningError('ERR_WORKER_CRASHED', 'the partition-owner worker for this key has crashed'),
      );
    } else if (state === workerStateStopped) {
      this.fail(new LightningError('ERR_CLOSED', 'the database is closed'));
    }
  }
}

function noop(): void {}

function encode(
  u8: Uint8Array,
  at: number,
  kind: number,
  partition: number,
  key: Uint8Array | null,
  value: Uint8Array | null,
  entries: BatchEntry[] | null,
  part: TransactionPart | null,
): void {
  if (part !== null) encodeTransaction(u8, at, part);
  else if (kind === operationPut) encodePut(u8, at, partition, key!, value!);
  else if (kind === operationDel) encodeDel(u8, at, partition, key!);
  else encodeBatch(u8, at, partition, entries!);
}

/** Capacity of a ring of transaction parts: they are fewer and smaller than a stream of puts. */
export const transactionRingBytes = 1 << 18;

function statusError(status: number): LightningError {
  if (status === statusConflict) {
    return new LightningError(
      'ERR_TX_CONFLICT',
      'a transaction being committed holds a key of this write, or the transaction conflicted; retry',
    );
  }
  if (status === statusPartitionFull) {
    return new LightningError(
      'ERR_PARTITION_FULL',
      "the key's partition reached partitionBytesMax; delete data or reopen with a larger partitionBytesMax",
    );
  }
  return new LightningError('ERR_INTERNAL', 'the partition owner failed to apply the write; see its log');
}
