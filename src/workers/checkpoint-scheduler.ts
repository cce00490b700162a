import type { SegmentRemoval } from '../storage/wal/index.js';
import type { OwnedPartition } from './owner-loop.js';
import type { PageSets } from './page-sets.js';
import { type CheckpointResult, checkpointPartition } from './partition-checkpoint.js';

/**
 * Decides when this worker's partitions are checkpointed: on request (db.checkpoint()), whenever a
 * partition's records in the log have grown by `walBytesThreshold` since its last checkpoint, so
 * recovery never has to replay more than about that much, and whenever the owner's whole log has
 * grown by twice that since the last checkpoint of a partition that wrote meanwhile: the partitions
 * share one log, and a segment goes only once every partition in it checkpointed past it, so a
 * partition that writes little must not keep the log of busy ones forever (RocksDB flushes the
 * column families that hold the oldest WAL for the same reason). One checkpoint runs at a time per
 * worker.
 */
export class CheckpointScheduler {
  readonly #databaseDirectory: string;
  readonly #owned: Map<number, OwnedPartition>;
  readonly #walBytesThreshold: number;
  /** Log bytes written by each partition when its last checkpoint started. */
  readonly #baselines = new Map<number, number>();
  /** Bytes the whole owner log had written when each partition's last checkpoint started. */
  readonly #logBaselines = new Map<number, number>();
  #running: Promise<unknown> = Promise.resolve();
  #busy = false;
  /** The owner's log segments waiting for checkpoints to make them unnecessary. */
  readonly #segmentRemoval: SegmentRemoval;
  /** Told of each checkpoint written (the owner's metrics). */
  readonly #onCheckpoint: (result: CheckpointResult) => void;
  /** Writes the checkpoints of partitions over page files: their page sets. */
  readonly #pageSets: PageSets | null;

  constructor(
    databaseDirectory: string,
    owned: Map<number, OwnedPartition>,
    walBytesThreshold: number,
    segmentRemoval: SegmentRemoval,
    onCheckpoint: (result: CheckpointResult) => void = () => {},
    pageSets: PageSets | null = null,
  ) {
    this.#pageSets = pageSets;
    this.#segmentRemoval = segmentRemoval;
    this.#onCheckpoint = onCheckpoint;
    this.#databaseDirectory = databaseDirectory;
    this.#owned = owned;
    this.#walBytesThreshold = walBytesThreshold;
    for (const partition of owned.keys()) {
      this.#baselines.set(partition, 0);
      this.#logBaselines.set(partition, 0);
    }
  }

  /**
   * Starts a checkpoint of the partition whose records grew most past the threshold, or else of the
   * one pinning the most of the shared log, if any and if idle.
   */
  maybeStart(onError: (error: unknown) => void): void {
    if (this.#busy) return;
    let chosen = -1;
    let grownMost = this.#walBytesThreshold;
    let pinnedMost = 2 * this.#walBytesThreshold;
    let pinning = -1;
    for (const [partition, owned] of this.#owned) {
      const grown = owned.log.stats.bytesWritten - this.#baselines.get(partition)!;
      if (grown >= grownMost) {
        grownMost = grown;
        chosen = partition;
      }
      const pinned = owned.log.writer.stats.bytesWritten - this.#logBaselines.get(partition)!;
      if (grown > 0 && pinned >= pinnedMost) {
        pinnedMost = pinned;
        pinning = partition;
      }
    }
    if (chosen < 0) chosen = pinning;
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

  /** A partition over a page file is checkpointed by a page set, written between the owner's passes. */
  async #pageSet(partition: number): Promise<CheckpointResult> {
    const started = performance.now();
    const written = await this.#pageSets!.requestCheckpoint(partition);
    return {
      partition,
      startLsn: written.redoLsn,
      entries: 0,
      bytes: written.bytesWritten,
      durationMs: performance.now() - started,
      walSegmentsRemoved: written.walSegmentsRemoved,
    };
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
            this.#logBaselines.set(partition, owned.log.writer.stats.bytesWritten);
            const result =
              owned.pages !== null && this.#pageSets !== null
                ? await this.#pageSet(partition)
                : await checkpointPartition(
                    this.#databaseDirectory,
                    partition,
                    owned.versioned,
                    owned.log,
                    this.#segmentRemoval,
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
