/**
 * The stores bench:durability compares, behind one small interface. Each child process drives exactly
 * one store, so the timed loop sees one implementation of writeWindow() and stays monomorphic.
 */
import { openLevel } from '../stores/level.js';
import { openLightning } from '../stores/lightning.js';
import { openLmdb } from '../stores/lmdb.js';
import type { DurabilityClass, KvPeer } from '../stores/peer.js';

export const lightningPartitions = 16;

export const storeNames = [
  'lightning-sync',
  'lightning-relaxed',
  'lightning-none',
  'lmdb-sync',
  'lmdb',
  'lmdb-flushed',
  'lmdb-nosync',
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
  'lmdb-sync': 'lmdb-js put() sync',
  lmdb: 'lmdb-js put()',
  'lmdb-flushed': 'lmdb-js put()+flushed',
  'lmdb-nosync': 'lmdb-js put() noSync',
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
  'lmdb-sync': true,
  lmdb: false,
  'lmdb-flushed': true,
  'lmdb-nosync': false,
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
  'lmdb-sync': 'committed + fsync done',
  lmdb: 'committed; fsync follows',
  'lmdb-flushed': 'committed + fsync done',
  'lmdb-nosync': 'written, not synced',
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
      return openLightningStore(dir, 'sync');
    case 'lightning-relaxed':
      return openLightningStore(dir, 'relaxed');
    case 'lightning-none':
      return openLightningStore(dir, 'none');
    case 'lmdb-sync':
      return openLmdbStore(dir, 'sync', false);
    case 'lmdb':
      return openLmdbStore(dir, 'overlapped', false);
    case 'lmdb-flushed':
      return openLmdbStore(dir, 'overlapped', true);
    case 'lmdb-nosync':
      return openLmdbStore(dir, 'nosync', false);
    case 'level-sync':
      return openLevelStore(dir, true, 'put');
    case 'level':
      return openLevelStore(dir, false, 'put');
    case 'level-batch-sync':
      return openLevelStore(dir, true, 'batch');
    case 'level-batch':
      return openLevelStore(dir, false, 'batch');
  }
}

type LightningDurability = 'sync' | 'relaxed' | 'none';

/** Issues keys[from..to) as one window of put() promises and resolves when all are acknowledged. */
function putWindow(
  peer: KvPeer,
  keys: Buffer[],
  values: Buffer[],
  from: number,
  to: number,
): Promise<unknown> {
  const pending = new Array<Promise<unknown>>(to - from);
  for (let i = from; i < to; i++) pending[i - from] = peer.put(keys[i]!, values[i]!);
  return Promise.all(pending);
}

/** A shared-adapter peer, one window of put() promises at a time. */
function peerStore(peer: KvPeer, method: string, awaitFlush: boolean): DurabilityStore {
  return {
    setup: peer.setup,
    durability: awaitFlush
      ? `${peer.acknowledgement}. Each window then waits for db.flushed (the commit fsynced), so an acknowledged window is durable`
      : peer.acknowledgement,
    method,
    facts: peer.facts,
    writeWindow: awaitFlush
      ? async (keys, values, from, to) => {
          await putWindow(peer, keys, values, from, to);
          await peer.settle();
        }
      : (keys, values, from, to) => putWindow(peer, keys, values, from, to),
    readMany: (keys) => Promise.resolve(keys.map((key) => peer.get(key))),
    count: () => Promise.resolve(peer.count()),
    settle: () => peer.settle(),
    batchCounters: () => {
      const workers = peer.batchCounters();
      if (workers === null) return null;
      let batches = 0;
      let operations = 0;
      for (const worker of workers) {
        batches += worker.batches;
        operations += worker.operations;
      }
      return { batches, operations };
    },
    close: () => peer.close(),
  };
}

async function openLightningStore(dir: string, durability: LightningDurability): Promise<DurabilityStore> {
  const peer = await openLightning({
    dir,
    durability,
    workers: lightningWorkers,
    partitions: lightningPartitions,
  });
  return peerStore(
    peer,
    'db.put(key, value) for each key of the window, then await Promise.all of the window',
    false,
  );
}

/**
 * lmdb-js through the shared adapter. put() calls made in one event turn go into one transaction
 * (eventTurnBatching, on by default), so a window of 1,000 put() calls is one commit. 'sync'
 * (overlappingSync: false) resolves put() after that commit's fsync; 'overlapped' (the defaults) at the
 * commit, the fsync following; `awaitFlush` then adds `await db.flushed` after every window, so the
 * caller waits for durability as a lightning-db 'sync' caller does. 'nosync' never fsyncs.
 */
async function openLmdbStore(
  dir: string,
  durability: DurabilityClass,
  awaitFlush: boolean,
): Promise<DurabilityStore> {
  const peer = await openLmdb(dir, durability);
  return peerStore(
    peer,
    'db.put(key, value) for each key of the window (same event turn = one transaction), then await Promise.all' +
      (awaitFlush ? ', then await db.flushed' : ''),
    awaitFlush,
  );
}

/**
 * classic-level (LevelDB) through the shared adapter. 'put': one db.put(key, value, { sync }) per key,
 * the same window shape as the other stores; each put is its own LevelDB write on the libuv thread
 * pool, and LevelDB merges writes that queue up at the same time into one log write (and, with sync,
 * one fsync). 'batch': one chained db.batch() per window, written with { sync }: the documented bulk
 * path (one log write per window).
 */
async function openLevelStore(dir: string, sync: boolean, mode: 'put' | 'batch'): Promise<DurabilityStore> {
  const peer = await openLevel(dir, sync ? 'sync' : 'nosync');
  const putWindow = (keys: Buffer[], values: Buffer[], from: number, to: number): Promise<unknown> => {
    const pending = new Array<Promise<unknown>>(to - from);
    for (let i = from; i < to; i++) pending[i - from] = peer.put(keys[i]!, values[i]!);
    return Promise.all(pending);
  };
  return {
    setup: peer.setup,
    durability: peer.acknowledgement,
    method:
      mode === 'put'
        ? `db.put(key, value, { sync: ${sync} }) for each key of the window, then await Promise.all of the window`
        : `chained b = db.batch(); b.put(key, value) for each key of the window; await b.write({ sync: ${sync} })`,
    facts: { ...peer.facts, mode },
    writeWindow:
      mode === 'put' ? putWindow : (keys, values, from, to) => peer.writeBatch(keys, values, from, to),
    readMany: (keys) => peer.getMany(keys),
    count: () => peer.count(),
    settle: () => Promise.resolve(null),
    batchCounters: () => null,
    close: () => peer.close(),
  };
}
