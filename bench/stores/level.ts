/**
 * classic-level (LevelDB) through its documented promise API: every call runs on the libuv thread
 * pool, so reads and scans are asynchronous. Writes are `put(key, value, { sync })` (LevelDB merges
 * writers queued at the same moment into one log write) or a chained `batch()` written with
 * `{ sync }` (its bulk path: one log write per batch). Keys and values are Buffers.
 */
import { importPeer } from '../lib/peers.js';
import type { DurabilityClass, PeerCapabilities, RowSink } from './peer.js';

export const levelCapabilities: PeerCapabilities = {
  durability: ['sync', 'nosync'],
  reads: 'async',
  scans: 'async',
  transactions: 'none',
};

const acknowledgementText: Record<'sync' | 'nosync', string> = {
  sync: 'sync: true: LevelDB appends the write to its log and syncs the log (fdatasync) before the promise resolves',
  nosync:
    'sync: false (the default): the write is appended to the log with write(2) and acknowledged; LevelDB does not sync the log',
};

/** What the benchmarks use of classic-level; the asynchronous counterpart of KvPeer. */
export interface LevelPeer {
  readonly capabilities: PeerCapabilities;
  readonly durabilityClass: DurabilityClass;
  readonly setup: string;
  readonly acknowledgement: string;
  readonly facts: Record<string, string | number | boolean>;
  getAsync(key: Buffer): Promise<Uint8Array | undefined>;
  getMany(keys: Buffer[]): Promise<(Uint8Array | undefined)[]>;
  put(key: Buffer, value: Buffer): Promise<unknown>;
  /** Writes keys[from..to) as one chained batch; resolves when it is acknowledged. */
  writeBatch(keys: Buffer[], values: Buffer[], from: number, to: number): Promise<void>;
  /** Up to `limit` rows from `start` in key order, read in one `nextv()`, each passed to `sink`. */
  scanAsync(start: Buffer, limit: number, sink: RowSink): Promise<number>;
  count(): Promise<number>;
  close(): Promise<void>;
}

export async function openLevel(dir: string, durability: 'sync' | 'nosync'): Promise<LevelPeer> {
  const { ClassicLevel } = await importPeer('classic-level');
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const writeOptions = { sync: durability === 'sync' };
  return {
    capabilities: levelCapabilities,
    durabilityClass: durability,
    setup:
      "new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' }) + await db.open(); other options " +
      'default (8 MiB block cache, 4 MiB write buffer, snappy); get(key), iterator({ gte, limit }).all()',
    acknowledgement: acknowledgementText[durability],
    facts: { sync: writeOptions.sync, uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' },
    getAsync: (key) => db.get(key),
    getMany: (keys) => db.getMany(keys),
    put: (key, value) => db.put(key, value, writeOptions),
    writeBatch: (keys, values, from, to) => {
      const batch = db.batch();
      for (let i = from; i < to; i++) batch.put(keys[i]!, values[i]!);
      return batch.write(writeOptions);
    },
    scanAsync: async (start, limit, sink) => {
      const rows = await db.iterator({ gte: start, limit }).all();
      for (const [key, value] of rows) sink.row(key, value);
      return rows.length;
    },
    count: async () => (await db.keys().all()).length,
    close: () => db.close(),
  };
}
