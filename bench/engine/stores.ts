/**
 * The stores bench:engine compares: lightning-db with W = 1 and 2 owner workers and lmdb-js, each at
 * durability class 'sync' (fsynced before the acknowledgement) and 'nosync' (written, not synced), all
 * through the shared adapters of bench/stores, so every row compares one durability with itself.
 */
import { lightningDurabilityOf, openLightning } from '../stores/lightning.js';
import { openLmdb } from '../stores/lmdb.js';
import type { KvPeer } from '../stores/peer.js';

export type { BatchCounters } from '../stores/peer.js';

export const storeNames = [
  'lightning-w1-sync',
  'lightning-w2-sync',
  'lmdb-sync',
  'lightning-w1-nosync',
  'lightning-w2-nosync',
  'lmdb-nosync',
] as const;
export type StoreName = (typeof storeNames)[number];
export type EngineDurability = 'sync' | 'nosync';

export const storeLabels: Record<StoreName, string> = {
  'lightning-w1-sync': 'lightning-db W=1 sync',
  'lightning-w2-sync': 'lightning-db W=2 sync',
  'lmdb-sync': 'lmdb-js sync',
  'lightning-w1-nosync': 'lightning-db W=1 nosync',
  'lightning-w2-nosync': 'lightning-db W=2 nosync',
  'lmdb-nosync': 'lmdb-js nosync',
};

export function durabilityOf(store: StoreName): EngineDurability {
  return store.endsWith('-nosync') ? 'nosync' : 'sync';
}

export function isLightning(store: StoreName): boolean {
  return store.startsWith('lightning');
}

/** lmdb-js's store of the same durability class: the one every lightning-db row is compared with. */
export function lmdbPeerOf(store: StoreName): StoreName {
  return durabilityOf(store) === 'sync' ? 'lmdb-sync' : 'lmdb-nosync';
}

export const lightningPartitions = 16;

export type EngineStore = KvPeer;

export function openStore(store: StoreName, dir: string): Promise<EngineStore> {
  const durability = durabilityOf(store);
  if (store === 'lmdb-sync' || store === 'lmdb-nosync') return openLmdb(dir, durability);
  return openLightning({
    dir,
    durability: lightningDurabilityOf[durability],
    workers: store.startsWith('lightning-w1') ? 1 : 2,
    partitions: lightningPartitions,
  });
}
