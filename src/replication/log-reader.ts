import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
} from '@nats-io/jetstream';
import { LightningError } from '../shared-memory/errors.js';
import { LogChain } from './log-chain.js';
import type { LogEnvelope } from './log-envelope.js';
import { decodeLogMessage } from './log-message.js';
import type { LogStream } from './log-stream.js';
import { isClosedConnection, replicationError } from './nats-errors.js';
import { publishRetryMsDefault } from './replication-limits.js';

/**
 * A follower's side of the replication log: an ordered consumer (messages come once each, in stream
 * order; the client recreates it from the last sequence seen when it notices a gap or that the
 * consumer is gone) whose messages are decoded, checked and yielded in order.
 *
 * The consumer the client creates has one replica, in memory, on one server. If that server dies,
 * the client (@nats-io/jetstream 3.x against nats-server 2.9.10) never learns that the consumer is
 * gone: its "does it still exist?" request times out instead of answering "not found", and it keeps
 * asking (seen with 3.4.0 in test/replication-log.test.ts: the reading hung until the test's guard;
 * 3.3.1, pinned now, has the same retry loop). So this reader
 * watches the consumer itself: on missed heartbeats, or when its own "does it exist?" after 5 s
 * without a message gets no answer, it drops the consumer and creates a new one from the last
 * sequence it accepted. The chain check makes a restart safe: a message seen twice or skipped would
 * be refused.
 *
 * Every envelope is checked twice over: by itself (magic, version, checksums: decodeLogEnvelope) and
 * against those before it (each partition's chain, rising stream sequences, terms that never fall:
 * LogChain). Anything wrong stops the reading with ERR_CORRUPTION (or ERR_FORMAT_VERSION) naming the
 * stream sequence: a follower must never apply past a hole.
 */
export interface LogReaderOptions {
  /**
   * The stream sequence already applied (the follower's checkpointed position): reading starts after
   * it. 0 (the default) reads the log from its start.
   */
  afterStreamSequence?: number;
  /** Each partition's last applied sequence at that position; a partition not listed starts at 0. */
  partitions?: ReadonlyMap<number, number>;
  /** Stops the reading: the iteration ends (it does not throw). */
  signal?: AbortSignal;
  /** How many messages the client asks the server for at a time. */
  batchMessages?: number;
  /** How long to keep trying to start reading while the stream has no leader: 60 s unless told. */
  retryMs?: number;
  /**
   * Skip, without yielding, envelopes each partition has already (their last sequence is at or below
   * the partition's in `partitions`): a follower resuming from positions its partitions recorded at
   * different points of the log. Off: such an envelope breaks the chain (ERR_CORRUPTION).
   */
  skipApplied?: boolean;
  /** Told of a message whose every envelope was skipped: the reader's position moved past it. */
  onPassed?: (streamSequence: number) => void;
}

/** One envelope as read, with where it is in the stream. */
export interface LogEntry {
  readonly streamSequence: number;
  readonly envelope: LogEnvelope;
  /** The last envelope of its message: once it is applied, the follower is at `streamSequence`. */
  readonly lastOfMessage: boolean;
  /** When the stream stored the message (the server's clock), in ms since the epoch. */
  readonly storedAtMs: number;
  /** Messages the stream held after this one when it was delivered: the follower's lag. */
  readonly pending: number;
}

/** A reading in progress: its entries, the chain it checks (its position), how often it restarted. */
export interface LogReading {
  readonly entries: AsyncIterable<LogEntry>;
  readonly chain: LogChain;
  /** Consumers dropped for missed heartbeats and created again from the chain's position. */
  readonly consumerRestarts: number;
}

/**
 * Reads `stream` in order from after `afterStreamSequence`, following it as it grows, until the
 * signal aborts or the consumer of the iterator stops.
 */
export function readLog(js: JetStreamClient, stream: LogStream, options: LogReaderOptions = {}): LogReading {
  const after = options.afterStreamSequence ?? 0;
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `afterStreamSequence must be a safe integer >= 0, got ${after}`,
    );
  }
  const chain = new LogChain({
    ...(options.partitions === undefined ? {} : { partitions: options.partitions }),
    streamSequence: after,
  });
  const reading = {
    chain,
    consumerRestarts: 0,
    entries: undefined as unknown as AsyncIterable<LogEntry>,
  };
  reading.entries = entries(js, stream, reading, options);
  return reading;
}

async function* entries(
  js: JetStreamClient,
  stream: LogStream,
  reading: { chain: LogChain; consumerRestarts: number },
  options: LogReaderOptions,
): AsyncGenerator<LogEntry> {
  const { signal } = options;
  const { chain } = reading;
  for (;;) {
    if (signal?.aborted) return;
    const started = await startConsumer(js, stream, chain.streamSequence, options);
    if (started === undefined) return;
    const { consumer, messages } = started;
    let stalled = false;
    const restart = (): void => {
      stalled = true;
      void messages.stop();
    };
    const stop = (): void => void messages.stop();
    signal?.addEventListener('abort', stop, { once: true });
    // Aborted while the consumer was being created: the event has fired already.
    if (signal?.aborted) stop();
    void (async () => {
      for await (const status of messages.status()) if (status.type === 'heartbeats_missed') return restart();
    })().catch(() => {});
    // The watchdog: after a quiet spell, ask whether the consumer still exists. An idle log is
    // quiet too, so silence alone proves nothing; a consumer that does not answer is gone.
    let lastSignOfLifeMs = Date.now();
    let checking = false;
    const watchdog = setInterval(() => {
      if (checking || stalled || Date.now() - lastSignOfLifeMs < readerQuietMs) return;
      checking = true;
      consumer
        .info()
        .then(() => {
          lastSignOfLifeMs = Date.now();
        }, restart)
        .finally(() => {
          checking = false;
        });
    }, readerQuietMs / 4);
    watchdog.unref();
    try {
      for await (const message of messages) {
        if (stalled) break;
        lastSignOfLifeMs = Date.now();
        // The log's messages are numbered without gaps (one subject, single deletes denied): a jump
        // means the leader trimmed the log (leader-checkpoints.ts) past this reader's position.
        if (message.seq > chain.streamSequence + 1)
          throw logTrimmed(stream, chain.streamSequence, message.seq);
        const where = `${stream.name} stream sequence ${message.seq}`;
        const envelopes = decodeLogMessage(message.data, where);
        const storedAtMs = message.info.timestampNanos / 1e6;
        const pending = message.info.pending;
        const fresh = options.skipApplied
          ? envelopes.filter((envelope) => !chain.applied(message.seq, envelope))
          : envelopes;
        if (fresh.length === 0) {
          chain.pass(message.seq, envelopes[envelopes.length - 1]!.term);
          options.onPassed?.(message.seq);
        }
        for (let i = 0; i < fresh.length; i++) {
          chain.accept(message.seq, fresh[i]!, i > 0);
          const lastOfMessage = i === fresh.length - 1;
          yield { streamSequence: message.seq, envelope: fresh[i]!, lastOfMessage, storedAtMs, pending };
        }
        if (signal?.aborted) return;
      }
    } finally {
      clearInterval(watchdog);
      signal?.removeEventListener('abort', stop);
      void messages.stop();
    }
    if (!stalled) return;
    reading.consumerRestarts++;
  }
}

/** How long each pull request of the reader lasts: the server's idle heartbeats come at half that. */
const pullExpiresMs = 5_000;
/** After this long without a message, the reader checks that its consumer still exists. */
const readerQuietMs = 5_000;

/**
 * Creates the ordered consumer and starts it, retrying while the stream has no leader to answer (an
 * election after its leader died takes seconds) until `retryMs` has passed. Undefined if aborted.
 */
async function startConsumer(
  js: JetStreamClient,
  stream: LogStream,
  after: number,
  options: LogReaderOptions,
): Promise<{ consumer: Consumer; messages: ConsumerMessages } | undefined> {
  const deadline = Date.now() + (options.retryMs ?? publishRetryMsDefault);
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) return undefined;
    try {
      const { state } = await (await js.streams.get(stream.name)).info(true);
      // Everything up to first_seq - 1 was trimmed; a reader that needs some of it cannot go on.
      if (state.first_seq > after + 1) throw logTrimmed(stream, after, state.first_seq);
      const consumer = await js.consumers.get(stream.name, {
        filter_subjects: stream.subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: after + 1,
      });
      const messages = await consumer.consume({
        max_messages: options.batchMessages ?? 256,
        expires: pullExpiresMs,
      });
      return { consumer, messages };
    } catch (error) {
      if (error instanceof LightningError) throw error;
      if (isClosedConnection(error) || Date.now() >= deadline) {
        throw replicationError(`reading log ${stream.name} (${attempt} attempts)`, error);
      }
      await sleep(Math.min(100 * attempt, 1_000));
    }
  }
}

/**
 * The leader trimmed the log below `first` (its retention, after every partition recorded a later
 * position): a reader that has applied only up to `after` cannot continue from the log.
 */
function logTrimmed(stream: LogStream, after: number, first: number): LightningError {
  return new LightningError(
    'ERR_REPLICATION',
    `replication log ${stream.name} was trimmed: it starts at stream sequence ${first}, and this replica ` +
      `has applied it only up to ${after}; restore a recent backup of the leader or of a follower that is ` +
      'past the trimmed part, and open that with openReplica() (see the replication option retainMs)',
  );
}
