import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { LightningError } from '../shared-memory/errors.js';
import { kRecordPayloadLength, recordBytes } from '../storage/wal/wal-format.js';
import type { ShipReply, ShipRequest } from '../workers/log-shipper.js';
import { envelopeHeaderBytes, type LogEnvelope } from './log-envelope.js';
import type { LogPublisher } from './log-publisher.js';
import { type PartitionRecords, splitByPartition } from './shipped-records.js';

/** An owner's batch waiting to be published, and where its answer goes. */
interface Waiting {
  readonly port: MessagePort;
  readonly records: Uint8Array;
}

type Envelope = Omit<LogEnvelope, 'term'>;

/**
 * The leader's publishing side, on the thread that opened the database: each owner worker ships its
 * pass's records here (workers/log-shipper.ts) and waits; every batch that arrives while a publish is
 * in flight goes into the next one, so one fenced round trip to the servers carries the group commits
 * of every owner (log-message.ts). Each partition's records become one envelope whose sequences
 * continue the partition's replication sequence: records counted, from 1, across every leader, so a
 * promoted follower continues where the log is, whatever its own LSNs. A message is kept under the
 * servers' max_payload; a partition's records too many for one are split into chained envelopes.
 *
 * The first refusal (deposed, no acknowledgement in time, the lease lost, an owner's log that could
 * not take what the stream took) stops it for good: every batch after is refused ERR_DEPOSED, and
 * `onStop` tells the database to step down.
 */
export class LeaderShipping {
  readonly #publisher: LogPublisher;
  /** Each partition's replication sequence: the last one published. */
  readonly #sequences: number[];
  readonly #messageBytesMax: number;
  readonly #isHeld: () => boolean;
  readonly #onStop: (reason: LightningError) => void;
  readonly #onPublished: (streamSequence: number, envelopes: readonly Envelope[]) => void;
  readonly #ports: MessagePort[] = [];
  readonly #ownerHasWork: (worker: number) => boolean;
  readonly #gatherMs: number;
  /** Wakes a gathering publisher when an owner's batch arrives. */
  #arrived: (() => void) | null = null;
  #queue: Waiting[] = [];
  #running = false;
  #stopped: LightningError | null = null;
  #messages = 0;
  #batches = 0;

  constructor(options: {
    publisher: LogPublisher;
    sequences: number[];
    messageBytesMax: number;
    isHeld: () => boolean;
    onStop: (reason: LightningError) => void;
    /** Told of every message the stream acknowledged, before its writers hear of it. */
    onPublished?: (streamSequence: number, envelopes: readonly Envelope[]) => void;
    /**
     * Whether owner `worker` has user writes outstanding beyond what it shipped: then its next
     * batch is coming, and the next message waits for it (briefly) to carry both.
     */
    ownerHasWork?: (worker: number) => boolean;
    /** The longest a message waits for other owners' batches: 2 ms unless told. */
    gatherMs?: number;
  }) {
    this.#publisher = options.publisher;
    this.#sequences = options.sequences;
    this.#messageBytesMax = options.messageBytesMax;
    this.#isHeld = options.isHeld;
    this.#onStop = options.onStop;
    this.#onPublished = options.onPublished ?? (() => {});
    this.#ownerHasWork = options.ownerHasWork ?? (() => false);
    this.#gatherMs = options.gatherMs ?? gatherMsDefault;
  }

  /** One port per owner worker, to transfer to it (WorkerPool.replicate). */
  ports(workers: number): MessagePort[] {
    return Array.from({ length: workers }, () => {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (request: ShipRequest) => this.#receive(port1, request));
      port1.unref();
      this.#ports.push(port1);
      return port2;
    });
  }

  /** The stream sequence of the last message published: a write acknowledged before now is at or below it. */
  get streamSequence(): number {
    return this.#publisher.lastSequence;
  }

  get term(): number {
    return this.#publisher.term;
  }

  get sequences(): readonly number[] {
    return this.#sequences;
  }

  get stopped(): LightningError | null {
    return this.#stopped;
  }

  get counts(): { messages: number; batches: number; retries: number } {
    return { messages: this.#messages, batches: this.#batches, retries: this.#publisher.retries };
  }

  /** Stops publishing: batches already waiting and any that come later are refused with `reason`. */
  stop(reason: LightningError): void {
    if (this.#stopped !== null) return;
    this.#stopped = reason;
    for (const waiting of this.#queue.splice(0)) reply(waiting.port, refusal(reason));
    this.#onStop(reason);
  }

  /** Closes the owners' ports (after the owners stopped shipping). */
  close(): void {
    for (const port of this.#ports) port.close();
  }

  #receive(port: MessagePort, request: ShipRequest): void {
    if (request.kind === 'diverged') {
      this.stop(new LightningError('ERR_DEPOSED', `stepping down: ${request.message}`));
      return;
    }
    if (this.#stopped !== null) {
      reply(port, refusal(this.#stopped));
      return;
    }
    this.#queue.push({ port, records: request.records });
    this.#arrived?.();
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0 && this.#stopped === null) {
        await this.#gather();
        const batch = this.#queue;
        this.#queue = [];
        await this.#publish(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * Waits, at most `gatherMs`, for the batches of the other owners that have writes outstanding:
   * their passes alternate otherwise (one publishes while the other syncs), every message carrying
   * one owner's batch, and every message costs the servers, the leader and the followers the same
   * whatever it carries.
   */
  async #gather(): Promise<void> {
    const started = performance.now();
    for (;;) {
      const queued = new Set(this.#queue.map((waiting) => waiting.port));
      const coming = this.#ports.some((port, worker) => !queued.has(port) && this.#ownerHasWork(worker));
      if (!coming || this.#stopped !== null) return;
      const leftMs = this.#gatherMs - (performance.now() - started);
      if (leftMs <= 0) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#arrived = null;
          resolve();
        };
        const timer = setTimeout(done, leftMs);
        this.#arrived = done;
      });
    }
  }

  async #publish(waitingBatch: Waiting[]): Promise<void> {
    let batch = waitingBatch;
    if (!this.#isHeld()) {
      this.#queue.unshift(...batch);
      this.stop(new LightningError('ERR_DEPOSED', 'the leader lease was not renewed in time'));
      return;
    }
    // A record too large for any message is refused alone: the others of the batch go on. (The
    // owners refuse such writes before logging them; this guards the rest. Only a batch larger than
    // a message can hold one, so smaller batches are not walked.)
    const room = this.#messageBytesMax - envelopeHeaderBytes;
    batch = batch.filter((waiting) => {
      const tooLarge = waiting.records.length > room && this.#largestRecord(waiting.records) > room;
      if (tooLarge) {
        reply(waiting.port, {
          ok: false,
          code: 'ERR_REPLICATION',
          message: `a log record does not fit the servers' max_payload (${this.#messageBytesMax} bytes)`,
        });
      }
      return !tooLarge;
    });
    if (batch.length === 0) return;
    const sequences = this.#sequences.slice();
    const messages: Envelope[][] = [[]];
    let messageBytes = 0;
    for (const waiting of batch) {
      for (const part of splitByPartition(waiting.records)) {
        for (const piece of this.#pieces(part)) {
          const previousSequence = sequences[piece.partition]!;
          sequences[piece.partition] = previousSequence + piece.count;
          const bytes = envelopeHeaderBytes + piece.bytes.length;
          if (messageBytes + bytes > this.#messageBytesMax && messages[messages.length - 1]!.length > 0) {
            messages.push([]);
            messageBytes = 0;
          }
          messages[messages.length - 1]!.push({
            partition: piece.partition,
            previousSequence,
            firstSequence: previousSequence + 1,
            lastSequence: previousSequence + piece.count,
            payload: piece.bytes,
          });
          messageBytes += bytes;
        }
      }
    }
    let published = 0;
    try {
      for (const envelopes of messages) {
        if (envelopes.length > 0) {
          const receipt = await this.#publisher.publishMessage(envelopes);
          this.#onPublished(receipt.streamSequence, envelopes);
        }
        this.#messages++;
        published++;
      }
    } catch (error) {
      // Deposed before any message of the batch was stored: the log has none of it. Once one was
      // stored (a batch split over several messages), the log holds part of it: its outcome is the
      // new leader's to say, which is what ERR_REPLICATION tells the writers.
      const reason =
        error instanceof LightningError && error.code === 'ERR_DEPOSED' && published === 0
          ? error
          : new LightningError(
              'ERR_REPLICATION',
              published === 0
                ? `publishing to the replication log: ${String(error)}`
                : `publishing to the replication log: ${published} of the ${messages.length} messages ` +
                    `carrying these writes reached it before: ${String(error)}`,
              { cause: error },
            );
      // Some of the batch may be in the log: its writers get the refusal, and this leader steps
      // down, so that it learns from the log (as a follower) what it holds.
      for (const waiting of batch) reply(waiting.port, refusal(reason));
      this.stop(reason);
      return;
    }
    for (let p = 0; p < sequences.length; p++) this.#sequences[p] = sequences[p]!;
    this.#batches += batch.length;
    for (const waiting of batch) reply(waiting.port, { ok: true });
  }

  #largestRecord(records: Uint8Array): number {
    const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
    let largest = 0;
    for (let offset = 0; offset < records.length; offset += recordSize(view, offset)) {
      largest = Math.max(largest, recordSize(view, offset));
    }
    return largest;
  }

  /**
   * A partition's records as envelopes that fit a message: one, unless they are too many bytes, then
   * split at record boundaries. A single record larger than a message cannot be published.
   */
  #pieces(part: PartitionRecords): PartitionRecords[] {
    const room = this.#messageBytesMax - envelopeHeaderBytes;
    if (part.bytes.length <= room) return [part];
    const pieces: PartitionRecords[] = [];
    const view = new DataView(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength);
    let start = 0;
    let offset = 0;
    let count = 0;
    while (offset < part.bytes.length) {
      const size = recordSize(view, offset);
      if (offset + size - start > room) {
        pieces.push({ partition: part.partition, count, bytes: part.bytes.subarray(start, offset) });
        start = offset;
        count = 0;
      }
      offset += size;
      count++;
    }
    pieces.push({ partition: part.partition, count, bytes: part.bytes.subarray(start, offset) });
    return pieces;
  }
}

/**
 * The longest a message waits for another owner's batch: about one owner's log write and sync plus
 * the turn of its writers, the time in which an owner that has work ships again.
 */
const gatherMsDefault = 2;

function recordSize(view: DataView, offset: number): number {
  return recordBytes(view.getUint32(offset + kRecordPayloadLength, true));
}

function refusal(reason: LightningError): ShipReply {
  const code = reason.code === 'ERR_DEPOSED' ? 'ERR_DEPOSED' : 'ERR_REPLICATION';
  return { ok: false, code, message: reason.message };
}

function reply(port: MessagePort, answer: ShipReply): void {
  port.postMessage(answer);
}
