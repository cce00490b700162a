/**
 * What every benchmark needs from a key-value peer, in one shape: the adapters in this folder open a
 * peer at a named durability class and declare what it supports, and every benchmark (ycsb, engine,
 * tx, durability) drives a peer through them, so one store is never driven two ways in two benchmarks.
 *
 * Keys and values are bytes (`Buffer` views the peer must copy). Each child process opens one peer, so
 * every call site in a timed loop sees one implementation and stays monomorphic.
 */

/**
 * The durability classes a row compares, named for what an acknowledged write has reached:
 * - 'sync': the write is on stable storage (fdatasync/fsync done) before it is acknowledged;
 * - 'overlapped': committed and visible when acknowledged, its fsync follows (lmdb-js's default
 *   overlappingSync); durable once `settle()` resolves;
 * - 'nosync': handed to the OS (write(2) or a memory map) when acknowledged and never synced by the
 *   store on the write path: survives a crash of the process, not a power loss.
 */
export const durabilityClasses = ['sync', 'overlapped', 'nosync'] as const;
export type DurabilityClass = (typeof durabilityClasses)[number];

export const durabilityClassText: Record<DurabilityClass, string> = {
  sync: 'fsynced before the acknowledgement',
  overlapped: 'committed at the acknowledgement, fsync follows',
  nosync: 'written to the OS at the acknowledgement, not synced',
};

/** What a peer supports, so a benchmark runs only the rows it can run honestly and says why not. */
export interface PeerCapabilities {
  readonly durability: readonly DurabilityClass[];
  /** 'sync': get() answers on the calling thread; 'async': only getAsync(). */
  readonly reads: 'sync' | 'async';
  /** 'sync': scan() answers on the calling thread; 'async': only scanAsync(). */
  readonly scans: 'sync' | 'async';
  /**
   * 'concurrent': transaction() returns a promise and many may be outstanding at once;
   * 'serial': one transaction at a time (a synchronous API); 'none': no transactions.
   */
  readonly transactions: 'concurrent' | 'serial' | 'none';
}

/** Receives the rows of a scan in key order; one object per benchmark, so the call stays monomorphic. */
export interface RowSink {
  row(key: Uint8Array, value: Uint8Array): void;
}

/** Reads and writes inside a transaction: reads see the transaction's own writes. */
export interface TxAccess {
  get(key: Buffer): Uint8Array | undefined;
  put(key: Buffer, value: Buffer): void;
}

/** One owner worker's cumulative counters (lightning-db's db.stats().workerStats). */
export interface BatchCounters {
  worker: number;
  partitions: number;
  batches: number;
  operations: number;
  batchSizeMax: number;
}

/** lightning-db's stats().transactions. */
export interface TxCounters {
  commits: number;
  conflicts: number;
  retries: number;
  failed: number;
  crossPartitionCommits: number;
}

export interface KvPeer {
  readonly capabilities: PeerCapabilities;
  readonly durabilityClass: DurabilityClass;
  /** How the peer was opened, printed under the tables. */
  readonly setup: string;
  /** What an acknowledged write has reached, in full. */
  readonly acknowledgement: string;
  /** How transactions run (the API and how many are outstanding). */
  readonly transactionMethod: string;
  /** Facts worth recording (versions, flags). */
  readonly facts: Record<string, string | number | boolean>;
  get(key: Buffer): Uint8Array | undefined;
  /** Resolves when the write is acknowledged (see `acknowledgement`). */
  put(key: Buffer, value: Buffer): Promise<unknown>;
  /** Up to `limit` rows from `start` (inclusive) in key order, each passed to `sink`; returns the rows. */
  scan(start: Buffer, limit: number, sink: RowSink): number;
  /** Runs `body` atomically; resolves with its result once the commit is acknowledged. */
  transaction<T>(body: (tx: TxAccess) => T): Promise<T>;
  /** A synchronous transaction API beside the promise one (lmdb-js transactionSync), or null. */
  readonly transactionSync: (<T>(body: (tx: TxAccess) => T) => T) | null;
  /**
   * Waits until everything acknowledged is as durable as the class promises ('overlapped': until the
   * fsync is done); seconds waited, or null when there is nothing to wait for.
   */
  settle(): Promise<number | null>;
  count(): number;
  /** Per owner worker, or null for peers without owner workers. */
  batchCounters(): BatchCounters[] | null;
  transactionCounters(): TxCounters | null;
  close(): Promise<void>;
}

export function unsupported(peer: string, what: string): never {
  throw new Error(`${peer} does not support ${what}`);
}
