/**
 * lmdb-js, driven as its README recommends for speed: synchronous `get()` and `getRange()` straight
 * from the memory map, and `put()` with its default event-turn batching: all puts issued in one event
 * turn (one window) become one write transaction on its writer thread, and their promises resolve at
 * its commit. `db.transaction()` is not used: on this machine (lmdb-js 3.5.6, Node 20) its callback
 * never runs and every later write hangs behind it.
 */
import { foldBytes, foldSeed, notSupported, packScan, type StoreOptions, type YcsbStore } from './stores.js';

export async function openLmdb(options: StoreOptions): Promise<YcsbStore> {
  const lmdb = await import('lmdb');
  // keyEncoding 'binary': keys are raw bytes in memcmp order, the order of every other store, so the
  // scan checksums can agree. encoding 'binary': values are the raw bytes (no msgpack header), and
  // get() returns them as a Buffer copy.
  const db = lmdb.open<Buffer, Buffer>({
    path: options.dir,
    compression: false,
    keyEncoding: 'binary',
    encoding: 'binary',
  });
  const keys = options.keys;
  return {
    setup:
      "open({ path, compression: false, keyEncoding: 'binary', encoding: 'binary' }), other options default " +
      '(eventTurnBatching on, overlappingSync on, noSync off); keys are Buffer views; get(key), ' +
      'getRange({ start, limit }), put(key, value) promises issued a window at a time (one transaction per ' +
      'event turn)',
    facts: { v8AccelerationEnabled: lmdb.v8AccelerationEnabled },
    syncReads: true,
    read: (key) => db.get(keys.buffer(key)),
    readAsync: () => notSupported('readAsync'),
    write: (key, value) => db.put(keys.buffer(key), value),
    scan: (key, limit, lastKeys, lastKeyOffset) => {
      let rows = 0;
      let hash = foldSeed;
      let last: Buffer | undefined;
      for (const { key: rowKey, value: rowValue } of db.getRange({ start: keys.buffer(key), limit })) {
        rows++;
        hash = foldBytes(foldBytes(hash, rowKey), rowValue);
        last = rowKey;
      }
      if (last !== undefined) last.copy(lastKeys, lastKeyOffset);
      return packScan(rows, hash);
    },
    scanAsync: () => notSupported('scanAsync'),
    endWindow: () => {},
    count: async () => db.getCount(),
    close: async () => {
      await db.flushed;
      await db.close();
    },
  };
}
