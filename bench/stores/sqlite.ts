/**
 * better-sqlite3 opened as its docs recommend for speed (WAL journal mode; prepared statements and
 * transactions are up to each benchmark, whose tables differ), at a durability class:
 * 'sync' is `synchronous = FULL` (every COMMIT fsyncs the WAL), 'nosync' is `synchronous = NORMAL`
 * (a COMMIT is written to the WAL without fsync; the WAL is synced at checkpoints).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { importPeer } from '../lib/peers.js';
import type { PeerCapabilities } from './peer.js';

export const sqliteCapabilities: PeerCapabilities = {
  durability: ['sync', 'nosync'],
  reads: 'sync',
  scans: 'sync',
  transactions: 'serial',
};

const acknowledgementText: Record<'sync' | 'nosync', string> = {
  sync: 'synchronous FULL in WAL mode: every COMMIT fsyncs the WAL before it returns',
  nosync:
    'synchronous NORMAL in WAL mode: a COMMIT is written to the WAL without fsync; the WAL is synced at checkpoints',
};

export interface SqlitePeer {
  readonly db: Database;
  readonly capabilities: PeerCapabilities;
  readonly synchronous: 'FULL' | 'NORMAL';
  /** How the database was opened, for the benchmark's own setup line. */
  readonly setup: string;
  readonly acknowledgement: string;
  readonly version: string;
}

export async function openSqlite(
  dir: string,
  file: string,
  durability: 'sync' | 'nosync',
): Promise<SqlitePeer> {
  const { default: SqliteDatabase } = await importPeer('better-sqlite3');
  mkdirSync(dir, { recursive: true });
  const db = new SqliteDatabase(path.join(dir, file));
  const synchronous = durability === 'sync' ? 'FULL' : 'NORMAL';
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  return {
    db,
    capabilities: sqliteCapabilities,
    synchronous,
    setup: `new Database(file); pragma journal_mode = WAL, synchronous = ${synchronous}`,
    acknowledgement: acknowledgementText[durability],
    version: db.prepare<[], string>('SELECT sqlite_version()').pluck().get() ?? 'unknown',
  };
}
