/**
 * lmdb-js through the shared adapter (bench/stores/lmdb.ts) at its default durability (overlappingSync:
 * a put resolves at its commit, the fsync follows): synchronous `getBinary()` and `getRange()` straight
 * from the memory map, and `put()` with its default event-turn batching: all puts issued in one event
 * turn (one window) become one write transaction on its writer thread.
 */
import { openLmdb as openPeer } from '../stores/lmdb.js';
import { peerYcsbStore } from './store-peer.js';
import type { StoreOptions, YcsbStore } from './stores.js';

export async function openLmdb(options: StoreOptions): Promise<YcsbStore> {
  const peer = await openPeer(options.dir, 'overlapped');
  return peerYcsbStore(
    peer,
    options,
    `${peer.setup}; put(key, value) promises issued a window at a time (one transaction per event turn)`,
  );
}
