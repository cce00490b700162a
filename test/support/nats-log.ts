/**
 * What the replication tests share: a cluster with a connected client (started in `beforeAll`,
 * closed in `afterAll`, so its servers die and its folders go even when a test fails), a poll that
 * counts on a condition rather than a time, seeded envelopes that continue each partition's chain,
 * and a reader that reads a log to a given sequence.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { LogEnvelope } from '../../src/replication/log-envelope.js';
import { type LogEntry, readLog } from '../../src/replication/log-reader.js';
import type { LogStream } from '../../src/replication/log-stream.js';
import { within } from './async.js';
import { NatsCluster } from './nats-cluster.js';
import { randomBytes } from './seeded-random.js';

/** Guards against a hang, not speed bounds: a loaded 2-core machine can be very slow. */
export const stepMs = 90_000;

export interface NatsContext {
  cluster: NatsCluster;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * Starts a 3-server cluster and connects to it before the file's tests (restarting any server a test
 * left down after it); closes both after them. The
 * returned object is filled in by `beforeAll`: read its fields inside tests only.
 */
export function useNatsCluster(clientName: string): NatsContext {
  const context = {} as NatsContext;
  beforeAll(async () => {
    context.cluster = await NatsCluster.start();
    context.nc = await connect({
      servers: context.cluster.servers,
      name: clientName,
      maxReconnectAttempts: -1,
    });
    context.js = jetstream(context.nc);
    context.jsm = await jetstreamManager(context.nc);
  });
  // A test that failed half way may leave a server down: the next test starts with all three.
  afterEach(async () => {
    for (const node of context.cluster?.nodes ?? []) {
      if (node.state !== 'running') await context.cluster.restart(node.index);
    }
  });
  afterAll(async () => {
    await context.nc?.close().catch(() => {});
    await context.cluster?.close();
  });
  return context;
}

/** Polls `condition` every 50 ms until it holds; a hang fails after `stepMs`, naming `what`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + stepMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Envelopes (without their term) continuing each partition's chain, with seeded payloads. */
export function envelopeSource(random: () => number, partitions: number): () => Omit<LogEnvelope, 'term'> {
  const last = new Array<number>(partitions).fill(0);
  return () => {
    const partition = random() % partitions;
    const records = 1 + (random() % 8);
    const previousSequence = last[partition]!;
    last[partition] = previousSequence + records;
    return {
      partition,
      previousSequence,
      firstSequence: previousSequence + 1,
      lastSequence: previousSequence + records,
      payload: randomBytes(random, 16 + (random() % 2048)),
    };
  };
}

/**
 * Every entry of the log from its start up to `lastSequence`, read by an ordered consumer (the chain
 * checked on the way), and how often the reader had to recreate its consumer.
 */
export async function followLog(
  js: JetStreamClient,
  stream: LogStream,
  lastSequence: number,
): Promise<{ read: LogEntry[]; restarts: number }> {
  const controller = new AbortController();
  const reading = readLog(js, stream, { signal: controller.signal });
  const read: LogEntry[] = [];
  await within(
    (async () => {
      for await (const entry of reading.entries) {
        read.push(entry);
        if (entry.streamSequence >= lastSequence) break;
      }
    })(),
    stepMs,
    `reading ${stream.name} to sequence ${lastSequence}`,
  );
  controller.abort();
  expect(reading.chain.streamSequence).toBe(lastSequence);
  return { read, restarts: reading.consumerRestarts };
}

export async function readAllOfLog(
  js: JetStreamClient,
  stream: LogStream,
  lastSequence: number,
): Promise<LogEntry[]> {
  return (await followLog(js, stream, lastSequence)).read;
}
