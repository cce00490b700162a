/**
 * The replication log against a real 3-node NATS JetStream cluster on 127.0.0.1, started by this file
 * (test/support/nats-cluster.ts) and killed at its end: a seeded round trip with the chain checked,
 * fencing of a stale publisher, a batch too large, and SIGKILL of a follower server, of the server of
 * a reader's consumer and of the stream's leader. Bounds count events; the times printed are figures,
 * never asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { LogEnvelope } from '../src/replication/log-envelope.js';
import { LogPublisher, type PublishReceipt } from '../src/replication/log-publisher.js';
import { readLog } from '../src/replication/log-reader.js';
import { ensureLogStream } from '../src/replication/log-stream.js';
import { codeOf, rejection } from './support/async.js';
import { envelopeSource, followLog, readAllOfLog, until, useNatsCluster } from './support/nats-log.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x15_0002);
console.log(`replication-log seed ${seed} (set LIGHTNING_SEED to replay)`);
const nats = useNatsCluster('replication-log.test');

describe('replication log', () => {
  // Every test starts with three servers, even after one that failed with a server killed.
  afterEach(async () => {
    for (const node of nats.cluster.nodes)
      if (node.state !== 'running') await nats.cluster.restart(node.index);
  });

  it('round-trips 300 seeded envelopes of 4 partitions in order, chain and checksums checked', async () => {
    const stream = await ensureLogStream(nats.jsm, { name: 'ROUNDTRIP' });
    const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
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
    const read = await readAllOfLog(nats.js, stream, 300);
    expect(read.map((entry) => entry.streamSequence)).toEqual(sent.map((_, i) => i + 1));
    for (let i = 0; i < sent.length; i++) {
      expect(read[i]!.envelope).toEqual({ ...sent[i], term: 1, payload: new Uint8Array(sent[i]!.payload) });
    }
    // A reader starting from a checkpointed position reads only what follows, chained from there.
    const controller = new AbortController();
    const partitions = new Map<number, number>();
    for (const envelope of sent.slice(0, 200)) partitions.set(envelope.partition, envelope.lastSequence);
    const { entries } = readLog(nats.js, stream, {
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

  it('stops a reader whose next message was trimmed, or whose start lies below the log, ERR_REPLICATION', async () => {
    const stream = await ensureLogStream(nats.jsm, { name: 'TRIMREAD' });
    const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 5), 1);
    const sent: Omit<LogEnvelope, 'term'>[] = [];
    for (let i = 0; i < 30; i++) {
      sent.push(next());
      await publisher.publish(sent[i]!);
    }
    // A reader fetching one message at a time reads the first, then the log is trimmed under it.
    const controller = new AbortController();
    const { entries } = readLog(nats.js, stream, { batchMessages: 1, signal: controller.signal });
    const iterator = entries[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.streamSequence).toBe(1);
    expect((await nats.jsm.streams.purge(stream.name, { seq: 20 })).purged).toBe(19);
    const read: number[] = [];
    const failure = await (async () => {
      for (;;) {
        const step = await iterator.next();
        if (step.done) return null;
        read.push(step.value.streamSequence);
      }
    })().catch((error: unknown) => error as Error & { code?: string });
    controller.abort();
    // What the client had fetched before the trim may come first; never a gap.
    expect(read).toEqual(read.map((_, i) => i + 2));
    expect(failure?.code).toBe('ERR_REPLICATION');
    expect(failure?.message).toContain(
      `it starts at stream sequence 20, and this replica has applied it only up to ${read.length + 1}`,
    );
    // A reader starting below the log's first message is told at once.
    const late = readLog(nats.js, stream, { afterStreamSequence: 5 });
    const error = await rejection(late.entries[Symbol.asyncIterator]().next());
    expect(codeOf(error)).toBe('ERR_REPLICATION');
    expect(String(error)).toContain('was trimmed');
    // A reader resuming from a position the log kept reads to the end, chained from there.
    const resumed = new AbortController();
    const kept = readLog(nats.js, stream, {
      afterStreamSequence: 19,
      partitions: new Map([[0, sent[18]!.lastSequence]]),
      signal: resumed.signal,
    });
    const rest: number[] = [];
    for await (const entry of kept.entries) if (rest.push(entry.streamSequence) === 11) break;
    resumed.abort();
    expect(rest).toEqual(Array.from({ length: 11 }, (_, i) => 20 + i));
  });

  it('rejects a publish with a stale expected sequence as ERR_DEPOSED; that publisher then refuses all', async () => {
    const stream = await ensureLogStream(nats.jsm, { name: 'STALE' });
    const old = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 1), 1);
    const first = next();
    await old.publish(first);
    // A new leader, promoted at the end of the log: its publishes move the log on.
    const successor = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 2 });
    expect(successor.lastSequence).toBe(1);
    await successor.publish(next());
    // The old one still expects sequence 1 at the end: rejected, by the stream, not by a lease.
    const stale = next();
    const error = await rejection(old.publish(stale));
    expect(codeOf(error)).toBe('ERR_DEPOSED');
    expect(old.deposed).toBe(error);
    expect(codeOf(await rejection(old.publish(next())))).toBe('ERR_DEPOSED');
    // A publisher behind the log (a follower that has not applied everything) is deposed likewise.
    const behind = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 3, lastSequence: 1 });
    expect(codeOf(await rejection(behind.publish(next())))).toBe('ERR_DEPOSED');
    const log = await readAllOfLog(nats.js, stream, 2);
    expect(log.map((entry) => entry.envelope.term)).toEqual([1, 2]);
  });

  it("refuses (ERR_BAD_ARGUMENT) a batch larger than the server's max_payload, and stays usable", async () => {
    const stream = await ensureLogStream(nats.jsm, { name: 'TOOLARGE' });
    const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
    const large = (previousSequence: number, bytes: number) => ({
      partition: 0,
      previousSequence,
      firstSequence: previousSequence + 1,
      lastSequence: previousSequence + 1,
      payload: new Uint8Array(bytes),
    });
    const maxPayload = nats.nc.info!.max_payload;
    expect(codeOf(await rejection(publisher.publish(large(0, maxPayload))))).toBe('ERR_BAD_ARGUMENT');
    expect(publisher.retries).toBe(0);
    expect((await publisher.publish(large(0, maxPayload / 2))).streamSequence).toBe(1);
  });

  it('SIGKILL of a follower server: no publish fails; the server catches up after its restart', async () => {
    const stream = await ensureLogStream(nats.jsm, { name: 'FOLLOWERKILL' });
    const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 2), 2);
    for (let i = 0; i < 50; i++) await publisher.publish(next());
    const leader = await nats.cluster.streamLeader(stream.name);
    // A follower, and not the server this client is connected to (that would be a reconnect test).
    const connectedTo = nats.cluster.nodes.find((node) => node.name === nats.nc.info?.server_name)?.index;
    const victim = nats.cluster.nodes.find(
      (node) => node.index !== leader && node.index !== connectedTo,
    )!.index;
    await nats.cluster.kill(victim);
    for (let i = 0; i < 100; i++) await publisher.publish(next());
    expect(publisher.lastSequence).toBe(150);
    console.log(`follower SIGKILL: 100 publishes, ${publisher.retries} retries`);
    await nats.cluster.restart(victim);
    await until(`node ${victim} to catch up to 150`, async () => {
      return (await nats.cluster.streamLastSequenceOn(victim, stream.name)) === 150;
    });
    expect((await readAllOfLog(nats.js, stream, 150)).length).toBe(150);
  });

  it("SIGKILL of the server holding a reader's consumer: the reader recreates it, missing nothing", async () => {
    const stream = await ensureLogStream(nats.jsm, { name: 'READERKILL' });
    const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 4), 2);
    const total = 100;
    for (let i = 0; i < 20; i++) await publisher.publish(next());
    const following = followLog(nats.js, stream, total);
    // The reader's consumer exists once it has read the first 20.
    const [host] = await nats.cluster.consumerLeaders(stream.name);
    const streamLeader = await nats.cluster.streamLeader(stream.name);
    await nats.cluster.kill(host!);
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
    const stream = await ensureLogStream(nats.jsm, { name: 'LEADERKILL' });
    const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: 1 });
    const next = envelopeSource(mulberry32(seed + 3), 3);
    const total = 200;
    // A follower reading all along: its ordered consumer must come through the election too.
    const following = followLog(nats.js, stream, total);
    const receipts: PublishReceipt[] = [];
    let longestGapMs = 0;
    let lastAckAt = performance.now();
    let victim = -1;
    for (let i = 0; i < total; i++) {
      if (i === 50) {
        victim = await nats.cluster.streamLeader(stream.name);
        await nats.cluster.kill(victim);
      }
      receipts.push(await publisher.publish(next()));
      const now = performance.now();
      if (i >= 50) longestGapMs = Math.max(longestGapMs, now - lastAckAt);
      lastAckAt = now;
    }
    const newLeader = await nats.cluster.streamLeader(stream.name);
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
    expect(await readAllOfLog(nats.js, stream, total)).toHaveLength(total);
    console.log(
      `the reader that followed through the kill had all ${total} ${followerLagMs.toFixed(0)} ms after the ` +
        `last ack, having recreated its consumer ${followed.restarts} times`,
    );
  });
});
