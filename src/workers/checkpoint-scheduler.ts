import type { OwnedPartition } from './owner-loop.js';
import { type CheckpointResult, checkpointPartition } from './partition-checkpoint.js';

/**
 * Decides when this worker's partitions are checkpointed: on request (db.checkpoint()), and whenever
 * a partition's log has grown by `walBytesThreshold` since its last checkpoint, so recovery never has
 * to replay more than about that much. One checkpoint runs at a time per worker.
 */
export class CheckpointScheduler {
  readonly #databaseDirectory: string;
  readonly #partitions: number;
  readonly #owned: Map<number, OwnedPartition>;
  readonly #walBytesThreshold: number;
  /** Log bytes written by each partition when its last checkpoint started. */
  readonly #baselines = new Map<number, number>();
  #running: Promise<unknown> = Promise.resolve();
  #busy = false;
  /** Told of each checkpoint written (the owner's metrics). */
  readonly #onCheckpoint: (result: CheckpointResult) => void;

  constructor(
    databaseDirectory: string,
    partitions: number,
    owned: Map<number, OwnedPartition>,
    walBytesThreshold: number,
    onCheckpoint: (result: CheckpointResult) => void = () => {},
  ) {
    this.#onCheckpoint = onCheckpoint;
    this.#databaseDirectory = databaseDirectory;
    this.#partitions = partitions;
    this.#owned = owned;
    this.#walBytesThreshold = walBytesThreshold;
    for (const partition of owned.keys()) this.#baselines.set(partition, 0);
  }

  /** Starts a checkpoint of the partition whose log grew most past the threshold, if any and if idle. */
  maybeStart(onError: (error: unknown) => void): void {
    if (this.#busy) return;
    let chosen = -1;
    let grownMost = this.#walBytesThreshold;
    for (const [partition, owned] of this.#owned) {
      const grown = owned.log.stats.bytesWritten - this.#baselines.get(partition)!;
      if (grown >= grownMost) {
        grownMost = grown;
        chosen = partition;
      }
    }
    if (chosen >= 0) this.#enqueue([chosen]).catch(onError);
  }

  /** Checkpoints every partition of this worker, after any checkpoint already running. */
  checkpointAll(): Promise<CheckpointResult[]> {
    return this.#enqueue([...this.#owned.keys()]);
  }

  /** Resolves when no checkpoint is running. */
  async idle(): Promise<void> {
    await this.#running.catch(() => {});
  }

  #enqueue(partitions: number[]): Promise<CheckpointResult[]> {
    const run = this.#running
      .catch(() => {})
      .then(async () => {
        this.#busy = true;
        try {
          const results: CheckpointResult[] = [];
          for (const partition of partitions) {
            const owned = this.#owned.get(partition)!;
            this.#baselines.set(partition, owned.log.stats.bytesWritten);
            const result = await checkpointPartition(
              this.#databaseDirectory,
              partition,
              this.#partitions,
              owned.versioned,
              owned.log,
            );
            this.#onCheckpoint(result);
            results.push(result);
          }
          return results;
        } finally {
          this.#busy = false;
        }
      });
    this.#running = run;
    return run;
  }
}
