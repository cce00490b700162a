import {
  type CountedOperation,
  countedOperations,
  kRowCommits,
  kRowConflicts,
  kRowCrossPartitionCommits,
  kRowFailed,
  kRowOperations,
  kRowPageSetWaits,
  kRowRetries,
  operationCells,
  threadCounterRowWords,
} from '../shared-memory/thread-counters-layout.js';
import type { TransactionStats } from './transaction-coordinator.js';

/**
 * This thread's row of the thread counters (see thread-counters-layout.ts), as views the Database
 * counts into: `put[partition]++` is the whole cost of counting a put. Index `partitions` of each view
 * is the cell of batches over several partitions.
 */
export class ThreadCounterRow {
  readonly put: Float64Array;
  readonly del: Float64Array;
  readonly batch: Float64Array;
  readonly get: Float64Array;
  /** The transaction counts, read and written through the shared row. */
  readonly transactions: TransactionStats;

  constructor(rows: Float64Array, slot: number, partitions: number) {
    const rowWords = threadCounterRowWords(partitions);
    if (!Number.isSafeInteger(slot) || slot < 0 || (slot + 1) * rowWords > rows.length)
      throw new RangeError(`thread slot ${slot} has no row in the thread counters`);
    const row = rows.subarray(slot * rowWords, (slot + 1) * rowWords);
    const cells = operationCells(partitions);
    const view = (operation: CountedOperation) => {
      const first = kRowOperations + countedOperations.indexOf(operation) * cells;
      return row.subarray(first, first + cells);
    };
    this.put = view('put');
    this.del = view('del');
    this.batch = view('batch');
    this.get = view('get');
    this.transactions = new SharedTransactionStats(row);
  }
}

/** TransactionStats whose fields live in a thread's shared row, so `stats.commits++` counts there. */
class SharedTransactionStats implements TransactionStats {
  readonly #row: Float64Array;
  constructor(row: Float64Array) {
    this.#row = row;
  }
  get commits(): number {
    return this.#row[kRowCommits]!;
  }
  set commits(value: number) {
    this.#row[kRowCommits] = value;
  }
  get conflicts(): number {
    return this.#row[kRowConflicts]!;
  }
  set conflicts(value: number) {
    this.#row[kRowConflicts] = value;
  }
  get retries(): number {
    return this.#row[kRowRetries]!;
  }
  set retries(value: number) {
    this.#row[kRowRetries] = value;
  }
  get failed(): number {
    return this.#row[kRowFailed]!;
  }
  set failed(value: number) {
    this.#row[kRowFailed] = value;
  }
  get crossPartitionCommits(): number {
    return this.#row[kRowCrossPartitionCommits]!;
  }
  set crossPartitionCommits(value: number) {
    this.#row[kRowCrossPartitionCommits] = value;
  }
  get pageSetWaits(): number {
    return this.#row[kRowPageSetWaits]!;
  }
  set pageSetWaits(value: number) {
    this.#row[kRowPageSetWaits] = value;
  }
}

/** Every thread's counts summed: what `stats()` and /metrics report. */
export interface ThreadCountTotals {
  transactions: TransactionStats;
  /** Per operation: the count per partition, and at index `partitions` batches over several. */
  operations: Record<CountedOperation, number[]>;
}

/**
 * Sums every row, the rows of slots that are free now included (their threads' counts stay there).
 * O(threadsMax × partitions); plain loads, so a row being written may be read one count behind.
 */
export function sumThreadCounters(
  rows: Float64Array,
  threadsMax: number,
  partitions: number,
): ThreadCountTotals {
  const rowWords = threadCounterRowWords(partitions);
  const cells = operationCells(partitions);
  const transactions: TransactionStats = {
    commits: 0,
    conflicts: 0,
    retries: 0,
    failed: 0,
    crossPartitionCommits: 0,
    pageSetWaits: 0,
  };
  const operations = Object.fromEntries(
    countedOperations.map((operation) => [operation, new Array<number>(cells).fill(0)]),
  ) as Record<CountedOperation, number[]>;
  for (let slot = 0; slot < threadsMax; slot++) {
    const base = slot * rowWords;
    transactions.commits += rows[base + kRowCommits]!;
    transactions.conflicts += rows[base + kRowConflicts]!;
    transactions.retries += rows[base + kRowRetries]!;
    transactions.failed += rows[base + kRowFailed]!;
    transactions.crossPartitionCommits += rows[base + kRowCrossPartitionCommits]!;
    transactions.pageSetWaits += rows[base + kRowPageSetWaits]!;
    for (const [index, operation] of countedOperations.entries()) {
      const first = base + kRowOperations + index * cells;
      const sums = operations[operation];
      for (let cell = 0; cell < cells; cell++) sums[cell]! += rows[first + cell]!;
    }
  }
  return { transactions, operations };
}
