/**
 * classic-level (LevelDB), driven through its documented promise API: `get()` and `put()` with their
 * default options (puts are not synced), scans with `db.iterator({ gte, limit }).all()`, which reads the
 * rows in one `nextv()` call. Every call runs on the libuv thread pool, so a window's operations run
 * concurrently there and are awaited together.
 */
import { foldBytes, foldSeed, notSupported, packScan, type StoreOptions, type YcsbStore } from './stores.js';

export async function openLevel(options: StoreOptions): Promise<YcsbStore> {
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel<Buffer, Buffer>(options.dir, {
    keyEncoding: 'buffer',
    valueEncoding: 'buffer',
  });
  await db.open();
  const keys = options.keys;
  return {
    setup:
      "new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' }), other options default " +
      '(8 MiB block cache, 4 MiB write buffer, snappy); keys are Buffer views; get(key), put(key, value) ' +
      '(sync: false), iterator({ gte, limit }).all(); a window of operations is issued, then awaited',
    facts: { uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' },
    syncReads: false,
    read: () => notSupported('read'),
    readAsync: (key) => db.get(keys.buffer(key)),
    write: (key, value) => db.put(keys.buffer(key), value),
    scan: () => notSupported('scan'),
    scanAsync: async (key, limit, lastKeys, lastKeyOffset) => {
      const rows = await db.iterator({ gte: keys.buffer(key), limit }).all();
      let hash = foldSeed;
      for (const [rowKey, rowValue] of rows) hash = foldBytes(foldBytes(hash, rowKey), rowValue);
      if (rows.length > 0) rows[rows.length - 1]![0].copy(lastKeys, lastKeyOffset);
      return packScan(rows.length, hash);
    },
    endWindow: () => {},
    count: async () => (await db.keys().all()).length,
    close: () => db.close(),
  };
}
