import type { JetStreamClient } from '@nats-io/jetstream';
import { LightningError } from '../shared-memory/errors.js';
import { type BatchEntry, encodedEntries, operationPut } from '../shared-memory/ring/operation-codec.js';
import { recordTypeDecision, recordTypePrepare } from '../storage/wal/wal-format.js';
import { decisionCommitted, recordTransactionId } from '../workers/transaction-records.js';
import type { LogEnvelope } from './log-envelope.js';
import { type LogEntry, readLog } from './log-reader.js';
import type { LogStream } from './log-stream.js';
import { encodePosition, isReplicaKey, type ReplicaPosition } from './replica-position.js';
import { readShippedRecords } from './shipped-records.js';

/** What the applier writes through: the database's own write path, on a thread slot of its own. */
export interface ApplyTarget {
  readonly partitions: number;
  readonly positionKeys: readonly Uint8Array[];
  /** Each partition's position, as its partition holds it (read once, at start). */
  readonly positions: ReplicaPosition[];
  /** The partition a key hashes to here: must be the leader's partition of it. */
  partitionOf(key: Uint8Array): number;
  /** Applies `entries` to `partition` as one atomic batch, logged and synced like any write. */
  apply(partition: number, entries: BatchEntry[]): Promise<void>;
}

/** How many envelopes may be in flight to the owners before the reading waits. */
const inFlightMax = 512;
/** Lag samples kept for stats (the latest ones). */
const lagSamplesMax = 1024;

/** An envelope handed to the owners, in stream order. */
interface InFlight {
  readonly streamSequence: number;
  readonly lastOfMessage: boolean;
  readonly storedAtMs: number;
  done: boolean;
}

/**
 * A follower's apply loop: reads the replication log from the oldest position its partitions hold,
 * skips what each partition has, and writes every other envelope's records to its partition as one
 * atomic batch together with the partition's new position (replica-position.ts), through the same
 * write path as any write: the owner logs and syncs it before it becomes visible, so what a follower
 * shows survives its crash, and its position with it. Operations are applied as logged; a prepared
 * transaction's writes are held in the position until a commit decision for it arrives (on any of its
 * partitions: then they are applied on every partition holding them) or a new term begins (the new
 * leader aborted every transaction left undecided; see replication-role.ts).
 */
export class ReplicaApplier {
  readonly #target: ApplyTarget;
  readonly #abort = new AbortController();
  readonly #inFlight: InFlight[] = [];
  #inFlightWaiter: (() => void) | null = null;
  #applied: number;
  #failure: LightningError | null = null;
  readonly #waiters = new Set<{ sequence: number; settle: (error: LightningError | null) => void }>();
  #done: Promise<void> = Promise.resolve();
  #pending = 0;
  readonly #lags: number[] = [];
  #envelopes = 0;

  constructor(js: JetStreamClient, stream: LogStream, target: ApplyTarget) {
    this.#target = target;
    const from = Math.min(...target.positions.map((position) => position.streamSequence));
    this.#applied = from;
    const reading = readLog(js, stream, {
      afterStreamSequence: from,
      partitions: new Map(target.positions.map((position, partition) => [partition, position.sequence])),
      skipApplied: true,
      signal: this.#abort.signal,
      onPassed: (streamSequence) => this.#passed(streamSequence),
    });
    this.#done = this.#run(reading.entries).catch((error: unknown) => {
      this.#fail(
        error instanceof LightningError
          ? error
          : new LightningError('ERR_REPLICATION', `applying the replication log: ${String(error)}`, {
              cause: error,
            }),
      );
    });
  }

  /** Each partition's position as applied so far (current once `stop()` resolved). */
  get positions(): ReplicaPosition[] {
    return this.#target.positions;
  }

  /** Every message up to this stream sequence is applied (and durable) here. */
  get appliedSequence(): number {
    return this.#applied;
  }

  /** Why applying stopped, or null while it goes on. */
  get failure(): LightningError | null {
    return this.#failure;
  }

  /** Messages the stream held beyond the last one delivered, as of that delivery. */
  get pendingMessages(): number {
    return this.#pending;
  }

  get envelopesApplied(): number {
    return this.#envelopes;
  }

  /** Milliseconds from the stream storing a message to its records being visible here (latest samples). */
  lagSamples(): readonly number[] {
    return this.#lags;
  }

  /**
   * Resolves once every message up to `streamSequence` is applied here; rejects ERR_TIMEOUT after
   * `timeoutMs`, or with the applier's failure.
   */
  waitFor(streamSequence: number, timeoutMs: number): Promise<void> {
    if (this.#applied >= streamSequence) return Promise.resolve();
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const waiter = {
        sequence: streamSequence,
        settle: (error: LightningError | null) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          if (error === null) resolve();
          else reject(error);
        },
      };
      const timer = setTimeout(() => {
        waiter.settle(
          new LightningError(
            'ERR_REPLICATION',
            `this replica has applied the replication log up to ${this.#applied}, not ${streamSequence}, after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Stops reading; resolves once everything handed to the owners is applied. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#inFlightWaiter?.();
    await this.#done;
  }

  async #run(entries: AsyncIterable<LogEntry>): Promise<void> {
    const applies: Promise<void>[] = [];
    try {
      for await (const entry of entries) {
        if (this.#failure !== null) break;
        this.#pending = entry.pending;
        applies.push(this.#applyEntry(entry));
        if (applies.length >= inFlightMax) await Promise.all(applies.splice(0, inFlightMax / 2));
        while (this.#inFlight.length >= inFlightMax && this.#failure === null) {
          await new Promise<void>((resolve) => {
            this.#inFlightWaiter = resolve;
          });
        }
      }
    } finally {
      await Promise.all(applies);
    }
  }

  #applyEntry(entry: LogEntry): Promise<void> {
    const { envelope, streamSequence } = entry;
    const target = this.#target;
    const partition = envelope.partition;
    if (partition >= target.partitions) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `the replication log has partition ${partition}; this database has ${target.partitions}: a replica must have the leader's partition count`,
      );
    }
    const where = `stream sequence ${streamSequence}, partition ${partition}`;
    const records = readShippedRecords(
      envelope.payload,
      partition,
      envelope.lastSequence - envelope.firstSequence + 1,
      where,
    );
    const position = target.positions[partition]!;
    if (envelope.term > position.term) dropEarlierTerms(position, envelope.term);
    const batches = new Map<number, BatchEntry[]>([[partition, []]]);
    const entries = batches.get(partition)!;
    for (const record of records) {
      if (record.type === recordTypePrepare) {
        position.prepared.set(recordTransactionId(record.payload), {
          term: envelope.term,
          writes: record.payload.slice(8),
        });
      } else if (record.type === recordTypeDecision) {
        if (decisionCommitted(record.payload)) this.#release(recordTransactionId(record.payload), batches);
        else position.prepared.delete(recordTransactionId(record.payload));
      } else {
        addWrites(entries, record.payload);
      }
    }
    position.sequence = envelope.lastSequence;
    position.streamSequence = streamSequence;
    position.term = envelope.term;
    this.#checkPartition(entries, partition, where);
    const tracked: InFlight = {
      streamSequence,
      lastOfMessage: entry.lastOfMessage,
      storedAtMs: entry.storedAtMs,
      done: false,
    };
    this.#inFlight.push(tracked);
    const writes = [...batches].map(([p, batch]) => {
      batch.push({
        kind: operationPut,
        key: target.positionKeys[p]!,
        value: encodePosition(target.positions[p]!),
      });
      return target.apply(p, batch);
    });
    return Promise.all(writes).then(
      () => {
        tracked.done = true;
        this.#envelopes++;
        this.#advance();
      },
      (error: unknown) => this.#fail(asLightningError(error, where)),
    );
  }

  /** A commit decision: the transaction's writes held on every partition are applied now. */
  #release(transactionId: number, batches: Map<number, BatchEntry[]>): void {
    this.#target.positions.forEach((position, p) => {
      const held = position.prepared.get(transactionId);
      if (held === undefined) return;
      position.prepared.delete(transactionId);
      let batch = batches.get(p);
      if (batch === undefined) {
        batch = [];
        batches.set(p, batch);
      }
      addWrites(batch, held.writes);
    });
  }

  #checkPartition(entries: readonly BatchEntry[], partition: number, where: string): void {
    const first = entries[0];
    if (first === undefined) return;
    const here = this.#target.partitionOf(first.key);
    if (here !== partition) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `replicated records at ${where}: a key of partition ${partition} on the leader hashes to partition ${here} here; ` +
          "a replica must have the leader's partition count and hash",
      );
    }
  }

  #passed(streamSequence: number): void {
    this.#inFlight.push({ streamSequence, lastOfMessage: true, storedAtMs: Number.NaN, done: true });
    this.#advance();
  }

  /** Moves the applied position over every finished envelope at the front, in stream order. */
  #advance(): void {
    const now = Date.now();
    while (this.#inFlight.length > 0 && this.#inFlight[0]!.done) {
      const front = this.#inFlight.shift()!;
      if (!front.lastOfMessage) continue;
      this.#applied = Math.max(this.#applied, front.streamSequence);
      if (!Number.isNaN(front.storedAtMs)) {
        this.#lags.push(now - front.storedAtMs);
        if (this.#lags.length > lagSamplesMax) this.#lags.shift();
      }
    }
    for (const waiter of this.#waiters) if (waiter.sequence <= this.#applied) waiter.settle(null);
    const wake = this.#inFlightWaiter;
    this.#inFlightWaiter = null;
    wake?.();
  }

  #fail(error: LightningError): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    console.error('lightning-db replica: applying the replication log stopped', error);
    for (const waiter of this.#waiters) waiter.settle(error);
    this.#abort.abort();
    this.#inFlightWaiter?.();
  }
}

/** The writes of an operation record (a put, a delete or a batch), replication keys left out. */
function addWrites(into: BatchEntry[], operation: Uint8Array): void {
  for (const entry of encodedEntries(operation, 0, operation.length)) {
    if (isReplicaKey(entry.key)) continue;
    into.push({
      kind: entry.kind,
      key: entry.key.slice(),
      value: entry.value === null ? null : entry.value.slice(),
    });
  }
}

/** A new leader aborted every transaction an earlier term left undecided. */
function dropEarlierTerms(position: ReplicaPosition, term: number): void {
  for (const [transactionId, held] of position.prepared)
    if (held.term < term) position.prepared.delete(transactionId);
}

function asLightningError(error: unknown, where: string): LightningError {
  if (error instanceof LightningError) return error;
  return new LightningError('ERR_REPLICATION', `applying ${where}: ${String(error)}`, { cause: error });
}

export type { LogEnvelope };
