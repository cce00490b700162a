/**
 * lightning-db through the shared adapter (bench/stores/lightning.ts): synchronous `get()` and
 * `range()` on the calling thread; `put()` promises issued a window at a time and awaited together, so
 * each owner worker applies, logs and group-commits many of them per batch.
 */
import type { Durability } from '../../src/index.js';
import { openLightning as openPeer } from '../stores/lightning.js';
import { peerYcsbStore } from './store-peer.js';
import type { StoreOptions, YcsbStore } from './stores.js';

export async function openLightning(options: StoreOptions, durability: Durability): Promise<YcsbStore> {
  const peer = await openPeer({ dir: options.dir, durability, workers: options.workers });
  return peerYcsbStore(peer, options, `${peer.setup}; put(key, value) promises issued a window at a time`);
}
