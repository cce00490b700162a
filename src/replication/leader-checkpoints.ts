import type { LeaderPositions } from './leader-positions.js';
import type { ReplicaPosition } from './replica-position.js';
import { positionCheckpointMs } from './replication-limits.js';

/** What the leader's checkpoints act on (built by replication-role.ts). */
export interface CheckpointTarget {
  /** Writes a partition's position into the partition (a batch of its own, logged and synced). */
  write(partition: number, position: ReplicaPosition): Promise<void>;
  /** Removes the log's messages below `streamSequence`; how many it removed. */
  trim(streamSequence: number): Promise<number>;
  /** False once the database no longer leads: nothing more is written or trimmed. */
  isLeading(): boolean;
}

/** Checkpoints kept for trimming, at most, over one retainMs (a busy leader takes one a second). */
const historyPerRetain = 1024;

/**
 * A checkpoint every partition holds durably: the stream sequence its positions name, and when (on
 * the monotonic clock: a wall clock stepped forward must not age checkpoints early).
 */
interface Checkpoint {
  readonly streamSequence: number;
  readonly atMs: number;
}

/**
 * The leader's replication checkpoints and the log's retention. Every second, if anything other than
 * the last checkpoint itself was published, the leader writes each partition's position as a
 * follower of its log would hold it (leader-positions.ts) into the partition, through the owners like
 * any write. Once every partition's write is durable, a backup of the leader (or the leader reopened
 * as a follower) resumes the log from there, re-applying at most the records published since the
 * position was taken (blind writes, applied in order: the same state in the end).
 *
 * Retention: the messages below a checkpoint are needed only by followers (and backups) behind it.
 * They are trimmed once that checkpoint is `retainMs` old, so a follower that stopped for less than
 * `retainMs` catches up from the log; one stopped longer finds the log trimmed (ERR_REPLICATION,
 * log-reader.ts) and must be restored from a backup. The checkpoint's own message is kept: the log's
 * last message always stays, and the fence (expect.lastSubjectSequence) needs it.
 */
export class LeaderCheckpoints {
  readonly #positions: LeaderPositions;
  readonly #target: CheckpointTarget;
  readonly #retainMs: number;
  readonly #timer: NodeJS.Timeout;
  /** Checkpoints not yet trimmed to, oldest first. */
  readonly #history: Checkpoint[] = [];
  /** Each partition's sequence when its last checkpoint was taken (null: none taken yet). */
  #takenAt: number[] | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #checkpointed = 0;
  #trimmedBelow = 0;
  #lastFailure: string | null = null;

  constructor(positions: LeaderPositions, target: CheckpointTarget, options: { retainMs: number }) {
    this.#positions = positions;
    this.#target = target;
    this.#retainMs = options.retainMs;
    this.#timer = setInterval(() => void this.#round(), positionCheckpointMs);
    this.#timer.unref();
  }

  /** The stream sequence every partition's durable position names (0 before the first checkpoint). */
  get checkpointed(): number {
    return this.#checkpointed;
  }

  /** Messages below this stream sequence were trimmed by this leader (0: none). */
  get trimmedBelow(): number {
    return this.#trimmedBelow;
  }

  /** Stops; with `final`, takes one last checkpoint first (a leader closing cleanly). */
  async stop(final: boolean): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
    if (final && !this.#stopped) {
      await this.#checkpoint().catch((error: unknown) => {
        if (this.#target.isLeading())
          console.warn('lightning-db replication: the last checkpoint failed', error);
      });
    }
    this.#stopped = true;
  }

  #round(): Promise<void> {
    if (this.#running !== null || this.#stopped) return Promise.resolve();
    this.#running = this.#checkpoint()
      .then(() => this.#trim())
      .then(
        () => {
          this.#lastFailure = null;
        },
        (error: unknown) => {
          // Said once per distinct failure: a stream that refuses purges would fail every round.
          const text = String(error);
          if (this.#target.isLeading() && text !== this.#lastFailure) {
            console.warn(
              'lightning-db replication: a checkpoint or trim of the log failed (retried each second)',
              error,
            );
          }
          this.#lastFailure = text;
        },
      )
      .finally(() => {
        this.#running = null;
      });
    return this.#running;
  }

  async #checkpoint(): Promise<void> {
    if (!this.#target.isLeading()) return;
    const sequences = this.#positions.sequences();
    const takenAt = this.#takenAt;
    // The last checkpoint's own write is one record per partition: more means something else came.
    if (takenAt !== null && sequences.every((sequence, p) => sequence <= takenAt[p]! + 1)) return;
    const snapshot = this.#positions.snapshot();
    const outcomes = await Promise.allSettled(
      snapshot.map((position, partition) => this.#target.write(partition, position)),
    );
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    // Not taken unless every partition has it: the next round writes them all again.
    if (failed !== undefined) throw failed.reason;
    this.#takenAt = snapshot.map((position) => position.sequence);
    const streamSequence = snapshot[0]!.streamSequence;
    this.#checkpointed = streamSequence;
    // Kept for trimming at most about 1,024 per retainMs: a later one is trimmed to a little later.
    const atMs = performance.now();
    const last = this.#history[this.#history.length - 1];
    if (last === undefined || atMs - last.atMs >= this.#retainMs / historyPerRetain) {
      this.#history.push({ streamSequence, atMs });
    }
  }

  async #trim(): Promise<void> {
    if (!this.#target.isLeading()) return;
    const cutoffMs = performance.now() - this.#retainMs;
    let due: Checkpoint | undefined;
    while (this.#history.length > 0 && this.#history[0]!.atMs <= cutoffMs) due = this.#history.shift();
    if (due === undefined || due.streamSequence <= this.#trimmedBelow) return;
    await this.#target.trim(due.streamSequence);
    this.#trimmedBelow = due.streamSequence;
  }
}
