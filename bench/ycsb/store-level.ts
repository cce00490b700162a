/**
 * classic-level (LevelDB) through the shared adapter (bench/stores/level.ts) with its default
 * `sync: false`: `get()` and `put()` promises, scans with `iterator({ gte, limit }).all()` (one
 * `nextv()` call). Every call runs on the libuv thread pool, so a window's operations run concurrently
 * there and are awaited together.
 */
import { openLevel as openPeer } from '../stores/level.js';
import { ScanFold } from './store-peer.js';
import { notSupported, packScan, type StoreOptions, type YcsbStore } from './stores.js';

export async function openLevel(options: StoreOptions): Promise<YcsbStore> {
  const peer = await openPeer(options.dir, 'nosync');
  const keys = options.keys;
  return {
    setup: `${peer.setup}; keys are Buffer views; put(key, value) (sync: false); a window of operations is issued, then awaited`,
    facts: peer.facts,
    syncReads: false,
    read: () => notSupported('read'),
    readAsync: (key) => peer.getAsync(keys.buffer(key)),
    write: (key, value) => peer.put(keys.buffer(key), value),
    scan: () => notSupported('scan'),
    scanAsync: async (key, limit, lastKeys, lastKeyOffset) => {
      const fold = new ScanFold();
      const rows = await peer.scanAsync(keys.buffer(key), limit, fold);
      if (fold.last !== undefined) lastKeys.set(fold.last, lastKeyOffset);
      return packScan(rows, fold.hash);
    },
    endWindow: () => {},
    count: () => peer.count(),
    close: () => peer.close(),
  };
}
