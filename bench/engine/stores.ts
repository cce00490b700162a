/**
 * The stores bench:engine compares, behind one small interface. Each child process drives exactly one
 * store, so every call site in the timed loops sees one implementation and stays monomorphic: what is
 * timed is the store, not the harness.
 */
import { foldBytes, type ScanTotals } from './workload.js';

export const storeNames = ['lightning-w1', 'lightning-w2', 'lmdb'] as const;
export type StoreName = (typeof storeNames)[number];

export const storeLabels: Record<StoreName, string> = {
  'lightning-w1': 'lightning-db W=1',
  'lightning-w2': 'lightning-db W=2',
  lmdb: 'lmdb-js',
};

export const lightningPartitions = 16;

/** One owner worker's counters from db.stats().workerStats (lightning-db only). */
export interface BatchCounters {
  worker: number;
  partitions: number;
  batches: number;
  operations: number;
  batchSizeMax: number;
}

export interface EngineStore {
  /** How the store was opened and driven, printed under the table. */
  readonly setup: string;
  readonly durability: string;
  readonly loadMethod: string;
  /** Extra facts worth recording (versions, flags), keyed by name. */
  readonly facts: Record<string, string | number | boolean>;
  /** Loads keys[from..to) with values[from..to) the store's fastest way; settles when they are applied. */
  loadChunk(keys: Buffer[], values: Buffer[], from: number, to: number): Promise<unknown> | undefined;
  put(key: Buffer, value: Buffer): Promise<unknown>;
  get(key: Buffer): Uint8Array | undefined;
  /** Up to `limit` rows from `start` (inclusive) in key order, each key and value folded into totals. */
  scan(start: Buffer, limit: number, totals: ScanTotals): void;
  /**
   * Waits until everything written so far is as durable as the store makes it, and returns how long that
   * took after the last write was acknowledged (lmdb-js resolves put() at commit, the fsync may follow);
   * null when there is nothing to wait for.
   */
  settle(): Promise<number | null>;
  count(): number;
  /** Cumulative per-worker batch counters, or null for stores without owner workers. */
  batchCounters(): BatchCounters[] | null;
  close(): Promise<void>;
}

export async function openStore(store: StoreName, dir: string): Promise<EngineStore> {
  switch (store) {
    case 'lightning-w1':
      return openLightning(dir, 1);
    case 'lightning-w2':
      return openLightning(dir, 2);
    case 'lmdb':
      return openLmdb(dir);
  }
}

async function openLightning(dir: string, workers: number): Promise<EngineStore> {
  // Imported lazily so the lmdb-js child never loads the engine (and vice versa for the native addon).
  const { open } = await import('../../src/index.js');
  const db = await open(dir, { partitions: lightningPartitions, workers, durability: 'none' });
  /** Issues the chunk's puts all at once (one window of outstanding promises), then awaits them. */
  const putWindow = (keys: Buffer[], values: Buffer[], from: number, to: number): Promise<unknown> => {
    const pending = new Array<Promise<void>>(to - from);
    for (let i = from; i < to; i++) pending[i - from] = db.put(keys[i], values[i]);
    return Promise.all(pending);
  };
  return {
    setup:
      `open(dir, { partitions: ${lightningPartitions}, workers: ${workers}, durability: 'none' }); ` +
      'keys/values are Buffer views; get() returns a copy; range({ gte, limit })',
    durability:
      "durability 'none': a put resolves once applied and written to its partition's log, without fdatasync",
    loadMethod: 'db.put() in windows of 10,000 outstanding promises, then await Promise.all',
    facts: { workers, partitions: lightningPartitions },
    loadChunk: putWindow,
    put: (key, value) => db.put(key, value),
    get: (key) => db.get(key),
    scan: (start, limit, totals) => {
      for (const [key, value] of db.range({ gte: start, limit })) {
        totals.rows++;
        totals.hash = foldBytes(foldBytes(totals.hash, key), value);
      }
    },
    // Nothing to wait for: with durability 'none' an applied write is as durable as it gets.
    settle: () => Promise.resolve(null),
    count: () => db.stats().entries,
    batchCounters: () =>
      db.stats().workerStats.map((worker) => ({
        worker: worker.worker,
        partitions: worker.partitions.length,
        batches: worker.batches,
        operations: worker.operations,
        batchSizeMax: worker.batchSizeMax,
      })),
    close: () => db.close(),
  };
}

async function openLmdb(dir: string): Promise<EngineStore> {
  const lmdb = await import('lmdb');
  // keyEncoding 'binary': keys are raw bytes compared like memcmp, the same order as lightning-db, so the
  // range checksum must match. encoding 'binary': values are stored as the raw 100 bytes (the default
  // msgpack would add a header, and getBinary would then return different bytes).
  const db = lmdb.open<Buffer, Buffer>({
    path: dir,
    compression: false,
    keyEncoding: 'binary',
    encoding: 'binary',
  });
  return {
    setup:
      "open({ path, compression: false, keyEncoding: 'binary', encoding: 'binary' }); " +
      'get is getBinary() (returns a copy); range is getRange({ start, limit })',
    durability:
      'lmdb-js defaults (noSync unset = false, overlappingSync = true on Linux): every commit is fsynced; ' +
      'transactionSync flushes before returning, put() resolves at commit and its fsync may follow (db.flushed)',
    // db.transaction(() => puts) was the other candidate, but on this machine (lmdb-js 3.5.6, Node 20) its
    // promise never settled, and every later put() hung behind it; transactionSync has no such hand-off
    // to the write thread.
    loadMethod:
      'db.putSync() inside db.transactionSync() (default flags: commit and flush before returning), 10,000 puts per transaction',
    facts: { v8AccelerationEnabled: lmdb.v8AccelerationEnabled },
    loadChunk: (keys, values, from, to) => {
      db.transactionSync(() => {
        for (let i = from; i < to; i++) db.putSync(keys[i], values[i]);
      });
      return undefined;
    },
    put: (key, value) => db.put(key, value),
    get: (key) => db.getBinary(key),
    scan: (start, limit, totals) => {
      for (const { key, value } of db.getRange({ start, limit })) {
        totals.rows++;
        totals.hash = foldBytes(foldBytes(totals.hash, key), value);
      }
    },
    settle: async () => {
      const start = performance.now();
      await db.flushed;
      return (performance.now() - start) / 1000;
    },
    count: () => db.getCount(),
    batchCounters: () => null,
    close: () => db.close(),
  };
}
