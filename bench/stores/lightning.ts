/**
 * lightning-db through its public API (`open()` from src/index.js; dist/src/index.js when the benchmark
 * runs compiled): synchronous `get()` and `range()` on the calling thread, `put()` and `transaction()`
 * promises that may be outstanding by the thousand, committed by the partition-owner workers.
 */
import type { Database, Durability } from '../../src/index.js';
import type { DurabilityClass, KvPeer, PeerCapabilities, TxAccess } from './peer.js';

export const lightningCapabilities: PeerCapabilities = {
  durability: ['sync', 'nosync'],
  reads: 'sync',
  scans: 'sync',
  transactions: 'concurrent',
};

/**
 * The engine's mode for each class. 'nosync' is 'none' (write(2), never synced on the write path),
 * lmdb-js noSync's equivalent; 'relaxed' (synced every 100 ms) can be asked for by name.
 */
export const lightningDurabilityOf: Record<'sync' | 'nosync', Durability> = {
  sync: 'sync',
  nosync: 'none',
};

const acknowledgementText: Record<Durability, string> = {
  replicated:
    "durability 'replicated': as 'sync', and the batch's records are acknowledged by a majority of the " +
    "replication log's servers before the owner writes them",
  sync:
    "durability 'sync': a write or transaction resolves after its owner batch is written to the owner's log " +
    "and fdatasync'd (group commit: one write and one fdatasync per owner batch); a cross-partition " +
    'transaction after its prepare records and its decision record are',
  relaxed:
    "durability 'relaxed' (syncIntervalMs 100): a write resolves after write(2) of its batch; the owners " +
    'fdatasync their logs every 100 ms',
  none:
    "durability 'none': a write resolves after write(2) of its batch to the owner's log; the engine does not " +
    'sync on the write path (only when it starts or rotates a log segment, and at close)',
};

export interface LightningPeerOptions {
  dir: string;
  durability: Durability;
  /** Owner workers; undefined = the engine's default (one per CPU). */
  workers?: number | undefined;
  /** Partitions; undefined = the engine's default (16). */
  partitions?: number | undefined;
}

export function lightningClassOf(durability: Durability): DurabilityClass {
  return durability === 'sync' ? 'sync' : 'nosync';
}

export async function openLightning(options: LightningPeerOptions): Promise<KvPeer> {
  // Imported lazily so the other peers' children never load the engine.
  const { open } = await import('../../src/index.js');
  const openOptions: { durability: Durability; workers?: number; partitions?: number } = {
    durability: options.durability,
  };
  if (options.partitions !== undefined) openOptions.partitions = options.partitions;
  if (options.workers !== undefined) openOptions.workers = options.workers;
  const db = await open(options.dir, openOptions);
  const stats = db.stats();
  return {
    capabilities: lightningCapabilities,
    durabilityClass: lightningClassOf(options.durability),
    setup:
      `open(dir, ${JSON.stringify(openOptions)}): ${stats.partitions} partitions, ${stats.workers} owner workers; ` +
      'keys and values are Buffer views; get(key) returns a copy; range({ gte, limit })',
    acknowledgement: acknowledgementText[options.durability],
    transactionMethod:
      'db.transaction(tx => { tx.get(); tx.put() }) with the default retries (16) and isolation; ' +
      'several may be outstanding',
    facts: { durability: options.durability, partitions: stats.partitions, workers: stats.workers },
    ...lightningCalls(db),
    transaction: <T>(body: (tx: TxAccess) => T) => db.transaction(body),
    batchCounters: () =>
      db.stats().workerStats.map((worker) => ({
        worker: worker.worker,
        partitions: worker.partitions.length,
        batches: worker.batches,
        operations: worker.operations,
        batchSizeMax: worker.batchSizeMax,
      })),
    transactionCounters: () => ({ ...db.stats().transactions }),
  };
}

/**
 * The calls every lightning-db peer makes the same way, over page files or in memory: reads, puts,
 * scans, the count and the close.
 */
export function lightningCalls(
  db: Database,
): Pick<KvPeer, 'get' | 'put' | 'scan' | 'transactionSync' | 'settle' | 'count' | 'close'> {
  return {
    get: (key) => db.get(key),
    put: (key, value) => db.put(key, value),
    scan: (start, limit, sink) => {
      let rows = 0;
      for (const [key, value] of db.range({ gte: start, limit })) {
        rows++;
        sink.row(key, value);
      }
      return rows;
    },
    transactionSync: null,
    // Nothing to wait for: a resolved write is as durable as its mode makes it.
    settle: () => Promise.resolve(null),
    count: () => db.stats().entries,
    close: () => db.close(),
  };
}
