/**
 * The stores the YCSB suite compares, behind one small interface. A child process drives exactly one
 * store, so every call in the timed loop has one target and stays monomorphic: what is timed is the
 * store (plus the same key cut and checksum for everyone), not the harness.
 */
import type { KeyTable } from './keys.js';

export const storeNames = [
  'lightning-sync',
  'lightning-relaxed',
  'lightning-paged',
  'lmdb',
  'level',
  'sqlite',
  'map',
] as const;
export type StoreName = (typeof storeNames)[number];
/**
 * The stores a run without --stores compares (npm run bench, bench:quick): all but lightning-paged,
 * which is asked for by name (it is about data larger than its memory, and its child takes seconds
 * even with --quick).
 */
export const defaultStoreNames: readonly StoreName[] = storeNames.filter(
  (name) => name !== 'lightning-paged',
);

export const storeLabels: Record<StoreName, string> = {
  'lightning-sync': "lightning-db 'sync'",
  'lightning-relaxed': "lightning-db 'relaxed'",
  'lightning-paged': "lightning-db paged 'sync'",
  lmdb: 'lmdb-js',
  level: 'classic-level',
  sqlite: 'better-sqlite3',
  map: 'Map',
};

/** The durability column: what an acknowledged write has reached. */
export const storeDurability: Record<StoreName, string> = {
  'lightning-sync': 'fdatasync before ack',
  'lightning-relaxed': 'write(2) before ack, fdatasync every 100 ms',
  'lightning-paged': "fdatasync before ack (as 'sync'; pages written back in page sets, each fdatasync'd)",
  lmdb: 'commit before ack, fsync right after (overlappingSync)',
  level: 'write(2) before ack, never synced',
  sqlite: 'WAL write(2) at commit, synced at checkpoints (synchronous=NORMAL)',
  map: 'memory only',
};

export function isLightning(store: StoreName): boolean {
  return store === 'lightning-sync' || store === 'lightning-relaxed' || store === 'lightning-paged';
}

/**
 * Stores closed and opened again (timed) between the load and the first workload: a paged database's
 * open does not load its data, which is what `reopen ms` shows; its workloads then start on an empty
 * pool, as after a restart.
 */
export function reopensAfterLoad(store: StoreName): boolean {
  return store === 'lightning-paged';
}

/** Bytes a record is estimated to take in a store beside its key and value (tree cells, headers). */
export const recordOverheadBytes = 30;
/** lightning-db's least frames per partition for memoryMaxBytes (docs/buffer-pool.md). */
export const framesPerPartitionMin = 64;

/** The loaded data's estimated size: records × (key + value + recordOverheadBytes). */
export function estimatedDataBytes(records: number, keyBytes: number, valueSize: number): number {
  return records * (keyBytes + valueSize + recordOverheadBytes);
}

/**
 * lightning-paged's memoryMaxBytes: `fraction` of the estimated data, rounded up to whole pages in
 * every partition, and at least framesPerPartitionMin pages per partition.
 */
export function pagedMemoryMaxBytes(
  dataBytes: number,
  fraction: number,
  partitions: number,
  pageSizeBytes: number,
): number {
  const frames = Math.max(
    framesPerPartitionMin,
    Math.ceil((dataBytes * fraction) / partitions / pageSizeBytes),
  );
  return frames * partitions * pageSizeBytes;
}

export interface StoreOptions {
  dir: string;
  keys: KeyTable;
  /** lightning-db only: owner workers (undefined = the engine's default, one per CPU). */
  workers: number | undefined;
  /** lightning-paged only: the estimated size of the loaded data (estimatedDataBytes). */
  dataBytes: number;
  /** lightning-paged only: memoryMaxBytes as a fraction of dataBytes (--memory-fraction). */
  memoryFraction: number;
}

/** A buffer pool's counters summed over the partitions (lightning-db's stats().bufferPools). */
export interface PoolCounters {
  misses: number;
  evictions: number;
  /** Page reads by latency: counts at or below each of readBoundsMicros, then the rest. */
  readBuckets: number[];
  readBoundsMicros: number[];
  residentPages: number;
  dirtyPages: number;
  framesMax: number;
  pagesAllocated: number;
}

/**
 * A scan result packed into one number, so a synchronous scan allocates nothing: rows * 2^32 + hash.
 * The store also writes the last key it returned into `lastKeys` at `lastKeyOffset`.
 */
export function packScan(rows: number, hash: number): number {
  return rows * 0x1_0000_0000 + (hash >>> 0);
}

export interface YcsbStore {
  /** How the store is opened and driven, printed under the tables. */
  readonly setup: string;
  /** Facts worth recording (versions, flags). */
  readonly facts: Record<string, string | number | boolean>;
  /** True: read() and scan() answer synchronously; false: use readAsync() and scanAsync(). */
  readonly syncReads: boolean;
  read(key: number): Uint8Array | undefined;
  readAsync(key: number): Promise<Uint8Array | undefined>;
  /**
   * Puts `value` (a view the store must copy) under key `key`. Returns undefined when the write is
   * done on return, or a promise that resolves when the store acknowledges it.
   */
  write(key: number, value: Buffer): Promise<unknown> | undefined;
  /** Up to `limit` rows from key `key` on, in key order, every key and value byte folded: packScan(). */
  scan(key: number, limit: number, lastKeys: Buffer, lastKeyOffset: number): number;
  scanAsync(key: number, limit: number, lastKeys: Buffer, lastKeyOffset: number): Promise<number>;
  /** Called after each window's operations are issued (better-sqlite3 commits its transaction here). */
  endWindow(): void;
  /** A store over buffer pools: their counters now, summed over partitions (untimed, between streams). */
  poolCounters?: () => PoolCounters;
  /** Entries in the store (untimed, after the run). */
  count(): Promise<number>;
  close(): Promise<void>;
}

export function notSupported(what: string): never {
  throw new Error(`${what} is not how this store is driven`);
}

/** FNV-1a over bytes: folds every byte of a value or key into the running hash. */
export function foldBytes(hash: number, bytes: Uint8Array): number {
  let h = hash;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h;
}

/** The same fold over a latin1 string's char codes: equal to foldBytes of its bytes. */
export function foldString(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

export const foldSeed = 0x811c9dc5;

export async function openStore(store: StoreName, options: StoreOptions): Promise<YcsbStore> {
  // Each adapter is imported lazily, so a child loads only its own store's native addon.
  switch (store) {
    case 'lightning-sync':
      return (await import('./store-lightning.js')).openLightning(options, 'sync');
    case 'lightning-relaxed':
      return (await import('./store-lightning.js')).openLightning(options, 'relaxed');
    case 'lightning-paged':
      return (await import('./store-lightning.js')).openLightningPaged(options);
    case 'lmdb':
      return (await import('./store-lmdb.js')).openLmdb(options);
    case 'level':
      return (await import('./store-level.js')).openLevel(options);
    case 'sqlite':
      return (await import('./store-sqlite.js')).openSqlite(options);
    case 'map':
      return (await import('./store-map.js')).openMap(options);
  }
}
