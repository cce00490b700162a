/**
 * The leader's side of replication positions, without servers: LeaderPositions keeps each partition's
 * position as a follower of the published log would hold it (prepared transactions ended only by the
 * partition's own decision), and LeaderCheckpoints writes them when something was published, and
 * trims the log once a checkpoint is retainMs old (fake timers drive the clock).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderCheckpoints } from '../src/replication/leader-checkpoints.js';
import { LeaderPositions } from '../src/replication/leader-positions.js';
import type { LogEnvelope } from '../src/replication/log-envelope.js';
import {
  decodePosition,
  emptyPosition,
  encodePosition,
  type ReplicaPosition,
} from '../src/replication/replica-position.js';
import { positionCheckpointMs } from '../src/replication/replication-limits.js';
import {
  encodeRecord,
  loadH32Raw,
  recordBytes,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
  type WalRecordType,
} from '../src/storage/wal/wal-format.js';
import { encodeDecisionRecord, encodePrepareRecord } from '../src/workers/transaction-records.js';

type Envelope = Omit<LogEnvelope, 'term'>;
type RecordSpec = { type: WalRecordType; payload: Uint8Array };

const h32Raw = await loadH32Raw();
const chains = new Map<number, number>();

/** An envelope of `partition` carrying `records`, continuing that partition's sequence. */
function envelope(partition: number, records: RecordSpec[]): Envelope {
  const payload = Buffer.alloc(records.reduce((sum, r) => sum + recordBytes(r.payload.length), 0));
  let offset = 0;
  for (const [i, record] of records.entries()) {
    offset = encodeRecord(h32Raw, payload, offset, partition, i + 1, record.type, record.payload);
  }
  const previousSequence = chains.get(partition) ?? 0;
  chains.set(partition, previousSequence + records.length);
  return {
    partition,
    previousSequence,
    firstSequence: previousSequence + 1,
    lastSequence: previousSequence + records.length,
    payload,
  };
}

const writes = (text: string): Uint8Array => new TextEncoder().encode(text);
const operation = (): RecordSpec => ({ type: recordTypeOperation, payload: writes('an operation') });
const prepare = (id: number, text: string): RecordSpec => ({
  type: recordTypePrepare,
  payload: encodePrepareRecord(id, writes(text)),
});
const decision = (id: number, committed: boolean): RecordSpec => ({
  type: recordTypeDecision,
  payload: encodeDecisionRecord(id, committed),
});

function prepared(position: ReplicaPosition): Record<string, string> {
  return Object.fromEntries(
    [...position.prepared].map(([id, held]) => [String(id), new TextDecoder().decode(held.writes)]),
  );
}

describe('leader positions', () => {
  beforeEach(() => chains.clear());

  it('hold what a follower of the published log would: sequences, the last message, prepares per partition', () => {
    const start = [emptyPosition(), { ...emptyPosition(), sequence: 5, streamSequence: 3 }];
    chains.set(1, 5);
    const positions = new LeaderPositions(start, 7, 10);
    expect(positions.sequences()).toEqual([0, 5]);

    positions.record(11, [
      envelope(0, [operation(), prepare(1, 'one on 0'), prepare(2, 'two on 0')]),
      envelope(1, [prepare(1, 'one on 1')]),
    ]);
    const first = positions.snapshot();
    expect(first.map((p) => [p.streamSequence, p.sequence, p.term])).toEqual([
      [11, 3, 7],
      [11, 6, 7],
    ]);
    expect(prepared(first[0]!)).toEqual({ 1: 'one on 0', 2: 'two on 0' });
    expect(prepared(first[1]!)).toEqual({ 1: 'one on 1' });

    // Partition 1 logs its decision: only partition 1's prepare ends; partition 0 has not applied it.
    positions.record(12, [envelope(1, [decision(1, true), operation()])]);
    const second = positions.snapshot();
    expect(prepared(second[0]!)).toEqual({ 1: 'one on 0', 2: 'two on 0' });
    expect(prepared(second[1]!)).toEqual({});
    expect(second.map((p) => p.sequence)).toEqual([3, 8]);
    expect(second[0]!.streamSequence).toBe(12);

    // An abort ends a prepare as a commit does.
    positions.record(13, [envelope(0, [decision(1, true), decision(2, false)])]);
    expect(prepared(positions.snapshot()[0]!)).toEqual({});
    // A snapshot is a copy: later records do not change it.
    expect(prepared(first[0]!)).toEqual({ 1: 'one on 0', 2: 'two on 0' });
    // And it encodes as a follower's position does.
    expect(prepared(decodePosition(encodePosition(first[0]!), 0))).toEqual(prepared(first[0]!));
  });
});

describe('leader checkpoints', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    chains.clear();
  });
  afterEach(() => vi.useRealTimers());

  /** A leader of two partitions whose checkpoint writes are published like any write (one record each). */
  function leader(retainMs: number, failures: { trims?: number; writesOf1?: number } = {}) {
    let trimFailures = failures.trims ?? 0;
    let writeFailures = failures.writesOf1 ?? 0;
    const positions = new LeaderPositions([emptyPosition(), emptyPosition()], 3, 0);
    let streamSequence = 0;
    const publish = (partition: number, records: number): void => {
      positions.record(++streamSequence, [envelope(partition, Array.from({ length: records }, operation))]);
    };
    const written: Array<{ partition: number; streamSequence: number; sequence: number }> = [];
    const trimmed: number[] = [];
    const state = { leading: true };
    const checkpoints = new LeaderCheckpoints(
      positions,
      {
        write: async (partition, position) => {
          if (partition === 1 && writeFailures-- > 0) throw new Error('write refused');
          written.push({ partition, streamSequence: position.streamSequence, sequence: position.sequence });
          publish(partition, 1);
        },
        trim: async (below) => {
          if (trimFailures-- > 0) throw new Error('purge denied');
          trimmed.push(below);
          return 0;
        },
        isLeading: () => state.leading,
      },
      { retainMs },
    );
    return { checkpoints, publish, written, trimmed, state };
  }

  const tick = () => vi.advanceTimersByTimeAsync(positionCheckpointMs);

  it('write every partition when anything but their own writes was published, then trim', async () => {
    const { checkpoints, publish, written, trimmed } = leader(0);
    publish(0, 4);
    await tick();
    expect(written).toEqual([
      { partition: 0, streamSequence: 1, sequence: 4 },
      { partition: 1, streamSequence: 1, sequence: 0 },
    ]);
    expect(checkpoints.checkpointed).toBe(1);
    expect(trimmed).toEqual([1]);
    // Only the checkpoint's own writes since: no new checkpoint, nothing more to trim.
    await tick();
    await tick();
    expect(written).toHaveLength(2);
    expect(trimmed).toEqual([1]);
    // A user's write on partition 1: a new checkpoint of both, and the log trimmed up to it.
    publish(1, 1);
    await tick();
    expect(written.slice(2)).toEqual([
      { partition: 0, streamSequence: 4, sequence: 5 },
      { partition: 1, streamSequence: 4, sequence: 2 },
    ]);
    expect(trimmed).toEqual([1, 4]);
    expect(checkpoints.trimmedBelow).toBe(4);
    await checkpoints.stop(false);
  });

  it('trim only to a checkpoint retainMs old, and stop writing once not leading', async () => {
    const { checkpoints, publish, written, trimmed, state } = leader(5 * positionCheckpointMs);
    for (let second = 0; second < 4; second++) {
      publish(0, 2);
      await tick();
    }
    expect(written).toHaveLength(8);
    expect(trimmed).toEqual([]);
    await tick();
    await tick();
    // The first checkpoint (at stream sequence 1) is now 5 ticks old; the others are younger.
    expect(trimmed).toEqual([1]);
    await tick();
    expect(trimmed).toEqual([1, 4]);
    state.leading = false;
    publish(0, 2);
    await tick();
    await tick();
    await tick();
    expect(written).toHaveLength(8);
    expect(trimmed).toEqual([1, 4]);
    await checkpoints.stop(true);
    expect(written).toHaveLength(8);
  });

  it('say a failing trim once, and trim again once the log allows it', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { checkpoints, publish, trimmed } = leader(0, { trims: 3 });
    for (let second = 0; second < 5; second++) {
      publish(0, 2);
      await tick();
    }
    // Three rounds failed with the same error (said once), the next ones trimmed to their checkpoint.
    expect(warn).toHaveBeenCalledTimes(1);
    expect(trimmed).toEqual([10, 13]);
    expect(checkpoints.trimmedBelow).toBe(13);
    warn.mockRestore();
    await checkpoints.stop(false);
  });

  it('take again, next round, a checkpoint that one partition refused, and trim only to complete ones', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { checkpoints, publish, written, trimmed } = leader(0, { writesOf1: 1 });
    publish(0, 1);
    publish(1, 1);
    await tick();
    // Partition 0 took it, partition 1 refused it: not a checkpoint, nothing trimmed.
    expect(written.map((w) => w.partition)).toEqual([0]);
    expect(checkpoints.checkpointed).toBe(0);
    expect(trimmed).toEqual([]);
    await tick();
    expect(written.slice(1).map((w) => [w.partition, w.streamSequence])).toEqual([
      [0, 3],
      [1, 3],
    ]);
    expect(checkpoints.checkpointed).toBe(3);
    expect(trimmed).toEqual([3]);
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
    await checkpoints.stop(false);
  });

  it('take a last checkpoint when stopped as a leader closing', async () => {
    const { checkpoints, publish, written } = leader(0);
    publish(1, 3);
    await checkpoints.stop(true);
    expect(written.map((w) => [w.partition, w.sequence])).toEqual([
      [0, 0],
      [1, 3],
    ]);
    await tick();
    expect(written).toHaveLength(2);
  });
});
