import {
  kRecordPayload,
  kRecordPayloadLength,
  kRecordType,
  recordBytes,
  recordTypeDecision,
  recordTypePrepare,
} from '../storage/wal/wal-format.js';
import { recordTransactionId } from '../workers/transaction-records.js';
import type { LogEnvelope } from './log-envelope.js';
import type { HeldPrepare, ReplicaPosition } from './replica-position.js';

type Envelope = Omit<LogEnvelope, 'term'>;

/**
 * The position each partition of a leader stands at in the log it publishes, kept as a follower
 * that applied exactly that log would hold it (replica-position.ts): the partition's last
 * replication sequence, the stream sequence of the last message acknowledged, the term, and the
 * prepared transactions whose decision the partition has not logged yet.
 *
 * The leader writes these positions into its partitions now and then (leader-checkpoints.ts), so a
 * backup of the leader, or the leader itself reopened as a follower, resumes the log from there
 * rather than from its promotion.
 *
 * Prepared transactions are tracked per partition, by that partition's own records only: on the
 * leader a participant applies a transaction's writes when it logs the decision, so a partition's
 * state at sequence X holds the writes of exactly the transactions whose decision it logged at or
 * before X, and its position must hold the others, prepared at or before X, as a follower would.
 */
export class LeaderPositions {
  readonly #positions: ReplicaPosition[];
  readonly #term: number;
  #streamSequence: number;

  /** `positions`: where each partition stood when this leader was promoted (its prepares aborted). */
  constructor(positions: readonly ReplicaPosition[], term: number, streamSequence: number) {
    this.#positions = positions.map((position) => ({
      streamSequence,
      sequence: position.sequence,
      term,
      prepared: new Map(position.prepared),
    }));
    this.#term = term;
    this.#streamSequence = streamSequence;
  }

  /** The stream sequence of the last message recorded. */
  get streamSequence(): number {
    return this.#streamSequence;
  }

  /** Each partition's replication sequence as recorded. */
  sequences(): number[] {
    return this.#positions.map((position) => position.sequence);
  }

  /** A message the stream acknowledged at `streamSequence`, holding `envelopes` in order. */
  record(streamSequence: number, envelopes: readonly Envelope[]): void {
    for (const envelope of envelopes) {
      const position = this.#positions[envelope.partition]!;
      trackPrepares(position.prepared, envelope.payload, this.#term);
      position.sequence = envelope.lastSequence;
    }
    this.#streamSequence = streamSequence;
  }

  /**
   * Every partition's position now, as a follower that applied the log up to the last message
   * recorded would hold it: a copy, safe to encode while publishing goes on.
   */
  snapshot(): ReplicaPosition[] {
    return this.#positions.map((position) => ({
      streamSequence: this.#streamSequence,
      sequence: position.sequence,
      term: this.#term,
      prepared: new Map(position.prepared),
    }));
  }
}

/** A partition's prepare records add held writes; its decision records (commit or abort) end them. */
function trackPrepares(prepared: Map<number, HeldPrepare>, records: Uint8Array, term: number): void {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  for (let offset = 0; offset < records.length; ) {
    const length = view.getUint32(offset + kRecordPayloadLength, true);
    const type = records[offset + kRecordType];
    if (type === recordTypePrepare || type === recordTypeDecision) {
      const payload = records.subarray(offset + kRecordPayload, offset + kRecordPayload + length);
      const transactionId = recordTransactionId(payload);
      if (type === recordTypePrepare) prepared.set(transactionId, { term, writes: payload.slice(8) });
      else prepared.delete(transactionId);
    }
    offset += recordBytes(length);
  }
}
