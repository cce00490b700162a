/**
 * What the Database tells an attached admin server about its own calls: each put, del and batch from
 * the call until its promise settles, and each get. A Database without an admin server has no
 * observer and pays one null check per call.
 */

export const observedOperations = ['put', 'del', 'batch', 'get'] as const;
export type ObservedOperation = (typeof observedOperations)[number];
export type ObservedWrite = Exclude<ObservedOperation, 'get'>;

/** The partition label of a batch whose keys fall in more than one partition. */
export const partitionSeveral = -1;

export interface OperationObserver {
  /**
   * Records a write that started at `startedMs` (performance.now()) once `written` settles; returns a
   * promise that settles the same way, after the record.
   */
  write<T>(operation: ObservedWrite, partition: number, startedMs: number, written: Promise<T>): Promise<T>;
  /** Records a get that started at `startedMs` and has returned. */
  read(partition: number, startedMs: number): void;
}

/** Upper bounds (inclusive) of the latency buckets, in seconds: 1 µs (a get) to 2.5 s (a stalled fsync). */
export const latencyBoundsSeconds: readonly number[] = [
  0.000_001, 0.000_002_5, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001,
  0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
const bucketCount = latencyBoundsSeconds.length + 1;
/** Per operation and partition: the bucket counts, then the sum of seconds. */
const cellWords = bucketCount + 1;
const getIndex = observedOperations.indexOf('get');

/** One series of the latency histogram, as read for a scrape. */
export interface LatencySeries {
  operation: ObservedOperation;
  /** A partition, or partitionSeveral. */
  partition: number;
  /** Count per bucket, not cumulative; the last is above every bound. */
  counts: number[];
  sumSeconds: number;
  count: number;
}

/**
 * Latency histograms per operation and partition, kept in one flat Float64Array so that recording is
 * a bucket search and two additions: no allocation, no label hashing on the caller's path. Only the
 * thread that owns the Database records here, so plain writes are enough.
 */
export class OperationRecorder implements OperationObserver {
  readonly #partitions: number;
  /** Cells for partitions 0..P-1, then one for batches over several partitions, for each operation. */
  readonly #cells: Float64Array;
  readonly #errors = new Float64Array(observedOperations.length);

  constructor(partitions: number) {
    if (!Number.isSafeInteger(partitions) || partitions < 1)
      throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
    this.#partitions = partitions;
    this.#cells = new Float64Array(observedOperations.length * (partitions + 1) * cellWords);
  }

  write<T>(operation: ObservedWrite, partition: number, startedMs: number, written: Promise<T>): Promise<T> {
    const index = observedOperations.indexOf(operation);
    return written.then(
      (value) => {
        this.#record(index, partition, performance.now() - startedMs);
        return value;
      },
      (error: unknown) => {
        this.#errors[index]++;
        throw error;
      },
    );
  }

  read(partition: number, startedMs: number): void {
    this.#record(getIndex, partition, performance.now() - startedMs);
  }

  /** Failed writes per operation (their latency is not recorded). */
  errors(): { operation: ObservedOperation; count: number }[] {
    return observedOperations.map((operation, index) => ({ operation, count: this.#errors[index]! }));
  }

  /** Every series that has recorded something. O(operations × partitions × buckets). */
  series(): LatencySeries[] {
    const out: LatencySeries[] = [];
    const cells = this.#cells;
    for (const [index, operation] of observedOperations.entries()) {
      for (let slot = 0; slot <= this.#partitions; slot++) {
        const base = (index * (this.#partitions + 1) + slot) * cellWords;
        const counts = Array.from(cells.subarray(base, base + bucketCount));
        const count = counts.reduce((sum, n) => sum + n, 0);
        if (count === 0) continue;
        const partition = slot === this.#partitions ? partitionSeveral : slot;
        out.push({ operation, partition, counts, count, sumSeconds: cells[base + bucketCount]! });
      }
    }
    return out;
  }

  #record(operationIndex: number, partition: number, elapsedMs: number): void {
    const slot = partition >= 0 && partition < this.#partitions ? partition : this.#partitions;
    const base = (operationIndex * (this.#partitions + 1) + slot) * cellWords;
    const seconds = elapsedMs / 1000;
    let bucket = 0;
    while (bucket < latencyBoundsSeconds.length && seconds > latencyBoundsSeconds[bucket]!) bucket++;
    this.#cells[base + bucket]++;
    this.#cells[base + bucketCount] += seconds;
  }
}
