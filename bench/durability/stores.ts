/**
 * The stores bench:durability compares, behind one small interface. Each child process drives exactly
 * one store, so the timed loop sees one implementation of writeWindow() and stays monomorphic.
 */
import { lightningPartitions, openStore } from '../engine/stores.js';

export { lightningPartitions };

export const storeNames = [
  'lightning-sync',
  'lightning-relaxed',
  'lightning-none',
  'lmdb',
  'lmdb-flushed',
  'level-sync',
  'level',
  'level-batch-sync',
  'level-batch',
] as const;
export type StoreName = (typeof storeNames)[number];

export const storeLabels: Record<StoreName, string> = {
  'lightning-sync': "lightning-db 'sync'",
  'lightning-relaxed': "lightning-db 'relaxed'",
  'lightning-none': "lightning-db 'none'",
  lmdb: 'lmdb-js put()',
  'lmdb-flushed': 'lmdb-js put()+flushed',
  'level-sync': 'classic-level put sync',
  level: 'classic-level put',
  'level-batch-sync': 'classic-level batch sync',
  'level-batch': 'classic-level batch',
};

/** When a store's acknowledgement means the write survives a machine crash (power loss). */
export const ackIsSynced: Record<StoreName, boolean> = {
  'lightning-sync': true,
  'lightning-relaxed': false,
  'lightning-none': false,
  lmdb: false,
  'lmdb-flushed': true,
  'level-sync': true,
  level: false,
  'level-batch-sync': true,
  'level-batch': false,
};

/** What an acknowledged write has reached, in a few words for the table. */
export const ackShort: Record<StoreName, string> = {
  'lightning-sync': "fdatasync'd",
  'lightning-relaxed': 'written; synced <= 100 ms',
  'lightning-none': 'written, not synced',
  lmdb: 'committed; fsync follows',
  'lmdb-flushed': 'committed + fsync done',
  'level-sync': "logged + fdatasync'd",
  level: 'logged (write), not synced',
  'level-batch-sync': "logged + fdatasync'd",
  'level-batch': 'logged (write), not synced',
};

/** W = 2 owner workers for every lightning-db store, as the brief asks. */
export const lightningWorkers = 2;

export interface DurabilityStore {
  /** How the store was opened. */
  readonly setup: string;
  /** What an acknowledged write means for durability, in full. */
  readonly durability: string;
  /** How one window of writes is issued and awaited. */
  readonly method: string;
  /** Extra facts worth recording (versions, flags), keyed by name. */
  readonly facts: Record<string, string | number | boolean>;
  /** Issues the writes keys[from..to) as one window; resolves once the store acknowledged all of them. */
  writeWindow(keys: Buffer[], values: Buffer[], from: number, to: number): Promise<unknown>;
  readMany(keys: Buffer[]): Promise<(Uint8Array | undefined)[]>;
  count(): Promise<number>;
  /**
   * Waits until the store says everything acknowledged is durable, and returns how long that took after
   * the last acknowledgement; null when the store offers nothing to wait for (or nothing is left).
   */
  settle(): Promise<number | null>;
  /** lightning-db only: owner batches (one pass over the rings = one log write) and operations so far. */
  batchCounters(): { batches: number; operations: number } | null;
  close(): Promise<void>;
}

export async function openDurabilityStore(store: StoreName, dir: string): Promise<DurabilityStore> {
  switch (store) {
    case 'lightning-sync':
      return openLightning(dir, 'sync');
    case 'lightning-relaxed':
      return openLightning(dir, 'relaxed');
    case 'lightning-none':
      return openLightning(dir, 'none');
    case 'lmdb':
      return openLmdb(dir, false);
    case 'lmdb-flushed':
      return openLmdb(dir, true);
    case 'level-sync':
      return openLevel(dir, true, 'put');
    case 'level':
      return openLevel(dir, false, 'put');
    case 'level-batch-sync':
      return openLevel(dir, true, 'batch');
    case 'level-batch':
      return openLevel(dir, false, 'batch');
  }
}

type LightningDurability = 'sync' | 'relaxed' | 'none';

const lightningDurabilityText: Record<LightningDurability, string> = {
  sync: "durability 'sync' (the default): a put resolves after its owner batch is written to the owner's log and fdatasync'd (group commit: per owner batch, one write and one fdatasync, however many partitions it touched)",
  relaxed:
    "durability 'relaxed', syncIntervalMs 100 (the default): a put resolves after write(2) of its batch; the owner fdatasyncs the logs every 100 ms",
  none: "durability 'none': a put resolves after write(2) of its batch; the engine does not sync after writes (only when it starts or rotates a log segment, and at close); the OS writes the pages back when it likes",
};

async function openLightning(dir: string, durability: LightningDurability): Promise<DurabilityStore> {
  // Imported lazily so the lmdb-js and classic-level children never load the engine.
  const { open } = await import('../../src/index.js');
  const db = await open(dir, { partitions: lightningPartitions, workers: lightningWorkers, durability });
  return {
    setup: `open(dir, { partitions: ${lightningPartitions}, workers: ${lightningWorkers}, durability: '${durability}' })`,
    durability: lightningDurabilityText[durability],
    method: 'db.put(key, value) for each key of the window, then await Promise.all of the window',
    facts: { durability, workers: lightningWorkers, partitions: lightningPartitions },
    writeWindow: (keys, values, from, to) => {
      const pending = new Array<Promise<void>>(to - from);
      for (let i = from; i < to; i++) pending[i - from] = db.put(keys[i], values[i]);
      return Promise.all(pending);
    },
    readMany: (keys) => Promise.resolve(keys.map((key) => db.get(key))),
    count: () => Promise.resolve(db.stats().entries),
    settle: () => Promise.resolve(null),
    batchCounters: () => {
      let batches = 0;
      let operations = 0;
      for (const worker of db.stats().workerStats) {
        batches += worker.batches;
        operations += worker.operations;
      }
      return { batches, operations };
    },
    close: () => db.close(),
  };
}

/**
 * lmdb-js, opened exactly as bench:engine opens it (its store is reused). put() calls made in one event
 * turn go into one transaction (eventTurnBatching, on by default), so a window of 1,000 put() calls is
 * one commit. With overlappingSync (the Linux default) put()'s promise resolves when the transaction is
 * committed and visible; its fsync runs after, overlapped with the next transactions, and db.flushed
 * resolves when it is done. `awaitFlush` adds `await db.flushed` after every window: the caller then
 * waits for durability, as a lightning-db 'sync' caller does.
 */
async function openLmdb(dir: string, awaitFlush: boolean): Promise<DurabilityStore> {
  const lmdbPackage = await import('lmdb');
  const store = await openStore('lmdb', dir);
  const putWindow = (keys: Buffer[], values: Buffer[], from: number, to: number): Promise<unknown[]> => {
    const pending = new Array<Promise<unknown>>(to - from);
    for (let i = from; i < to; i++) pending[i - from] = store.put(keys[i], values[i]);
    return Promise.all(pending);
  };
  return {
    setup: `${store.setup.split(';')[0]} (the bench:engine store)`,
    durability: awaitFlush
      ? 'lmdb-js defaults (noSync unset, overlappingSync on): each window waits for its put() promises (commit) ' +
        'and then for db.flushed (the commit fsynced), so an acknowledged window is durable'
      : 'lmdb-js defaults (noSync unset, overlappingSync on): put() resolves when its transaction commits ' +
        '(visible, in the OS page cache); the fsync of that commit follows, overlapped with the next ' +
        'transactions (db.flushed). The acknowledgement does not wait for the fsync',
    method: awaitFlush
      ? 'db.put(key, value) for each key of the window (same event turn = one transaction), await Promise.all, then await db.flushed'
      : 'db.put(key, value) for each key of the window (same event turn = one transaction), then await Promise.all. ' +
        'Not db.transaction(): on this machine its callback never runs and every later write hangs (bench/README.md)',
    facts: { v8AccelerationEnabled: lmdbPackage.v8AccelerationEnabled },
    writeWindow: awaitFlush
      ? async (keys, values, from, to) => {
          await putWindow(keys, values, from, to);
          await store.settle();
        }
      : putWindow,
    readMany: (keys) => Promise.resolve(keys.map((key) => store.get(key))),
    count: () => Promise.resolve(store.count()),
    settle: () => store.settle(),
    batchCounters: () => null,
    close: () => store.close(),
  };
}

/**
 * classic-level (LevelDB). 'put': one db.put(key, value, { sync }) per key, the same window shape as the
 * other stores; each put is its own LevelDB write on the libuv thread pool, and LevelDB merges writes
 * that queue up at the same time into one log write (and, with sync, one fsync). 'batch': one chained
 * db.batch() per window, written with { sync }: the documented bulk path (one log write per window).
 */
async function openLevel(dir: string, sync: boolean, mode: 'put' | 'batch'): Promise<DurabilityStore> {
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const writeOptions = { sync };
  const putWindow = (keys: Buffer[], values: Buffer[], from: number, to: number): Promise<unknown> => {
    const pending = new Array<Promise<void>>(to - from);
    for (let i = from; i < to; i++) pending[i - from] = db.put(keys[i], values[i], writeOptions);
    return Promise.all(pending);
  };
  const batchWindow = (keys: Buffer[], values: Buffer[], from: number, to: number): Promise<void> => {
    const batch = db.batch();
    for (let i = from; i < to; i++) batch.put(keys[i], values[i]);
    return batch.write(writeOptions);
  };
  return {
    setup:
      "new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' }) + await db.open(); other options default (compression on, writeBufferSize 4 MiB)",
    durability: sync
      ? 'sync: true: LevelDB appends the write to its log and syncs the log (fdatasync) before the promise resolves'
      : 'sync: false (the default): the write is appended to the log with write(2) and acknowledged; LevelDB does not sync the log',
    method:
      mode === 'put'
        ? `db.put(key, value, { sync: ${sync} }) for each key of the window, then await Promise.all of the window`
        : `chained b = db.batch(); b.put(key, value) for each key of the window; await b.write({ sync: ${sync} })`,
    facts: {
      sync,
      mode,
      uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    },
    writeWindow: mode === 'put' ? putWindow : batchWindow,
    readMany: (keys) => db.getMany(keys),
    count: async () => (await db.keys().all()).length,
    settle: () => Promise.resolve(null),
    batchCounters: () => null,
    close: () => db.close(),
  };
}
