/**
 * The replication layer's pieces that need no server: the log envelope (round trip, every damaged
 * byte caught), the chain a reader checks across envelopes, the lease value, and the lease's timing
 * rule (a renewal's deadline counts from when it was sent, not from when it was confirmed) on a fake
 * KV and a driven clock. The same pieces against a real cluster: test/replication-lease.test.ts and
 * test/replication-log.test.ts.
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LightningError } from '../src/index.js';
import { LeaderLease } from '../src/replication/leader-lease.js';
import type { LeaseBucket } from '../src/replication/lease-bucket.js';
import { decodeLeaseValue, encodeLeaseValue } from '../src/replication/lease-value.js';
import { LogChain } from '../src/replication/log-chain.js';
import {
  decodeLogEnvelope,
  encodeLogEnvelope,
  envelopeHeaderBytes,
  envelopeMessageId,
  type LogEnvelope,
} from '../src/replication/log-envelope.js';
import { codeOf } from './support/async.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x15_0001);
console.log(`replication-formats seed ${seed} (set LIGHTNING_SEED to replay)`);

function randomEnvelope(random: () => number, previousSequence: number, partition: number): LogEnvelope {
  const records = 1 + (random() % 20);
  return {
    term: 1 + (random() % 1000),
    partition,
    previousSequence,
    firstSequence: previousSequence + 1,
    lastSequence: previousSequence + records,
    payload: randomBytes(random, random() % 300),
  };
}

function codeThrownBy(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    return codeOf(error);
  }
  return 'no error';
}

describe('log envelope', () => {
  it('round-trips 200 seeded envelopes field for field', () => {
    const random = mulberry32(seed);
    for (let i = 0; i < 200; i++) {
      const envelope = randomEnvelope(random, random() % 1_000_000, random());
      const decoded = decodeLogEnvelope(encodeLogEnvelope(envelope), `test ${i}`);
      expect(decoded).toEqual({ ...envelope, payload: new Uint8Array(envelope.payload) });
    }
  });

  it('reports every damaged byte: one flipped bit anywhere is ERR_CORRUPTION or ERR_FORMAT_VERSION', () => {
    const random = mulberry32(seed + 1);
    const bytes = encodeLogEnvelope(randomEnvelope(random, 41, 3));
    expect(bytes.length).toBeGreaterThan(envelopeHeaderBytes);
    const codes = new Map<string, number>();
    for (let at = 0; at < bytes.length; at++) {
      const damaged = new Uint8Array(bytes);
      damaged[at]! ^= 1 << (random() % 8);
      const code = codeThrownBy(() => decodeLogEnvelope(damaged, `byte ${at}`));
      codes.set(code, (codes.get(code) ?? 0) + 1);
      if (at >= 4 && at < 8) expect(code, `byte ${at}`).toBe('ERR_FORMAT_VERSION');
      else expect(code, `byte ${at}`).toBe('ERR_CORRUPTION');
    }
    expect(codes.get('ERR_CORRUPTION')).toBe(bytes.length - 4);
    // Cut short, or longer than its header says.
    expect(codeThrownBy(() => decodeLogEnvelope(bytes.subarray(0, bytes.length - 1), 'short'))).toBe(
      'ERR_CORRUPTION',
    );
    expect(codeThrownBy(() => decodeLogEnvelope(bytes.subarray(0, 10), 'tiny'))).toBe('ERR_CORRUPTION');
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(codeThrownBy(() => decodeLogEnvelope(longer, 'long'))).toBe('ERR_CORRUPTION');
  });

  it('refuses to encode an envelope that breaks the rules (ERR_BAD_ARGUMENT)', () => {
    const good: LogEnvelope = {
      term: 1,
      partition: 0,
      previousSequence: 0,
      firstSequence: 1,
      lastSequence: 1,
      payload: new Uint8Array(1),
    };
    expect(codeThrownBy(() => encodeLogEnvelope(good))).toBe('no error');
    const bad: Partial<LogEnvelope>[] = [
      { term: 0 },
      { term: 1.5 },
      { partition: -1 },
      { partition: 2 ** 32 },
      { previousSequence: -1 },
      { firstSequence: 2 },
      { lastSequence: 0 },
      { previousSequence: Number.MAX_SAFE_INTEGER, firstSequence: Number.MAX_SAFE_INTEGER + 1 },
      { payload: 'text' as unknown as Uint8Array },
    ];
    for (const change of bad) {
      expect(
        codeThrownBy(() => encodeLogEnvelope({ ...good, ...change })),
        JSON.stringify(change),
      ).toBe('ERR_BAD_ARGUMENT');
    }
  });

  it('names a retried batch the same and two terms (or two payloads) of one range differently', () => {
    const envelope: LogEnvelope = {
      term: 7,
      partition: 2,
      previousSequence: 10,
      firstSequence: 11,
      lastSequence: 12,
      payload: new Uint8Array([1, 2, 3]),
    };
    const id = envelopeMessageId(envelope);
    expect(envelopeMessageId({ ...envelope, payload: new Uint8Array([1, 2, 3]) })).toBe(id);
    expect(envelopeMessageId({ ...envelope, term: 8 })).not.toBe(id);
    expect(envelopeMessageId({ ...envelope, payload: new Uint8Array([1, 2, 4]) })).not.toBe(id);
  });
});

describe('log chain', () => {
  it('accepts chained batches of interleaved partitions and catches a gap, an overlap and a fallen term', () => {
    const random = mulberry32(seed + 2);
    const chain = new LogChain();
    const last = [0, 0, 0, 0];
    let streamSequence = 0;
    let term = 1;
    for (let i = 0; i < 500; i++) {
      const partition = random() % 4;
      if (random() % 50 === 0) term++;
      const envelope = { ...randomEnvelope(random, last[partition]!, partition), term };
      streamSequence += 1 + (random() % 2);
      chain.accept(streamSequence, envelope);
      last[partition] = envelope.lastSequence;
    }
    expect(last.map((_, partition) => chain.lastSequenceOf(partition))).toEqual(last);
    expect(chain.streamSequence).toBe(streamSequence);

    const next = (change: Partial<LogEnvelope>, at = streamSequence + 1): string =>
      codeThrownBy(() => chain.accept(at, { ...randomEnvelope(random, last[1]!, 1), term, ...change }));
    const gap = last[1]! + 1;
    expect(next({ previousSequence: gap, firstSequence: gap + 1, lastSequence: gap + 1 })).toBe(
      'ERR_CORRUPTION',
    );
    const overlap = last[1]! - 1;
    expect(next({ previousSequence: overlap, firstSequence: overlap + 1, lastSequence: overlap + 1 })).toBe(
      'ERR_CORRUPTION',
    );
    expect(next({ term: term - 1 })).toBe('ERR_CORRUPTION');
    expect(next({}, streamSequence)).toBe('ERR_CORRUPTION');
    // None of the refused ones moved the chain; the right next batch is still accepted.
    expect(chain.lastSequenceOf(1)).toBe(last[1]);
    expect(next({})).toBe('no error');
  });

  it('starts each partition where the checkpoint says, and a partition it was not told of at 0', () => {
    const chain = new LogChain({ partitions: new Map([[5, 100]]), streamSequence: 40 });
    const batch = (partition: number, previous: number): LogEnvelope => ({
      term: 1,
      partition,
      previousSequence: previous,
      firstSequence: previous + 1,
      lastSequence: previous + 1,
      payload: new Uint8Array(0),
    });
    expect(codeThrownBy(() => chain.accept(41, batch(5, 0)))).toBe('ERR_CORRUPTION');
    expect(codeThrownBy(() => chain.accept(41, batch(5, 100)))).toBe('no error');
    expect(codeThrownBy(() => chain.accept(42, batch(6, 3)))).toBe('ERR_CORRUPTION');
    expect(codeThrownBy(() => chain.accept(42, batch(6, 0)))).toBe('no error');
  });
});

describe('lease value', () => {
  it('round-trips, and reports damage and another version', () => {
    const bytes = encodeLeaseValue({ holder: 'node-a pid 12', term: 42 });
    expect(decodeLeaseValue(bytes, 'test')).toEqual({ holder: 'node-a pid 12', term: 42 });
    const text = new TextDecoder().decode(bytes);
    const damaged = new TextEncoder().encode(text.replace('node-a', 'node-b'));
    expect(codeThrownBy(() => decodeLeaseValue(damaged, 'test'))).toBe('ERR_CORRUPTION');
    const newer = new TextEncoder().encode(text.replace('"formatVersion":1', '"formatVersion":2'));
    expect(codeThrownBy(() => decodeLeaseValue(newer, 'test'))).toBe('ERR_FORMAT_VERSION');
    expect(codeThrownBy(() => decodeLeaseValue(new Uint8Array([1, 2]), 'test'))).toBe('ERR_CORRUPTION');
    expect(codeThrownBy(() => encodeLeaseValue({ holder: '', term: 1 }))).toBe('ERR_BAD_ARGUMENT');
  });
});

/** A KV whose updates the test answers by hand: `pending` holds each update's resolvers in order. */
function fakeBucket(ttlMs: number) {
  const pending: {
    resolve: (revision: number) => void;
    reject: (error: unknown) => void;
    revision: number;
  }[] = [];
  let revision = 0;
  /** What a read of the entry finds (a renewal that meets another revision reads it): none by default. */
  let stored: { holder: string; term: number; revision: number } | null = null;
  const kv = {
    create: async () => ++revision,
    update: (_key: string, _value: Uint8Array, expected: number) =>
      new Promise<number>((resolve, reject) => pending.push({ resolve, reject, revision: expected })),
    delete: async () => {},
    get: async () =>
      stored === null
        ? null
        : {
            operation: 'PUT',
            revision: stored.revision,
            value: encodeLeaseValue({ holder: stored.holder, term: stored.term }),
          },
  };
  const bucket: LeaseBucket = { kv: kv as unknown as KV, name: 'fake', ttlMs };
  return {
    bucket,
    pending,
    nextRevision: () => ++revision,
    store: (entry: { holder: string; term: number; revision: number }) => {
      stored = entry;
    },
  };
}

describe('leader lease timing (fake KV, driven clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'queueMicrotask'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts a renewal from when it was sent: a late confirmation does not stretch the lease', async () => {
    const ttlMs = 1_000; // renew every 250 ms, trust 800 ms from a send
    const { bucket, pending, nextRevision } = fakeBucket(ttlMs);
    const lease = await LeaderLease.acquire(bucket, { holder: 'a', clock: () => Date.now() });
    const start = Date.now();
    const losses: LightningError[] = [];
    lease.onLost((reason) => losses.push(reason));
    expect(lease.term).toBe(1);

    await vi.advanceTimersByTimeAsync(250); // the first renewal is sent at +250
    expect(pending).toHaveLength(1);
    expect(pending[0]!.revision).toBe(1);
    await vi.advanceTimersByTimeAsync(450); // confirmed only at +700
    pending[0]!.resolve(nextRevision());
    await vi.advanceTimersByTimeAsync(0);
    expect(lease.revision).toBe(2);
    expect(lease.renewals).toBe(1);
    // Trusted until +250 + 800 = +1050, not +700 + 800.
    expect(lease.remainingMs()).toBe(start + 1050 - Date.now());

    await vi.advanceTimersByTimeAsync(250); // the next renewal goes at +950 and is never answered
    expect(pending).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(start + 1049 - Date.now());
    expect(lease.isHeld()).toBe(true);
    expect(losses).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(lease.isHeld()).toBe(false);
    await vi.advanceTimersByTimeAsync(5);
    expect(losses.map((reason) => reason.code)).toEqual(['ERR_DEPOSED']);
    expect(codeThrownBy(() => lease.assertHeld())).toBe('ERR_DEPOSED');

    // The unanswered renewal confirmed after the loss does not bring the lease back.
    pending[1]!.resolve(nextRevision());
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lease.isHeld()).toBe(false);
    expect(pending).toHaveLength(2);
  });

  it('is lost at once when a renewal finds the entry rewritten by another holder', async () => {
    const { bucket, pending, store } = fakeBucket(2_000);
    store({ holder: 'b', term: 7, revision: 9 });
    const lease = await LeaderLease.acquire(bucket, { holder: 'a', clock: () => Date.now() });
    const lost = lease.whenLost();
    await vi.advanceTimersByTimeAsync(500);
    expect(pending).toHaveLength(1);
    pending[0]!.reject(
      new JetStreamApiError({ code: 400, err_code: 10071, description: 'wrong last sequence: 9' }),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(lease.isHeld()).toBe(false);
    const reason = await lost;
    expect(reason.code).toBe('ERR_DEPOSED');
    expect(reason.message).toContain('another holder');
  });

  it('adopts its own renewal that landed unseen, and renews again at once', async () => {
    const { bucket, pending, store } = fakeBucket(1_600); // renew 400, retry 100, trust 1280
    const lease = await LeaderLease.acquire(bucket, { holder: 'a', clock: () => Date.now() });
    await vi.advanceTimersByTimeAsync(400);
    // The first attempt is stored (revision 2) but its answer is lost; the retry meets revision 2.
    store({ holder: 'a', term: 1, revision: 2 });
    pending[0]!.reject(new Error('TimeoutError'));
    await vi.advanceTimersByTimeAsync(100);
    expect(pending).toHaveLength(2);
    pending[1]!.reject(
      new JetStreamApiError({ code: 400, err_code: 10071, description: 'wrong last sequence: 2' }),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(lease.isHeld()).toBe(true);
    expect(lease.revision).toBe(2);
    // Adopting does not stretch the deadline: the renewal sent at once from revision 2 does.
    expect(pending).toHaveLength(3);
    expect(pending[2]!.revision).toBe(2);
    await lease.release();
  });

  it('retries a renewal that timed out, and keeps the lease when a retry is confirmed in time', async () => {
    const { bucket, pending, nextRevision } = fakeBucket(1_600); // renew 400, retry 100, trust 1280
    const lease = await LeaderLease.acquire(bucket, { holder: 'a', clock: () => Date.now() });
    await vi.advanceTimersByTimeAsync(400);
    pending[0]!.reject(new Error('TimeoutError'));
    await vi.advanceTimersByTimeAsync(100);
    expect(pending).toHaveLength(2);
    pending[1]!.resolve(nextRevision());
    await vi.advanceTimersByTimeAsync(0);
    expect(lease.isHeld()).toBe(true);
    expect(lease.renewals).toBe(1);
    expect(lease.remainingMs()).toBe(1_280);
    await lease.release();
    expect(lease.isHeld()).toBe(false);
    expect(lease.lostReason).toBeUndefined();
  });
});
