/**
 * A YCSB store over a shared adapter (bench/stores): reads and scans synchronous on the calling thread,
 * writes as put() promises issued a window at a time. Keys are Buffer views cut from the key table.
 */
import type { KvPeer, RowSink } from '../stores/peer.js';
import { foldBytes, foldSeed, notSupported, packScan, type StoreOptions, type YcsbStore } from './stores.js';

/**
 * Folds every row of a scan and remembers the last key: reset per scan (synchronous scans share one,
 * so a scan allocates nothing), or one per scan where scans of a window overlap (classic-level).
 */
export class ScanFold implements RowSink {
  hash = foldSeed;
  last: Uint8Array | undefined = undefined;
  row(key: Uint8Array, value: Uint8Array): void {
    this.hash = foldBytes(foldBytes(this.hash, key), value);
    this.last = key;
  }
}

export function peerYcsbStore(peer: KvPeer, options: StoreOptions, setup: string): YcsbStore {
  const keys = options.keys;
  const fold = new ScanFold();
  return {
    setup,
    facts: peer.facts,
    syncReads: true,
    read: (key) => peer.get(keys.buffer(key)),
    readAsync: () => notSupported('readAsync'),
    write: (key, value) => peer.put(keys.buffer(key), value),
    scan: (key, limit, lastKeys, lastKeyOffset) => {
      fold.hash = foldSeed;
      fold.last = undefined;
      const rows = peer.scan(keys.buffer(key), limit, fold);
      if (fold.last !== undefined) lastKeys.set(fold.last, lastKeyOffset);
      return packScan(rows, fold.hash);
    },
    scanAsync: () => notSupported('scanAsync'),
    endWindow: () => {},
    count: () => Promise.resolve(peer.count()),
    close: () => peer.close(),
  };
}
