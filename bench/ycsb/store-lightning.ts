/**
 * lightning-db through the shared adapter (bench/stores/lightning.ts): synchronous `get()` and
 * `range()` on the calling thread; `put()` promises issued a window at a time and awaited together, so
 * each owner worker applies, logs and group-commits many of them per batch.
 *
 * lightning-paged is the same store, driven the same way at durability 'sync', opened with
 * `memoryMaxBytes`: each partition's tree in a page file, a bounded buffer pool of its pages in shared
 * memory (docs/buffer-pool.md). Its calls are the shared adapter's (`lightningCalls`); its open, setup
 * and facts are its own, as that adapter does not take `memoryMaxBytes`.
 */
import type { Durability } from '../../src/index.js';
import { partitionsDefault } from '../../src/main/open-options.js';
import { pageSizeBytesDefault } from '../../src/shared-memory/index.js';
import {
  lightningCalls,
  lightningCapabilities,
  lightningClassOf,
  openLightning as openPeer,
} from '../stores/lightning.js';
import { type KvPeer, unsupported } from '../stores/peer.js';
import { peerYcsbStore } from './store-peer.js';
import { type PoolCounters, pagedMemoryMaxBytes, type StoreOptions, type YcsbStore } from './stores.js';

export async function openLightning(options: StoreOptions, durability: Durability): Promise<YcsbStore> {
  const peer = await openPeer({ dir: options.dir, durability, workers: options.workers });
  return peerYcsbStore(peer, options, `${peer.setup}; put(key, value) promises issued a window at a time`);
}

export async function openLightningPaged(options: StoreOptions): Promise<YcsbStore> {
  const { open } = await import('../../src/index.js');
  // The sync store leaves partitions and page size at the engine's defaults; so does this one, and
  // splits the budget over the default partition count (checked below).
  const memoryMaxBytes = pagedMemoryMaxBytes(
    options.dataBytes,
    options.memoryFraction,
    partitionsDefault,
    pageSizeBytesDefault,
  );
  const durability: Durability = 'sync';
  const openOptions: { durability: Durability; memoryMaxBytes: number; workers?: number } = {
    durability,
    memoryMaxBytes,
  };
  if (options.workers !== undefined) openOptions.workers = options.workers;
  const db = await open(options.dir, openOptions);
  const stats = db.stats();
  const pools = stats.bufferPools;
  if (pools === null || stats.partitions !== partitionsDefault) {
    await db.close();
    throw new Error(
      `lightning-paged: expected ${partitionsDefault} partitions over buffer pools, got ${stats.partitions} ` +
        `(${pools === null ? 'no pools' : `${pools.length} pools`})`,
    );
  }
  const framesPerPartition = pools[0]!.framesMax;
  const poolCounters = (): PoolCounters => {
    const now = db.stats().bufferPools ?? [];
    const bounds = [...(now[0]?.readBoundsMicros ?? [])];
    const counters: PoolCounters = {
      misses: 0,
      evictions: 0,
      readBuckets: new Array<number>(bounds.length + 1).fill(0),
      readBoundsMicros: bounds,
      residentPages: 0,
      dirtyPages: 0,
      framesMax: 0,
      pagesAllocated: 0,
    };
    for (const pool of now) {
      counters.misses += pool.misses;
      counters.evictions += pool.evictions;
      pool.readBuckets.forEach((count, bucket) => {
        counters.readBuckets[bucket]! += count;
      });
      counters.residentPages += pool.residentPages;
      counters.dirtyPages += pool.dirtyPages;
      counters.framesMax += pool.framesMax;
      counters.pagesAllocated += pool.pagesAllocated;
    }
    return counters;
  };
  const peer: KvPeer = {
    capabilities: lightningCapabilities,
    durabilityClass: lightningClassOf(durability),
    setup:
      `open(dir, ${JSON.stringify(openOptions)}): ${stats.partitions} partitions over page files, ` +
      `${framesPerPartition} frames of ${pools[0]!.pageSizeBytes} bytes each, ${stats.workers} owner workers; ` +
      `memoryMaxBytes = ${options.memoryFraction} × ${options.dataBytes} estimated data bytes, rounded up; ` +
      'keys and values are Buffer views; get(key) returns a copy; range({ gte, limit })',
    acknowledgement: "durability 'sync', as lightning-sync",
    transactionMethod: 'not used by YCSB',
    facts: {
      durability,
      partitions: stats.partitions,
      workers: stats.workers,
      memoryMaxBytes,
      framesPerPartition,
      estimatedDataBytes: options.dataBytes,
      memoryFraction: options.memoryFraction,
      // What this open replayed: the log records since each partition's last page set.
      replayedRecords: stats.recovery?.replayedRecords ?? 0,
    },
    ...lightningCalls(db),
    transaction: () => unsupported('lightning-paged (ycsb)', 'transaction()'),
    batchCounters: () => null,
    transactionCounters: () => null,
  };
  const store = peerYcsbStore(
    peer,
    options,
    `${peer.setup}; put(key, value) promises issued a window at a time`,
  );
  return { ...store, poolCounters };
}
