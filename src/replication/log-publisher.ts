import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import { assert } from '../shared-memory/assert.js';
import { LightningError } from '../shared-memory/errors.js';
import { encodeLogEnvelope, envelopeMessageId, type LogEnvelope } from './log-envelope.js';
import { encodeLogMessage, logMessageId } from './log-message.js';
import type { LogStream } from './log-stream.js';
import {
  isClosedConnection,
  isRefusedByClient,
  isWrongLastSequence,
  replicationError,
} from './nats-errors.js';
import { publishAttemptMsDefault, publishRetryMsDefault } from './replication-limits.js';

/**
 * The leader's side of the replication log: publishes envelopes one after another, each fenced by
 * the stream sequence the leader believes is the log's last.
 *
 * Fencing: every publish carries `expect.lastSubjectSequence`, the sequence of this publisher's
 * previous message (or, for its first, of the end of the log it took over). The stream stores the
 * message only if nothing else was stored on the subject since; so once a new leader has published,
 * every later publish of the old one is rejected, and is reported as ERR_DEPOSED. The publisher
 * then refuses everything: a deposed leader must step down, not retry.
 *
 * Retries: a publish whose acknowledgement does not come (the stream's leader died, an election is
 * under way, the connection is moving to another server) is sent again with the same message id
 * and the same expectation, until it is acknowledged or `retryMs` has passed. If an earlier attempt
 * was stored, the stream answers "duplicate" with that attempt's sequence (it checks ids before
 * expectations), so a batch is never stored twice.
 *
 * One publish at a time: each needs the sequence the previous one got. Many records per publish is
 * what makes that fast (the group commit's batches).
 */
export interface LogPublisherOptions {
  /** The leader's lease term: written into every envelope and every message id. */
  term: number;
  /**
   * The log's last sequence as this leader knows it (a promoted follower: the position it applied
   * up to). Read from the stream when not given. A publisher that is behind is deposed at its first
   * publish, which is what a leader that missed someone else's writes must be.
   */
  lastSequence?: number;
  /** Give up (ERR_REPLICATION) when a publish is not acknowledged after this long: 60 s unless told. */
  retryMs?: number;
  /** How long each attempt waits for the acknowledgement: 5 s unless told. */
  attemptMs?: number;
}

/** What a publish did. */
export interface PublishReceipt {
  /** Where the envelope is in the stream: what a follower will have applied once it has it. */
  readonly streamSequence: number;
  /** Attempts it took (1 when the first was acknowledged). */
  readonly attempts: number;
  /** The stream had it already from an earlier attempt whose acknowledgement was lost. */
  readonly duplicate: boolean;
}

type Envelope = Omit<LogEnvelope, 'term'>;

export class LogPublisher {
  readonly stream: LogStream;
  readonly term: number;
  readonly #js: JetStreamClient;
  readonly #retryMs: number;
  readonly #attemptMs: number;
  #lastSequence: number;
  #deposed: LightningError | undefined;
  /** The publish in progress: the next one starts after it settles. */
  #tail: Promise<unknown> = Promise.resolve();
  #retries = 0;

  private constructor(
    js: JetStreamClient,
    stream: LogStream,
    options: LogPublisherOptions,
    lastSequence: number,
  ) {
    this.#js = js;
    this.stream = stream;
    this.term = options.term;
    this.#lastSequence = lastSequence;
    this.#retryMs = options.retryMs ?? publishRetryMsDefault;
    this.#attemptMs = options.attemptMs ?? publishAttemptMsDefault;
  }

  /** A publisher for `stream`, fenced from the log's end (read now unless `options.lastSequence`). */
  static async start(
    js: JetStreamClient,
    jsm: JetStreamManager,
    stream: LogStream,
    options: LogPublisherOptions,
  ): Promise<LogPublisher> {
    const { term } = options;
    if (!Number.isSafeInteger(term) || term < 1) {
      throw new LightningError('ERR_BAD_ARGUMENT', `term must be a safe integer >= 1, got ${term}`);
    }
    let lastSequence = options.lastSequence;
    if (lastSequence === undefined) {
      lastSequence = await readLastSequence(jsm, stream);
    } else if (!Number.isSafeInteger(lastSequence) || lastSequence < 0) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `lastSequence must be a safe integer >= 0, got ${lastSequence}`,
      );
    }
    return new LogPublisher(js, stream, options, lastSequence);
  }

  /** The stream sequence of this publisher's last acknowledged message (or of the log it took over). */
  get lastSequence(): number {
    return this.#lastSequence;
  }

  /** Why this publisher was deposed (ERR_DEPOSED), or undefined. */
  get deposed(): LightningError | undefined {
    return this.#deposed;
  }

  /** Attempts beyond the first, over every publish so far. */
  get retries(): number {
    return this.#retries;
  }

  /**
   * Publishes one batch under this publisher's term. Resolves once the stream has stored it on a
   * majority of its replicas; rejects ERR_DEPOSED if the log moved on without us (then every later
   * publish rejects the same), ERR_REPLICATION if no acknowledgement came within the retry time,
   * ERR_BAD_ARGUMENT for an envelope that breaks its format's rules or is larger than the server's
   * max_payload (1 MiB by default).
   */
  publish(envelope: Envelope): Promise<PublishReceipt> {
    const full: LogEnvelope = { ...envelope, term: this.term };
    // Encoded now, so a bad envelope rejects at once rather than after the publishes before it.
    const bytes = encodeLogEnvelope(full);
    const messageId = envelopeMessageId(full);
    return this.#enqueue(() => this.#publishNow(bytes, () => messageId));
  }

  /**
   * Publishes several envelopes (of different partitions, or consecutive batches of one) as one
   * message (log-message.ts): one fenced round trip for all. Settles as `publish` does.
   */
  publishMessage(envelopes: readonly Envelope[]): Promise<PublishReceipt> {
    const bytes = encodeLogMessage(envelopes.map((envelope) => ({ ...envelope, term: this.term })));
    return this.#enqueue(() =>
      this.#publishNow(bytes, (expected) => logMessageId(this.term, expected, bytes)),
    );
  }

  #enqueue(publish: () => Promise<PublishReceipt>): Promise<PublishReceipt> {
    const result = this.#tail.then(publish);
    this.#tail = result.catch(() => {});
    return result;
  }

  async #publishNow(bytes: Uint8Array, idFor: (expected: number) => string): Promise<PublishReceipt> {
    if (this.#deposed !== undefined) throw this.#deposed;
    const expected = this.#lastSequence;
    const messageId = idFor(expected);
    const deadline = Date.now() + this.#retryMs;
    for (let attempt = 1; ; attempt++) {
      let ack: PubAck;
      try {
        ack = await this.#js.publish(this.stream.subject, bytes, {
          msgID: messageId,
          expect: { lastSubjectSequence: expected },
          timeout: this.#attemptMs,
        });
      } catch (error) {
        if (isWrongLastSequence(error)) {
          this.#deposed = new LightningError(
            'ERR_DEPOSED',
            `log ${this.stream.name}: a publish of term ${this.term} expected the log to end at sequence ` +
              `${expected}, and it has moved on: another leader publishes now`,
            { cause: error },
          );
          throw this.#deposed;
        }
        if (isRefusedByClient(error)) {
          // Never sent, so nothing to retry: a batch too large for the servers must be split.
          throw new LightningError('ERR_BAD_ARGUMENT', `log ${this.stream.name}: ${String(error)}`, {
            cause: error,
          });
        }
        if (isClosedConnection(error) || Date.now() >= deadline) {
          throw replicationError(
            `log ${this.stream.name}: no acknowledgement after ${attempt} attempts in ${this.#retryMs} ms`,
            error,
          );
        }
        this.#retries++;
        // A short pause: an election takes seconds, and each attempt already waited up to attemptMs.
        await sleep(Math.min(50 * attempt, 500));
        continue;
      }
      assert(
        ack.stream === this.stream.name,
        `acknowledged by stream ${ack.stream}, not ${this.stream.name}`,
      );
      assert(ack.seq > expected, `acknowledged at sequence ${ack.seq}, not after ${expected}`);
      this.#lastSequence = ack.seq;
      return { streamSequence: ack.seq, attempts: attempt, duplicate: ack.duplicate };
    }
  }
}

/** The stream sequence of the last message on the log's subject: 0 for an empty log. */
export async function readLastSequence(jsm: JetStreamManager, stream: LogStream): Promise<number> {
  try {
    const last = await jsm.streams.getMessage(stream.name, { last_by_subj: stream.subject });
    return last?.seq ?? 0;
  } catch (error) {
    throw replicationError(`reading the end of log ${stream.name}`, error);
  }
}
