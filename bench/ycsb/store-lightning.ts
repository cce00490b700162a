/**
 * lightning-db through its public API (`open()` from src/index.js, the compiled dist/src/index.js when
 * the benchmark runs compiled). Reads are synchronous `get()` and `range()` on the calling thread;
 * writes are `put()` promises, issued a window at a time and awaited together, so each owner worker
 * applies, logs and group-commits many of them per batch.
 */
import type { Durability } from '../../src/index.js';
import { foldBytes, foldSeed, notSupported, packScan, type StoreOptions, type YcsbStore } from './stores.js';

export async function openLightning(options: StoreOptions, durability: Durability): Promise<YcsbStore> {
  const { open } = await import('../../src/index.js');
  const openOptions =
    options.workers === undefined ? { durability } : { durability, workers: options.workers };
  const db = await open(options.dir, openOptions);
  const keys = options.keys;
  const stats = db.stats();
  return {
    setup:
      `open(dir, ${JSON.stringify(openOptions)}): ${stats.partitions} partitions, ${stats.workers} owner workers; ` +
      'keys are Buffer views, get(key) (returns a copy), range({ gte, limit }), put(key, value) promises ' +
      'issued a window at a time',
    facts: { partitions: stats.partitions, workers: stats.workers, durability },
    syncReads: true,
    read: (key) => db.get(keys.buffer(key)),
    readAsync: () => notSupported('readAsync'),
    write: (key, value) => db.put(keys.buffer(key), value),
    scan: (key, limit, lastKeys, lastKeyOffset) => {
      let rows = 0;
      let hash = foldSeed;
      let last: Buffer | undefined;
      for (const [rowKey, rowValue] of db.range({ gte: keys.buffer(key), limit })) {
        rows++;
        hash = foldBytes(foldBytes(hash, rowKey), rowValue);
        last = rowKey;
      }
      if (last !== undefined) last.copy(lastKeys, lastKeyOffset);
      return packScan(rows, hash);
    },
    scanAsync: () => notSupported('scanAsync'),
    endWindow: () => {},
    count: async () => db.stats().entries,
    close: () => db.close(),
  };
}
