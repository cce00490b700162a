import { type ConsumerMessages, DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import { LightningError } from '../shared-memory/errors.js';
import { LogChain } from './log-chain.js';
import { decodeLogEnvelope, type LogEnvelope } from './log-envelope.js';
import type { LogStream } from './log-stream.js';
import { isClosedConnection, replicationError } from './nats-errors.js';
import { publishRetryMsDefault } from './replication-limits.js';

/**
 * A follower's side of the replication log: an ordered consumer (the client recreates it from the
 * last sequence seen when the stream's leader changes or a message goes missing, so messages come
 * once each and in stream order) whose messages are decoded, checked and yielded in order.
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
}

/** One envelope as read, with where it is in the stream. */
export interface LogEntry {
  readonly streamSequence: number;
  readonly envelope: LogEnvelope;
}

/**
 * Reads `stream` in order from after `afterStreamSequence`, following it as it grows, until the
 * signal aborts or the consumer of the iterator stops. The chain it checks is `chain` (returned, so
 * the caller can read its position).
 */
export function readLog(
  js: JetStreamClient,
  stream: LogStream,
  options: LogReaderOptions = {},
): { entries: AsyncIterable<LogEntry>; chain: LogChain } {
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
  return { entries: entries(js, stream, chain, after, options), chain };
}

async function* entries(
  js: JetStreamClient,
  stream: LogStream,
  chain: LogChain,
  after: number,
  options: LogReaderOptions,
): AsyncGenerator<LogEntry> {
  const { signal } = options;
  if (signal?.aborted) return;
  const messages = await startConsumer(js, stream, after, options);
  if (messages === undefined) return;
  const stop = (): void => void messages.stop();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const message of messages) {
      const envelope = decodeLogEnvelope(message.data, `${stream.name} stream sequence ${message.seq}`);
      chain.accept(message.seq, envelope);
      yield { streamSequence: message.seq, envelope };
      if (signal?.aborted) return;
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    messages.stop();
  }
}

/** How long each pull request of the reader lasts: its heartbeats come at half that. */
const pullExpiresMs = 5_000;

/**
 * Creates the ordered consumer and starts it, retrying while the stream has no leader to answer (an
 * election after its leader died takes seconds) until `retryMs` has passed. Undefined if aborted.
 */
async function startConsumer(
  js: JetStreamClient,
  stream: LogStream,
  after: number,
  options: LogReaderOptions,
): Promise<ConsumerMessages | undefined> {
  const deadline = Date.now() + (options.retryMs ?? publishRetryMsDefault);
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) return undefined;
    try {
      const consumer = await js.consumers.get(stream.name, {
        filter_subjects: stream.subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: after + 1,
      });
      // Pulls that expire after 5 s, so the server's idle heartbeats come every 2.5 s: a reader whose
      // consumer died with its server notices in seconds and recreates it from where it was.
      return await consumer.consume({ max_messages: options.batchMessages ?? 256, expires: pullExpiresMs });
    } catch (error) {
      if (isClosedConnection(error) || Date.now() >= deadline) {
        throw replicationError(`reading log ${stream.name} (${attempt} attempts)`, error);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * attempt, 1_000)));
    }
  }
}
