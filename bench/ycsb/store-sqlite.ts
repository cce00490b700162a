/**
 * better-sqlite3, driven as its docs recommend for speed: WAL journal mode, prepared statements reused
 * for every operation, and many operations per transaction. Each window of operations (--concurrency
 * of them: reads, writes, scans) runs inside one BEGIN .. COMMIT, so a window's writes commit together
 * and its reads share one read snapshot instead of taking the WAL read lock per statement. A write is
 * acknowledged at its window's COMMIT: write() returns a promise that COMMIT resolves, so its latency
 * runs from its statement to the commit, like the other stores' write windows.
 */
import { openSqlite as openPeer } from '../stores/sqlite.js';
import {
  foldBytes,
  foldSeed,
  foldString,
  notSupported,
  packScan,
  type StoreOptions,
  type YcsbStore,
} from './stores.js';

export async function openSqlite(options: StoreOptions): Promise<YcsbStore> {
  // NORMAL: in WAL mode a commit is written to the log without fsync; the log is synced at checkpoints.
  const peer = await openPeer(options.dir, 'ycsb.sqlite', 'nosync');
  const db = peer.db;
  // WITHOUT ROWID keeps each row in the primary-key B-tree itself: one lookup per key instead of two.
  db.exec(
    'CREATE TABLE IF NOT EXISTS usertable (ycsb_key TEXT PRIMARY KEY, field0 BLOB NOT NULL) WITHOUT ROWID',
  );
  const get = db.prepare<[string], Buffer>('SELECT field0 FROM usertable WHERE ycsb_key = ?').pluck();
  const put = db.prepare<[string, Buffer]>(
    'INSERT OR REPLACE INTO usertable (ycsb_key, field0) VALUES (?, ?)',
  );
  const scanRows = db
    .prepare<[string, number], [string, Buffer]>(
      'SELECT ycsb_key, field0 FROM usertable WHERE ycsb_key >= ? ORDER BY ycsb_key LIMIT ?',
    )
    .raw();
  const count = db.prepare<[], number>('SELECT COUNT(*) FROM usertable').pluck();
  const begin = db.prepare('BEGIN');
  const commit = db.prepare('COMMIT');
  const keys = options.keys;

  let inTransaction = false;
  /** The promise this window's writes return, and its resolver: settled by the window's COMMIT. */
  let committed: Promise<void> | undefined;
  let resolveCommitted: (() => void) | undefined;
  const enterWindow = (): void => {
    if (!inTransaction) {
      begin.run();
      inTransaction = true;
    }
  };

  return {
    setup:
      `${peer.setup}; table usertable (ycsb_key TEXT PRIMARY KEY, field0 BLOB) WITHOUT ROWID; ` +
      'prepared statements: SELECT .. WHERE ycsb_key = ? (pluck), INSERT OR REPLACE, SELECT .. WHERE ycsb_key >= ? ' +
      'ORDER BY ycsb_key LIMIT ? (raw); keys are strings; every window of operations is one BEGIN .. COMMIT ' +
      'transaction (N = --concurrency operations per transaction)',
    facts: { sqlite: peer.version },
    syncReads: true,
    read: (key) => {
      enterWindow();
      return get.get(keys.string(key));
    },
    readAsync: () => notSupported('readAsync'),
    write: (key, value) => {
      enterWindow();
      put.run(keys.string(key), value);
      if (committed === undefined) {
        committed = new Promise<void>((resolve) => {
          resolveCommitted = resolve;
        });
      }
      return committed;
    },
    scan: (key, limit, lastKeys, lastKeyOffset) => {
      enterWindow();
      const rows = scanRows.all(keys.string(key), limit);
      let hash = foldSeed;
      for (const [rowKey, rowValue] of rows) hash = foldBytes(foldString(hash, rowKey), rowValue);
      if (rows.length > 0) lastKeys.write(rows[rows.length - 1]![0], lastKeyOffset, 'latin1');
      return packScan(rows.length, hash);
    },
    scanAsync: () => notSupported('scanAsync'),
    endWindow: () => {
      if (!inTransaction) return;
      commit.run();
      inTransaction = false;
      resolveCommitted?.();
      committed = undefined;
      resolveCommitted = undefined;
    },
    count: async () => count.get() ?? 0,
    close: async () => {
      db.close();
    },
  };
}
