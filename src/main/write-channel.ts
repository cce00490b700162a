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
  statusPartitionFull,
} from '../shared-memory/ring/ring-layout.js';
import {
  encodeTransaction,
  type TransactionPart,
  transactionEncodedBytes,
} from '../shared-memory/ring/transaction-codec.js';
import { recordPayloadBytesMax } from '../storage/wal/index.js';
import type { KeepAlive } from './keep-alive.js';
import { TurnPromises } from './turn-promises.js';

/**
 * One thread's path to one partition-owner worker: appends encoded operations to this thread's
 * command ring for that worker, rings the worker's doorbell, and settles the operations' promises
 * when the owner publishes their completion. Puts and deletes issued in one turn share one promise
 * (see TurnPromises): the turn ends at the channel's end-of-turn microtask, queued by the turn's
 * first write.
 *
 * Operations that do not fit the ring now (it is full, too many are in flight, or one is larger than
 * a record) wait in a backlog, in order, and are sent as the owner frees space: a full ring slows
 * callers down, it never drops or throws.
 *
 * The write path allocates nothing per put or delete but one promise per turn: operations in flight
 * have consecutive sequence numbers from `#headSeq`, so a count is all they need here; their
 * statuses are in the ring.
 */
export class WriteChannel {
  readonly #ring: CommandRing;
  readonly #producer: RingProducer;
  readonly #control: Int32Array;
  readonly #keepAlive: KeepAlive;
  readonly #inFlightMax: number;
  readonly #recordPayloadMax: number;
  /** Sequence number of the oldest operation in flight. */
  #headSeq: number;
  /** Operations sent to the ring and not yet settled. */
  #inFlight = 0;
  readonly #promises: TurnPromises;
  /** Encoded operations waiting for ring space, in order; the first may be partly sent. */
  #backlog: Uint8Array[] = [];
  #backlogSentBytes = 0;
  /** True from a turn's first write until its end-of-turn microtask runs. */
  #turnOpen = false;
  #waitingForCompletion = false;
  #waitingForSpace = false;
  /** Set for good: the owner died or the database closed. Every write, sent or new, gets it. */
  #failure: LightningError | null = null;
  /**
   * A refusal of new writes that lifts once `stillRefused()` says so (a database opened on a full
   * disk, a replica, a deposed leader). Writes already sent settle as the owner completes them: a
   * refusal must never stop the completions from being read, or they would never settle.
   */
  #refusal: { readonly error: LightningError; readonly stillRefused: () => boolean } | null = null;
  #drainWaiters: (() => void)[] = [];

  /** `logDirectory`: the owners' log directory, named by the errors of writes the disk refused. */
  constructor(ring: CommandRing, control: Int32Array, keepAlive: KeepAlive, logDirectory: string) {
    this.#promises = new TurnPromises(logDirectory);
    this.#ring = ring;
    this.#producer = new RingProducer(ring);
    this.#control = control;
    this.#keepAlive = keepAlive;
    this.#inFlightMax = ring.statusSlots - 1;
    this.#recordPayloadMax = ring.recordBytesMax - 16;
    this.#headSeq = (ring.completedSeq() + 1) | 0;
  }

  /** Operations sent or waiting whose promise has not settled. */
  get pending(): number {
    return this.#inFlight + this.#backlog.length;
  }

  /** Sends a put; its promise is shared with the other puts and deletes of this turn. */
  put(partition: number, key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.#send(putEncodedBytes(key, value), operationPut, partition, key, value, null, null);
  }

  /** Sends a delete; its promise is shared with the other puts and deletes of this turn. */
  del(partition: number, key: Uint8Array): Promise<void> {
    return this.#send(delEncodedBytes(key), operationDel, partition, key, null, null, null);
  }

  /** Sends an atomic batch of one partition, with a promise of its own. */
  batch(partition: number, entries: BatchEntry[]): Promise<void> {
    return this.#send(batchEncodedBytes(entries), operationBatch, partition, null, null, entries, null);
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
    this.#failure ??= error;
    const hadPending = this.pending > 0;
    this.#inFlight = 0;
    this.#backlog = [];
    this.#backlogSentBytes = 0;
    this.#promises.failAll(error);
    if (hadPending) this.#settledAll();
  }

  /**
   * Refuses every write with `refusal` for as long as `stillRefused()` says so, asked again at each
   * write. Replaces an earlier refusal; a failure for good (fail()) comes first. Writes already sent
   * are not affected: they settle as their owner completes them.
   */
  refuseWhile(refusal: LightningError, stillRefused: () => boolean): void {
    this.#refusal = { error: refusal, stillRefused };
  }

  #send(
    bytes: number,
    kind: number,
    partition: number,
    key: Uint8Array | null,
    value: Uint8Array | null,
    entries: BatchEntry[] | null,
    part: TransactionPart | null,
  ): Promise<void> {
    if (this.#refusal !== null && !this.#refusal.stillRefused()) this.#refusal = null;
    if (this.#failure === null) this.#checkWorkerAlive();
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#refusal !== null) return Promise.reject(this.#refusal.error);
    if (bytes > operationBytesMax) return Promise.reject(tooLargeForTheLog(bytes, part !== null));
    if (this.pending === 0) this.#keepAlive.hold();
    // Puts and deletes share their turn's promise; batches and transaction parts need their own.
    const shared = entries === null && part === null;
    const promise = shared ? this.#promises.join() : this.#promises.alone();
    if (this.#backlog.length === 0 && this.#inFlight < this.#inFlightMax && bytes <= this.#recordPayloadMax) {
      const at = this.#producer.reserve(bytes);
      if (at >= 0) {
        encode(this.#ring.u8, at, kind, partition, key, value, entries, part);
        this.#producer.publish();
        this.#inFlight++;
        this.#afterPublish();
        return promise;
      }
    }
    const encoded = new Uint8Array(bytes);
    encode(encoded, 0, kind, partition, key, value, entries, part);
    this.#backlog.push(encoded);
    this.#sendBacklog();
    this.#afterPublish();
    return promise;
  }

  #afterPublish(): void {
    this.#ringDoorbell();
    this.#waitForCompletion();
    if (this.#backlog.length > 0) this.#waitForSpace();
  }

  /**
   * Wakes the owner if it sleeps: at the first write of a turn, so it starts applying while the caller
   * is still writing, and again at the end of the turn, for whatever it has not seen yet. The end of
   * the turn also closes the turn's shared promise: every write goes through here, so while a group
   * is open, the microtask that closes it is queued.
   */
  #ringDoorbell(): void {
    if (this.#turnOpen) return;
    this.#turnOpen = true;
    this.#notifyOwner();
    queueMicrotask(this.#endTurn);
  }

  readonly #endTurn = (): void => {
    this.#turnOpen = false;
    this.#promises.closeTurn();
    this.#notifyOwner();
  };

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
    while (sent < backlog.length && this.#inFlight < this.#inFlightMax) {
      const encoded = backlog[sent]!;
      if (encoded.length <= this.#recordPayloadMax) {
        const at = this.#producer.reserve(encoded.length);
        if (at < 0) break;
        this.#ring.u8.set(encoded, at);
        this.#producer.publish();
      } else {
        this.#backlogSentBytes = this.#producer.sendFragments(encoded, this.#backlogSentBytes);
        if (this.#backlogSentBytes < encoded.length) break;
        this.#backlogSentBytes = 0;
      }
      this.#inFlight++;
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
    if (this.#waitingForCompletion || this.#inFlight === 0) return;
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

  /**
   * Settles every operation the owner has completed, then sends more and waits again if needed. The
   * current turn's group is closed first: a group is settled only once no operation can join it.
   */
  readonly #onCompletion = (): void => {
    this.#waitingForCompletion = false;
    if (this.#failure !== null) return;
    this.#settleCompleted();
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

  /** Settles every operation the owner has published as completed, closing the current turn's group. */
  #settleCompleted(): void {
    this.#promises.closeTurn();
    const ring = this.#ring;
    const completed = ring.completedSeq();
    const settled = Math.min(((completed - this.#headSeq) | 0) + 1, this.#inFlight);
    if (settled <= 0) return;
    const u8 = ring.u8;
    const statusStart = ring.statusStart;
    const statusMask = ring.statusSlots - 1;
    const promises = this.#promises;
    let seq = this.#headSeq;
    for (let i = 0; i < settled; i++) {
      const status = u8[statusStart + (seq & statusMask)]!;
      promises.completed(status, status === statusPartitionFull ? partitionFullDetail(ring) : '');
      seq = (seq + 1) | 0;
    }
    this.#headSeq = seq;
    this.#inFlight -= settled;
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
      // What the owner completed before it died settles with its own outcome: the crash may be
      // noticed here before the completion wait has run.
      this.#settleCompleted();
      this.fail(
        new LightningError('ERR_WORKER_CRASHED', 'the partition-owner worker for this key has crashed'),
      );
    } else if (state === workerStateStopped) {
      this.fail(new LightningError('ERR_CLOSED', 'the database is closed'));
    }
  }
}

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

/**
 * Largest encoded operation: the owner logs a batch, or a transaction's writes in one partition, as
 * one write-ahead log record (the encoding of a transaction part is larger than its record, so the
 * same bound covers both).
 */
export const operationBytesMax = recordPayloadBytesMax;

function tooLargeForTheLog(bytes: number, transaction: boolean): LightningError {
  const what = transaction ? "a transaction's writes and reads in one partition" : 'a batch in one partition';
  return new LightningError(
    'ERR_BAD_ARGUMENT',
    `${what} must encode to at most ${operationBytesMax} bytes (one write-ahead log record; each entry ` +
      `takes 7 bytes plus its key and value), this one takes ${bytes}: split it into smaller ones`,
  );
}

/** The owner's numbers for a write it refused as full, as a clause of the error's message. */
function partitionFullDetail(ring: CommandRing): string {
  const full = ring.lastPartitionFull();
  const bytes = (pages: number): string => (pages * full.pageSizeBytes).toLocaleString('en-US');
  if (full.pool === true && full.rewrite === true) {
    // The put itself fits: what would not is deleting or overwriting its value later, so the value is
    // refused now rather than kept where nothing could remove it.
    return (
      `: deleting or overwriting its value later could change up to ${full.neededPages} pages ` +
      `(${bytes(full.neededPages)} bytes), and the partition's buffer pool can take ${full.availablePages} changed ` +
      'pages at once (its share of memoryMaxBytes); store a smaller value or reopen with a larger memoryMaxBytes'
    );
  }
  if (full.pool === true) {
    // Splitting helps only a write of several entries; a single one needs a larger pool.
    const split = full.entries === 1 ? '' : 'split it into smaller writes or ';
    return (
      `: it could change up to ${full.neededPages} pages (${bytes(full.neededPages)} bytes), and the partition's ` +
      `buffer pool can take ${full.availablePages} changed pages at once (its share of memoryMaxBytes); ` +
      `${split}reopen with a larger memoryMaxBytes`
    );
  }
  return (
    `: it could need up to ${bytes(full.neededPages)} bytes (${full.neededPages} pages), and ` +
    `${bytes(full.availablePages)} bytes of its ${full.pagesMax * full.pageSizeBytes} (partitionBytesMax) are left; ` +
    'delete data or reopen with a larger partitionBytesMax'
  );
}

/** Capacity of a ring of transaction parts: they are fewer and smaller than a stream of puts. */
export const transactionRingBytes = 1 << 18;
