/**
 * lmdb-js 3, driven as its README recommends for speed: synchronous `getBinary()` and `getRange()`
 * straight from the memory map; `put()` with event-turn batching (every put issued in one event turn is
 * one transaction on its writer thread); `transaction(callback)` for read-write transactions, which
 * lmdb-js queues and runs in order on the main thread inside its next write transaction, so many can be
 * outstanding. Keys and values are raw bytes (`keyEncoding`/`encoding` 'binary'): memcmp order, the
 * order of every other peer, so scan checksums agree.
 */
import { importPeer } from '../lib/peers.js';
import type { DurabilityClass, KvPeer, PeerCapabilities, TxAccess } from './peer.js';

export const lmdbCapabilities: PeerCapabilities = {
  durability: ['sync', 'overlapped', 'nosync'],
  reads: 'sync',
  scans: 'sync',
  transactions: 'concurrent',
};

/** The flags for each class; everything else is lmdb-js's default. */
const flagsOf: Record<DurabilityClass, { overlappingSync?: boolean; noSync?: boolean }> = {
  sync: { overlappingSync: false },
  overlapped: {},
  nosync: { noSync: true },
};

const acknowledgementText: Record<DurabilityClass, string> = {
  sync:
    'overlappingSync: false, noSync unset: a commit is fsynced by the writer thread before put() and ' +
    'transaction() promises resolve',
  overlapped:
    'lmdb-js defaults (noSync unset, overlappingSync on, the Linux default): put() and transaction() resolve ' +
    'when the commit is visible; its fsync follows, overlapping the next transactions (db.flushed)',
  nosync:
    'noSync: true: commits are written to the data file and never fsynced by lmdb-js; the OS writes them ' +
    'back when it likes',
};

export async function openLmdb(dir: string, durability: DurabilityClass): Promise<KvPeer> {
  const lmdb = await importPeer('lmdb');
  const flags = flagsOf[durability];
  const db = lmdb.open<Buffer, Buffer>({
    path: dir,
    compression: false,
    keyEncoding: 'binary',
    encoding: 'binary',
    ...flags,
  });
  // Inside a transaction callback putSync() writes into the running transaction (no promise per write)
  // and getBinary() sees it: lmdb-js's documented way to read and write in one.
  const access: TxAccess = {
    get: (key) => db.getBinary(key),
    put: (key, value) => {
      db.putSync(key, value);
    },
  };
  return {
    capabilities: lmdbCapabilities,
    durabilityClass: durability,
    setup:
      `open({ path, compression: false, keyEncoding: 'binary', encoding: 'binary'` +
      `${Object.entries(flags)
        .map(([name, value]) => `, ${name}: ${String(value)}`)
        .join('')} }), other options default (eventTurnBatching on); getBinary(key) returns a copy; ` +
      'getRange({ start, limit })',
    acknowledgement: acknowledgementText[durability],
    transactionMethod:
      'db.transaction(() => { db.getBinary(); db.putSync() }): queued, run in order in the next write ' +
      'transaction (one per event turn); several may be outstanding',
    facts: { v8AccelerationEnabled: lmdb.v8AccelerationEnabled, durability },
    get: (key) => db.getBinary(key),
    put: (key, value) => db.put(key, value),
    scan: (start, limit, sink) => {
      let rows = 0;
      for (const { key, value } of db.getRange({ start, limit })) {
        rows++;
        sink.row(key, value);
      }
      return rows;
    },
    transaction: <T>(body: (tx: TxAccess) => T) => db.transaction(() => body(access)),
    transactionSync: <T>(body: (tx: TxAccess) => T) => db.transactionSync(() => body(access)),
    settle: async () => {
      const started = performance.now();
      await db.flushed;
      return (performance.now() - started) / 1000;
    },
    count: () => db.getCount(),
    batchCounters: () => null,
    transactionCounters: () => null,
    close: async () => {
      await db.flushed;
      await db.close();
    },
  };
}
