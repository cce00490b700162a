import { LightningError } from '../shared-memory/errors.js';
import type { LogEnvelope } from './log-envelope.js';

/**
 * What a reader of the replication log checks across envelopes (each envelope checks itself when
 * decoded): every partition's batches chain, each one's previous sequence being the last sequence of
 * the one before (so a gap or a batch applied twice is caught, not replayed); stream sequences only
 * rise; terms never fall (a deposed leader's batch cannot appear after its successor's).
 *
 * A reader that starts from a checkpoint passes each partition's applied sequence; a partition it
 * was not told about starts at 0, so its first batch must begin at sequence 1.
 */
export class LogChain {
  readonly #lastSequenceOf: Map<number, number>;
  #lastStreamSequence: number;
  #lastTerm = 0;

  constructor(start: { partitions?: ReadonlyMap<number, number>; streamSequence?: number } = {}) {
    this.#lastSequenceOf = new Map(start.partitions ?? []);
    this.#lastStreamSequence = start.streamSequence ?? 0;
  }

  /** The last sequence accepted for `partition`: 0 if none. */
  lastSequenceOf(partition: number): number {
    return this.#lastSequenceOf.get(partition) ?? 0;
  }

  /** The stream sequence of the last envelope accepted: the reader's applied position. */
  get streamSequence(): number {
    return this.#lastStreamSequence;
  }

  get term(): number {
    return this.#lastTerm;
  }

  /**
   * Whether the envelope's records were applied already: a follower resuming from the position its
   * partitions recorded reads again the messages after the oldest of them, and skips what each
   * partition has. A batch that straddles the partition's position (some of it applied, some not)
   * cannot come from one leader's log: ERR_CORRUPTION.
   */
  applied(streamSequence: number, envelope: LogEnvelope): boolean {
    const last = this.lastSequenceOf(envelope.partition);
    if (envelope.lastSequence <= last) return true;
    if (envelope.previousSequence < last) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `replication log at stream sequence ${streamSequence}: partition ${envelope.partition}'s batch ` +
          `${envelope.firstSequence}..${envelope.lastSequence} straddles its applied sequence ${last}`,
      );
    }
    return false;
  }

  /**
   * Accepts the envelope stored at `streamSequence`, or throws ERR_CORRUPTION saying what breaks.
   * `sameMessage`: it follows another envelope of the same message, at the same stream sequence.
   */
  accept(streamSequence: number, envelope: LogEnvelope, sameMessage = false): void {
    const fail = (why: string): never => {
      throw new LightningError(
        'ERR_CORRUPTION',
        `replication log at stream sequence ${streamSequence}: ${why}`,
      );
    };
    if (
      sameMessage ? streamSequence !== this.#lastStreamSequence : !(streamSequence > this.#lastStreamSequence)
    ) {
      fail(`does not follow stream sequence ${this.#lastStreamSequence}`);
    }
    if (envelope.term < this.#lastTerm) {
      fail(
        `term ${envelope.term} after term ${this.#lastTerm}: a deposed leader's batch after its successor's`,
      );
    }
    const expected = this.lastSequenceOf(envelope.partition);
    if (envelope.previousSequence !== expected) {
      const what = envelope.previousSequence < expected ? 'overlaps' : 'leaves a gap after';
      fail(
        `partition ${envelope.partition}'s batch ${envelope.firstSequence}..${envelope.lastSequence} ` +
          `${what} its last sequence ${expected}`,
      );
    }
    this.#lastSequenceOf.set(envelope.partition, envelope.lastSequence);
    this.#lastStreamSequence = streamSequence;
    this.#lastTerm = envelope.term;
  }

  /** Moves the position past a message all of whose envelopes were applied before (see `applied`). */
  pass(streamSequence: number, term: number): void {
    if (streamSequence > this.#lastStreamSequence) this.#lastStreamSequence = streamSequence;
    if (term > this.#lastTerm) this.#lastTerm = term;
  }
}
