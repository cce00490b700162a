/**
 * The leader lease against a real 3-node NATS JetStream cluster on 127.0.0.1, started by this file
 * (test/support/nats-cluster.ts) and killed at its end: the cluster forms; the lease is exclusive,
 * renews, is handed over by release(), and, held by a child process frozen with SIGSTOP, is taken
 * over, the thawed holder then fenced at the log. Bounds count events; the times printed are
 * figures, never asserted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { LeaderLease, readLeaderLease } from '../src/replication/leader-lease.js';
import { type LeaseBucket, openLeaseBucket } from '../src/replication/lease-bucket.js';
import { waitForLeaderLease } from '../src/replication/lease-takeover.js';
import { LogPublisher } from '../src/replication/log-publisher.js';
import { ensureLogStream } from '../src/replication/log-stream.js';
import { codeOf, rejection, within } from './support/async.js';
import { readAllOfLog, stepMs, until, useNatsCluster } from './support/nats-log.js';

const leaderChild = fileURLToPath(new URL('./fixtures/replication-leader-child.ts', import.meta.url));
/** The lease TTL of these tests: short so takeovers are quick, well above a loaded machine's hiccups. */
const ttlMs = 2_000;
const nats = useNatsCluster('replication-lease.test');

describe('the test cluster', () => {
  it('forms: three servers on loopback agree on a meta leader, and a 3-replica stream gets a leader', async () => {
    expect(nats.cluster.nodes).toHaveLength(3);
    expect(new Set(nats.cluster.nodes.map((node) => node.pid)).size).toBe(3);
    for (const node of nats.cluster.nodes) {
      expect(node.state).toBe('running');
      expect(node.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    }
    const metaLeader = await nats.cluster.waitForMetaLeader();
    expect(metaLeader).toBeGreaterThanOrEqual(0);
    const stream = await ensureLogStream(nats.jsm, { name: 'FORMS' });
    expect(stream.replicas).toBe(3);
    const leader = await nats.cluster.streamLeader('FORMS');
    expect(nats.cluster.nodes[leader]!.state).toBe('running');
  });
});

describe('leader lease', () => {
  let bucket: LeaseBucket;
  beforeAll(async () => {
    bucket = await openLeaseBucket(nats.js, { name: 'leases', ttlMs });
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
      expect(codeOf(await rejection(openLeaseBucket(nats.js, { name: 'leases', ttlMs: ttlMs * 2 })))).toBe(
        'ERR_BAD_ARGUMENT',
      );
    } finally {
      await lease.release();
    }
  });

  it('renews itself: held through 6 renewals (1.5 TTLs), its revision rising, its term fixed', async () => {
    // A longer TTL here: this test must not lose the lease to a loaded machine's stall.
    const steady = await openLeaseBucket(nats.js, { name: 'steady-leases', ttlMs: 4_000 });
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
    const stream = await ensureLogStream(nats.jsm, { name: 'FENCED' });
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        leaderChild,
        nats.cluster.servers.join(','),
        'leases',
        String(ttlMs),
        'FENCED',
        'child',
      ],
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
        const publisher = await LogPublisher.start(nats.js, nats.jsm, stream, { term: lease.term });
        const read = await readAllOfLog(nats.js, stream, publisher.lastSequence);
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
        const log = await readAllOfLog(nats.js, stream, publisher.lastSequence);
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
