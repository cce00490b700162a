/**
 * The replication groundwork against a real 3-node NATS JetStream cluster on 127.0.0.1, started by
 * this file (test/support/nats-cluster.ts) and killed at its end: the leader lease (exclusive,
 * renewed, lost by a frozen holder and taken over, released), and the replication log (a seeded round
 * trip with the chain checked, fencing of a stale publisher, a follower server's SIGKILL, the stream
 * leader's SIGKILL). Bounds count events; the times printed are figures, never asserted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaderLease, readLeaderLease } from '../src/replication/leader-lease.js';
import { type LeaseBucket, openLeaseBucket } from '../src/replication/lease-bucket.js';
import { waitForLeaderLease } from '../src/replication/lease-takeover.js';
import type { LogEnvelope } from '../src/replication/log-envelope.js';
import { LogPublisher, type PublishReceipt } from '../src/replication/log-publisher.js';
import { type LogEntry, readLog } from '../src/replication/log-reader.js';
import { ensureLogStream, type LogStream } from '../src/replication/log-stream.js';
import { codeOf, rejection, within } from './support/async.js';
import { NatsCluster } from './support/nats-cluster.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x15_0002);
console.log(`replication-nats seed ${seed} (set LIGHTNING_SEED to replay)`);
const leaderChild = fileURLToPath(new URL('./fixtures/replication-leader-child.ts', import.meta.url));
/** The lease TTL of these tests: short so takeovers are quick, well above a loaded machine's hiccups. */
const ttlMs = 2_000;
/** Guards against a hang, not speed bounds: a loaded 2-core machine can be very slow. */
const stepMs = 90_000;

let cluster: NatsCluster;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  cluster = await NatsCluster.start();
  nc = await connect({ servers: cluster.servers, name: 'replication-nats.test', maxReconnectAttempts: -1 });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close().catch(() => {});
  await cluster?.close();
});

/** Polls `condition` every 50 ms until it holds; a hang fails after `stepMs`, naming `what`. */
async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + stepMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Envelopes continuing each partition's chain, with seeded payloads. */
function envelopeSource(random: () => number, partitions: number) {
  const last = new Array<number>(partitions).fill(0);
  return (): Omit<LogEnvelope, 'term'> => {
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
 * Every entry of the log from its start up to `lastSequence`, read by an ordered consumer, and how
 * often the reader had to recreate its consumer.
 */
async function follow(
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

async function readAll(stream: LogStream, lastSequence: number): Promise<LogEntry[]> {
  return (await follow(stream, lastSequence)).read;
}

describe('the test cluster', () => {
  it('forms: three servers on loopback agree on a meta leader, and a 3-replica stream gets a leader', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(new Set(cluster.nodes.map((node) => node.pid)).size).toBe(3);
    for (const node of cluster.nodes) {
      expect(node.state).toBe('running');
      expect(node.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    }
    const metaLeader = await cluster.waitForMetaLeader();
    expect(metaLeader).toBeGreaterThanOrEqual(0);
    const stream = await ensureLogStream(jsm, { name: 'FORMS' });
    expect(stream.replicas).toBe(3);
    const leader = await cluster.streamLeader('FORMS');
    expect(cluster.nodes[leader]!.state).toBe('running');
  });
});

describe('leader lease', () => {
  let bucket: LeaseBucket;
  beforeAll(async () => {
    bucket = await openLeaseBucket(js, { name: 'leases', ttlMs });
  });

  it('is exclusive: a second acquire is ERR_LOCKED naming the holder; the bucket keeps its TTL', async () => {
    const lease = await LeaderLease.acquire(bucket, { holder: 'first', key: 'exclusive' });
    try {
      expect(lease.isHeld()).toBe(true);
      const error = await rejection(LeaderLease.acquire(bucket, { holder: 'second', key: 'exclusive' }));
      expect(codeOf(error)).toBe('ERR_LOCKED');
      expect(error.message).toContain(`first, term ${lease.term}`);
      expect(await readLeaderLease(bucket, 'exclusive')).toEqual({
        holder: 'first',
        term: lease.term,
        revision: lease.revision,
      });
      expect(codeOf(await rejection(openLeaseBucket(js, { name: 'leases', ttlMs: ttlMs * 2 })))).toBe(
        'ERR_BAD_ARGUMENT',
      );
    } finally {
      await lease.release();
    }
  });

  it('renews itself: held through 6 renewals (1.5 TTLs), its revision rising, its term fixed', async () => {
    // A longer TTL here: this test must not lose the lease to a loaded machine's stall.
    const steady = await openLeaseBucket(js, { name: 'steady-leases', ttlMs: 4_000 });
    const lease = await LeaderLease.acquire(steady, { holder: 'renewer', key: 'renewing' });
    try {
      const revisions: number[] = [];
      await until('6 renewals', () => {
        if (revisions.at(-1) !== lease.revision) revisions.push(lease.revision);
        expect(lease.lostReason).toBeUndefined();
        return lease.renewals >= 6;
      });
      expect(lease.isHeld()).toBe(true);
      expect(revisions.length).toBeGreaterThanOrEqual(6);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
      const state = await readLeaderLease(steady, 'renewing');
      expect(state).toEqual({ holder: 'renewer', term: lease.term, revision: lease.revision });
      expect(codeOf(await rejection(LeaderLease.acquire(steady, { holder: 'x', key: 'renewing' })))).toBe(
        'ERR_LOCKED',
      );
    } finally {
      await lease.release();
    }
  });

  it('is handed over at once by release(): a waiting candidate takes it, with a higher term', async () => {
    const first = await LeaderLease.acquire(bucket, { holder: 'leaving', key: 'handover' });
    const candidate = waitForLeaderLease(bucket, { holder: 'arriving', key: 'handover', pollMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.release();
    // pollMs is a minute: only the watch's delete event can wake the candidate within the guard.
    const second = await within(candidate, 30_000, 'the candidate woken by the release');
    try {
      expect(second.term).toBeGreaterThan(first.term);
      expect(second.isHeld()).toBe(true);
    } finally {
      await second.release();
    }
  });

  it('of a frozen holder (SIGSTOP) is lost and taken over; the thawed holder is fenced at the log', async () => {
    const stream = await ensureLogStream(jsm, { name: 'FENCED' });
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', leaderChild, cluster.servers.join(','), 'leases', String(ttlMs), 'FENCED', 'child'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await until('the child to hold the lease and publish 5 times', () => {
        if (child.exitCode !== null) throw new Error(`child exited early: ${lines.join(' | ')}`);
        return lines.filter((line) => line.startsWith('published')).length >= 5;
      });
      const childTerm = Number(lines[0]!.split(' ')[1]);
      process.kill(child.pid!, 'SIGSTOP');
      const frozenAt = performance.now();
      const publishedBeforeFreeze = lines.filter((line) => line.startsWith('published')).length;

      const lease = await within(waitForLeaderLease(bucket, { holder: 'taker' }), stepMs, 'the takeover');
      const takeoverMs = performance.now() - frozenAt;
      try {
        expect(lease.term).toBeGreaterThan(childTerm);
        // The new leader applies the log to its end, then continues it under its own term.
        const publisher = await LogPublisher.start(js, jsm, stream, { term: lease.term });
        const read = await readAll(stream, publisher.lastSequence);
        const lastOfPartition0 = read.at(-1)!.envelope.lastSequence;
        await publisher.publish({
          partition: 0,
          previousSequence: lastOfPartition0,
          firstSequence: lastOfPartition0 + 1,
          lastSequence: lastOfPartition0 + 1,
          payload: new TextEncoder().encode('from taker'),
        });

        process.kill(child.pid!, 'SIGCONT');
        expect(await within(exited, stepMs, 'the thawed child to exit')).toBe(0);
        console.log(
          `lease takeover ${takeoverMs.toFixed(0)} ms after the holder froze (TTL ${ttlMs} ms); ` +
            `child published ${publishedBeforeFreeze} before, said: ${lines.slice(publishedBeforeFreeze + 1).join(' | ')}`,
        );
        expect(lines.filter((line) => line.startsWith('published'))).toHaveLength(publishedBeforeFreeze);
        expect(lines).toContain('fenced ERR_DEPOSED');
        expect(lines).toContain('lost ERR_DEPOSED');
        expect(lines).not.toContain('held-after-loss');
        // The log: the child's batches, then the taker's one, the chain unbroken, nothing of the thaw.
        const log = await readAll(stream, publisher.lastSequence);
        expect(log.map((entry) => entry.envelope.term)).toEqual([
          ...new Array(publishedBeforeFreeze).fill(childTerm),
          lease.term,
        ]);
        expect(lease.isHeld()).toBe(true);
      } finally {
        await lease.release();
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});

describe('replication log', () => {
  // Every test starts with three servers, even after one that failed with a server killed.
  afterEach(async () => {
    for (const node of cluster.nodes) if (node.state !== 'running') await cluster.restart(node.index);
  });

  it('round-trips 300 seeded envelopes of 4 partitions in order, chain and checksums checked', async () => {
    const stream = await ensureLogStream(jsm, { name: 'ROUNDTRIP' });
    const publisher = await LogPublisher.start(js, jsm, stream, { term: 1 });
    expect(publisher.lastSequence).toBe(0);
    const next = envelopeSource(mulberry32(seed), 4);
    const sent: Omit<LogEnvelope, 'term'>[] = [];
    const receipts: PublishReceipt[] = [];
    for (let i = 0; i < 300; i++) {
      const envelope = next();
      sent.push(envelope);
      receipts.push(await publisher.publish(envelope));
    }
    expect(receipts.map((receipt) => receipt.streamSequence)).toEqual(sent.map((_, i) => i + 1));
    expect(receipts.filter((receipt) => receipt.duplicate)).toHaveLength(0);
    const read = await readAll(stream, 300);
    expect(read.map((entry) => entry.streamSequence)).toEqual(sent.map((_, i) => i + 1));
    for (let i = 0; i < sent.length; i++) {
      expect(read[i]!.envelope).toEqual({ ...sent[i], term: 1, payload: new Uint8Array(sent[i]!.payload) });
    }
    // A reader starting from a checkpointed position reads only what follows, chained from there.
    const controller = new AbortController();
    const partitions = new Map<number, number>();
    for (const envelope of sent.slice(0, 200)) partitions.set(envelope.partition, envelope.lastSequence);
    const { entries } = readLog(js, stream, {
      afterStreamSequence: 200,
      partitions,
      signal: controller.signal,
    });
    let first: number | undefined;
    let count = 0;
    for await (const entry of entries) {
      first ??= entry.streamSequence;
      if (++count === 100) break;
    }
    controller.abort();
    expect(first).toBe(201);
  });

  it('rejects a publish with a stale expected sequence as ERR_DEPOSED; that publisher then refuses all', async () => {
    const stream = await ensureLogStream(jsm, { name: 'STALE' });
    const old = await LogPublisher.start(js, jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 1), 1);
    const first = next();
    await old.publish(first);
    // A new leader, promoted at the end of the log: its publishes move the log on.
    const successor = await LogPublisher.start(js, jsm, stream, { term: 2 });
    expect(successor.lastSequence).toBe(1);
    await successor.publish(next());
    // The old one still expects sequence 1 at the end: rejected, by the stream, not by a lease.
    const stale = next();
    const error = await rejection(old.publish(stale));
    expect(codeOf(error)).toBe('ERR_DEPOSED');
    expect(old.deposed).toBe(error);
    expect(codeOf(await rejection(old.publish(next())))).toBe('ERR_DEPOSED');
    // A publisher behind the log (a follower that has not applied everything) is deposed likewise.
    const behind = await LogPublisher.start(js, jsm, stream, { term: 3, lastSequence: 1 });
    expect(codeOf(await rejection(behind.publish(next())))).toBe('ERR_DEPOSED');
    const log = await readAll(stream, 2);
    expect(log.map((entry) => entry.envelope.term)).toEqual([1, 2]);
  });

  it('SIGKILL of a follower server: no publish fails; the server catches up after its restart', async () => {
    const stream = await ensureLogStream(jsm, { name: 'FOLLOWERKILL' });
    const publisher = await LogPublisher.start(js, jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 2), 2);
    for (let i = 0; i < 50; i++) await publisher.publish(next());
    const leader = await cluster.streamLeader(stream.name);
    // A follower, and not the server this client is connected to (that would be a reconnect test).
    const connectedTo = cluster.nodes.find((node) => node.name === nc.info?.server_name)?.index;
    const victim = cluster.nodes.find((node) => node.index !== leader && node.index !== connectedTo)!.index;
    await cluster.kill(victim);
    for (let i = 0; i < 100; i++) await publisher.publish(next());
    expect(publisher.lastSequence).toBe(150);
    console.log(`follower SIGKILL: 100 publishes, ${publisher.retries} retries`);
    await cluster.restart(victim);
    await until(`node ${victim} to catch up to 150`, async () => {
      return (await cluster.streamLastSequenceOn(victim, stream.name)) === 150;
    });
    expect((await readAll(stream, 150)).length).toBe(150);
  });

  it("SIGKILL of the server holding a reader's consumer: the reader recreates it, missing nothing", async () => {
    const stream = await ensureLogStream(jsm, { name: 'READERKILL' });
    const publisher = await LogPublisher.start(js, jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 4), 2);
    const total = 100;
    for (let i = 0; i < 20; i++) await publisher.publish(next());
    const following = follow(stream, total);
    // The reader's consumer exists once it has read the first 20.
    const [host] = await cluster.consumerLeaders(stream.name);
    const streamLeader = await cluster.streamLeader(stream.name);
    await cluster.kill(host!);
    const killedAt = performance.now();
    for (let i = 20; i < total; i++) await publisher.publish(next());
    const followed = await following;
    console.log(
      `reader's consumer host SIGKILL (node ${host}, stream leader ${streamLeader}): all ${total} read ` +
        `${(performance.now() - killedAt).toFixed(0)} ms after the kill, consumer recreated ` +
        `${followed.restarts} times, ${publisher.retries} publish retries`,
    );
    expect(followed.read.map((entry) => entry.streamSequence)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    expect(followed.restarts).toBeGreaterThanOrEqual(1);
  });

  it('SIGKILL of the stream leader: publishes resume after retries, nothing is stored twice', async () => {
    const stream = await ensureLogStream(jsm, { name: 'LEADERKILL' });
    const publisher = await LogPublisher.start(js, jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 3), 3);
    const total = 200;
    // A follower reading all along: its ordered consumer must come through the election too.
    const following = follow(stream, total);
    const receipts: PublishReceipt[] = [];
    let longestGapMs = 0;
    let lastAckAt = performance.now();
    let victim = -1;
    for (let i = 0; i < total; i++) {
      if (i === 50) {
        victim = await cluster.streamLeader(stream.name);
        await cluster.kill(victim);
      }
      receipts.push(await publisher.publish(next()));
      const now = performance.now();
      if (i >= 50) longestGapMs = Math.max(longestGapMs, now - lastAckAt);
      lastAckAt = now;
    }
    const newLeader = await cluster.streamLeader(stream.name);
    const retried = receipts.filter((receipt) => receipt.attempts > 1).length;
    const duplicates = receipts.filter((receipt) => receipt.duplicate).length;
    console.log(
      `stream leader SIGKILL (node ${victim}, new leader ${newLeader}): longest pause ${longestGapMs.toFixed(0)} ms, ` +
        `${publisher.retries} retries over ${retried} publishes, ${duplicates} answered duplicate`,
    );
    expect(newLeader).not.toBe(victim);
    // One acknowledgement per publish, at consecutive sequences: a stored-twice batch would take two.
    expect(receipts.map((receipt) => receipt.streamSequence)).toEqual(receipts.map((_, i) => i + 1));
    // Read back: exactly `total` envelopes, each partition's chain unbroken (readAll checks it), by
    // the reader that followed the log through the kill and by one started after it.
    const followedAt = performance.now();
    const followed = await following;
    expect(followed.read).toHaveLength(total);
    const followerLagMs = performance.now() - followedAt;
    expect(await readAll(stream, total)).toHaveLength(total);
    console.log(
      `the reader that followed through the kill had all ${total} ${followerLagMs.toFixed(0)} ms after the ` +
        `last ack, having recreated its consumer ${followed.restarts} times`,
    );
  });
});
