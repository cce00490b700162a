import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Transaction and snapshot metrics, from `stats().transactions` and `stats().mvcc`. They are read by
 * feature test rather than through the DatabaseStats type, so that the admin server works with a
 * build whose stats carry them and with one whose stats do not (then these metrics are absent, not 0).
 */

/** `stats().transactions`: counted by every thread, summed from the thread counters. */
export interface TransactionCounts {
  commits: number;
  conflicts: number;
  retries: number;
  failed: number;
  crossPartitionCommits: number;
  /** Absent from builds that do not count them. */
  pageSetWaits?: number;
}

/** `stats().mvcc`. */
export interface MvccCounts {
  timestamp: number;
  openSnapshots: number;
  leakedSnapshots: number;
  versionsRetained: number;
}

export interface TransactionReading {
  transactions: TransactionCounts | null;
  mvcc: MvccCounts | null;
}

/** The transaction and MVCC parts of a stats() result, or null if it has neither. */
export function readTransactionStats(stats: object): TransactionReading | null {
  let transactions: TransactionCounts | null =
    'transactions' in stats
      ? numbers(stats.transactions, ['commits', 'conflicts', 'retries', 'failed', 'crossPartitionCommits'])
      : null;
  if (transactions !== null && 'transactions' in stats) {
    const waits = numbers(stats.transactions, ['pageSetWaits']);
    if (waits !== null) transactions = { ...transactions, ...waits };
  }
  const mvcc =
    'mvcc' in stats
      ? numbers(stats.mvcc, ['timestamp', 'openSnapshots', 'leakedSnapshots', 'versionsRetained'])
      : null;
  if (transactions === null && mvcc === null) return null;
  return { transactions, mvcc };
}

/** The named fields of `value` as numbers (bigints converted), or null unless every one is there. */
function numbers<K extends string>(value: unknown, keys: readonly K[]): Record<K, number> | null {
  if (typeof value !== 'object' || value === null) return null;
  const fields = value as Partial<Record<K, unknown>>;
  const out = {} as Record<K, number>;
  for (const key of keys) {
    const field = fields[key];
    if (typeof field === 'number') out[key] = field;
    else if (typeof field === 'bigint') out[key] = Number(field);
    else return null;
  }
  return out;
}

/** Registered on the first scrape whose stats carry transactions or MVCC counts. */
export class TransactionMetrics {
  readonly #commits: Counter;
  readonly #conflicts: Counter;
  readonly #retries: Counter;
  readonly #failed: Counter;
  readonly #crossPartition: Counter;
  readonly #pageSetWaits: Counter;
  readonly #openSnapshots: Gauge;
  readonly #leakedSnapshots: Counter;
  readonly #versionsRetained: Gauge;
  readonly #timestamp: Gauge;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) => new Counter({ name, help, registers: [registry] });
    const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
    this.#commits = counter('lightning_transaction_commits_total', 'Transactions committed (all threads)');
    this.#conflicts = counter(
      'lightning_transaction_conflicts_total',
      'Transaction attempts aborted by a conflict (all threads)',
    );
    this.#retries = counter(
      'lightning_transaction_retries_total',
      'Transaction attempts retried after a conflict (all threads)',
    );
    this.#failed = counter(
      'lightning_transaction_failed_total',
      'Transactions that rejected: retries exhausted or an error thrown by the function (all threads)',
    );
    this.#crossPartition = counter(
      'lightning_transaction_cross_partition_commits_total',
      'Transactions committed across partitions by two-phase commit (all threads)',
    );
    this.#pageSetWaits = counter(
      'lightning_transaction_page_set_waits_total',
      'Transaction attempts retried because a buffer pool had to write a page set first; not conflicts (all threads)',
    );
    this.#openSnapshots = gauge(
      'lightning_snapshots_open',
      'Snapshots registered and not released, all threads',
    );
    this.#leakedSnapshots = counter(
      'lightning_snapshots_leaked_total',
      'Snapshots garbage-collected without release() (serving thread); their versions were reclaimed',
    );
    this.#versionsRetained = gauge(
      'lightning_versions_retained',
      'Old versions kept for open snapshots, all partitions',
    );
    this.#timestamp = gauge('lightning_commit_timestamp', 'The commit-timestamp oracle');
  }

  /** Copies a reading in; the registry reset every metric just before. */
  set({ transactions, mvcc }: TransactionReading): void {
    if (transactions !== null) {
      this.#commits.inc(transactions.commits);
      this.#conflicts.inc(transactions.conflicts);
      this.#retries.inc(transactions.retries);
      this.#failed.inc(transactions.failed);
      this.#crossPartition.inc(transactions.crossPartitionCommits);
      if (transactions.pageSetWaits !== undefined) this.#pageSetWaits.inc(transactions.pageSetWaits);
    }
    if (mvcc !== null) {
      this.#openSnapshots.set(mvcc.openSnapshots);
      this.#leakedSnapshots.inc(mvcc.leakedSnapshots);
      this.#versionsRetained.set(mvcc.versionsRetained);
      this.#timestamp.set(mvcc.timestamp);
    }
  }
}
