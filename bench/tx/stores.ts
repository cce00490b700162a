/**
 * The stores bench:tx compares, behind one small interface: lightning-db transactions (many
 * outstanding, 'sync' and 'relaxed'), lmdb-js transactionSync, and better-sqlite3 db.transaction in
 * WAL mode (synchronous NORMAL and FULL). Each child process drives exactly one store.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { lightningPartitions } from './workload.js';

export const storeNames = [
  'lightning-sync',
  'lightning-relaxed',
  'lmdb',
  'sqlite-normal',
  'sqlite-full',
] as const;
export type StoreName = (typeof storeNames)[number];

export const storeLabels: Record<StoreName, string> = {
  'lightning-sync': "lightning-db 'sync'",
  'lightning-relaxed': "lightning-db 'relaxed'",
  lmdb: 'lmdb-js txnSync',
  'sqlite-normal': 'sqlite WAL NORMAL',
  'sqlite-full': 'sqlite WAL FULL',
};

/** When a store's acknowledgement means the transaction survives power loss. */
export const ackShort: Record<StoreName, string> = {
  'lightning-sync': "fdatasync'd",
  'lightning-relaxed': 'written; synced <= 100 ms',
  lmdb: 'committed; fsync overlapped',
  'sqlite-normal': 'in the WAL, not synced',
  'sqlite-full': 'WAL fsynced',
};

export const lightningWorkers = 2;

/** lightning-db's stats().transactions, counted on the benchmark's thread. */
export interface TxCounters {
  commits: number;
  conflicts: number;
  retries: number;
  failed: number;
  crossPartitionCommits: number;
}

export interface TxStore {
  readonly setup: string;
  readonly durability: string;
  readonly method: string;
  readonly facts: Record<string, string | number | boolean>;
  /** True: transfer and readModifyWrite return promises and many run at once. False: they are synchronous. */
  readonly concurrent: boolean;
  load(keys: string[], balance: number): Promise<void>;
  /** Moves `amount` if `from` holds it; returns whether it moved. */
  transfer(from: string, to: string, amount: number): Promise<boolean> | boolean;
  /** Reads the balance under `key` and writes it back plus one. */
  readModifyWrite(key: string): Promise<void> | void;
  /** The committed balance under `key`. */
  balance(key: string): number | undefined;
  /** Waits until every commit is as durable as the store makes it; seconds waited, or null if nothing to wait for. */
  settle(): Promise<number | null>;
  counters(): TxCounters | null;
  close(): Promise<void>;
}

export function openTxStore(store: StoreName, dir: string): Promise<TxStore> {
  switch (store) {
    case 'lightning-sync':
      return openLightning(dir, 'sync');
    case 'lightning-relaxed':
      return openLightning(dir, 'relaxed');
    case 'lmdb':
      return openLmdb(dir);
    case 'sqlite-normal':
      return openSqlite(dir, 'NORMAL');
    case 'sqlite-full':
      return openSqlite(dir, 'FULL');
  }
}

async function openLightning(dir: string, durability: 'sync' | 'relaxed'): Promise<TxStore> {
  // Imported lazily so the other stores' children never load the engine.
  const { open } = await import('../../src/index.js');
  const db = await open(dir, { partitions: lightningPartitions, workers: lightningWorkers, durability });
  const number = (text: string | undefined): number => Number(text);
  return {
    setup: `open(dir, { partitions: ${lightningPartitions}, workers: ${lightningWorkers}, durability: '${durability}' })`,
    durability:
      durability === 'sync'
        ? "durability 'sync': a transaction resolves after its commit is fdatasync'd (group commit); a cross-partition one after the prepare records and the decision record are"
        : "durability 'relaxed': a transaction resolves after its commit is written (write(2)); the logs are fdatasync'd every 100 ms",
    method:
      'db.transaction(tx => { tx.getString() both; tx.put() both }) with the default retries (16) and isolation (serializable), many outstanding',
    facts: { durability, workers: lightningWorkers, partitions: lightningPartitions },
    concurrent: true,
    load: async (keys, balance) => {
      const value = String(balance);
      for (let from = 0; from < keys.length; from += 10_000) {
        const pending: Promise<void>[] = [];
        for (let i = from; i < Math.min(keys.length, from + 10_000); i++)
          pending.push(db.put(keys[i]!, value));
        await Promise.all(pending);
      }
    },
    transfer: (from, to, amount) =>
      db.transaction((tx) => {
        const a = number(tx.getString(from));
        if (a < amount) return false;
        const b = number(tx.getString(to));
        tx.put(from, String(a - amount));
        tx.put(to, String(b + amount));
        return true;
      }),
    readModifyWrite: (key) =>
      db.transaction((tx) => {
        tx.put(key, String(number(tx.getString(key)) + 1));
      }),
    balance: (key) => {
      const text = db.getString(key);
      return text === undefined ? undefined : Number(text);
    },
    settle: () => Promise.resolve(null),
    counters: () => ({ ...db.stats().transactions }),
    close: () => db.close(),
  };
}

async function openLmdb(dir: string): Promise<TxStore> {
  const lmdb = await import('lmdb');
  const db = lmdb.open<string, string>({ path: dir, compression: false, encoding: 'string' });
  const number = (text: string | undefined): number => Number(text);
  return {
    setup: "open({ path, compression: false, encoding: 'string' }); string keys (ordered-binary)",
    durability:
      'lmdb-js defaults (noSync unset, overlappingSync on): transactionSync returns once its transaction commits; ' +
      'the fsync of the commit overlaps the next transactions. Each phase ends with await db.flushed inside its clock',
    method:
      'db.transactionSync(() => { db.get() both; db.putSync() both }), one after another ' +
      '(db.transaction() hangs on this machine: bench/README.md)',
    facts: { v8AccelerationEnabled: lmdb.v8AccelerationEnabled },
    concurrent: false,
    load: async (keys, balance) => {
      const value = String(balance);
      for (let from = 0; from < keys.length; from += 10_000) {
        db.transactionSync(() => {
          for (let i = from; i < Math.min(keys.length, from + 10_000); i++) db.putSync(keys[i]!, value);
        });
      }
      await db.flushed;
    },
    transfer: (from, to, amount) =>
      db.transactionSync(() => {
        const a = number(db.get(from));
        if (a < amount) return false;
        const b = number(db.get(to));
        db.putSync(from, String(a - amount));
        db.putSync(to, String(b + amount));
        return true;
      }),
    readModifyWrite: (key) => {
      db.transactionSync(() => {
        db.putSync(key, String(number(db.get(key)) + 1));
      });
    },
    balance: (key) => {
      const text = db.get(key);
      return text === undefined ? undefined : Number(text);
    },
    settle: async () => {
      const started = performance.now();
      await db.flushed;
      return (performance.now() - started) / 1000;
    },
    counters: () => null,
    close: () => db.close(),
  };
}

/** The part of better-sqlite3's API used here (the package ships no type declarations). */
interface SqliteStatement {
  run(...parameters: unknown[]): unknown;
  get(...parameters: unknown[]): unknown;
  pluck(): SqliteStatement;
}
interface SqliteDatabase {
  pragma(source: string): unknown;
  exec(source: string): unknown;
  prepare(source: string): SqliteStatement;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): unknown;
}

async function openSqlite(dir: string, synchronous: 'NORMAL' | 'FULL'): Promise<TxStore> {
  const { default: Database } = await import('better-sqlite3');
  mkdirSync(dir, { recursive: true });
  const db = new Database(path.join(dir, 'bank.sqlite')) as unknown as SqliteDatabase;
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec(
    'CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL) WITHOUT ROWID',
  );
  const select = db.prepare('SELECT balance FROM accounts WHERE id = ?').pluck();
  const update = db.prepare('UPDATE accounts SET balance = ? WHERE id = ?');
  const insert = db.prepare('INSERT OR REPLACE INTO accounts (id, balance) VALUES (?, ?)');
  const balanceOf = (key: string): number | undefined => {
    const value = select.get(key);
    return typeof value === 'number' ? value : undefined;
  };
  const transfer = db.transaction((from: string, to: string, amount: number): boolean => {
    const a = balanceOf(from) ?? 0;
    if (a < amount) return false;
    const b = balanceOf(to) ?? 0;
    update.run(a - amount, from);
    update.run(b + amount, to);
    return true;
  });
  const readModifyWrite = db.transaction((key: string): void => {
    update.run((balanceOf(key) ?? 0) + 1, key);
  });
  const loadChunk = db.transaction((keys: string[], from: number, to: number, balance: number): void => {
    for (let i = from; i < to; i++) insert.run(keys[i], balance);
  });
  return {
    setup: `new Database(file); pragma journal_mode = WAL, synchronous = ${synchronous}; table accounts (id TEXT PRIMARY KEY, balance INTEGER) WITHOUT ROWID; prepared statements`,
    durability:
      synchronous === 'FULL'
        ? 'synchronous FULL in WAL mode: every COMMIT fsyncs the WAL before it returns'
        : 'synchronous NORMAL in WAL mode: a COMMIT is written to the WAL without fsync; the WAL is synced at checkpoints',
    method: 'db.transaction((from, to, amount) => { SELECT both; UPDATE both })(...), one after another',
    facts: { synchronous },
    concurrent: false,
    load: (keys, balance) => {
      for (let from = 0; from < keys.length; from += 10_000) {
        loadChunk(keys, from, Math.min(keys.length, from + 10_000), balance);
      }
      return Promise.resolve();
    },
    transfer,
    readModifyWrite,
    balance: balanceOf,
    settle: () => Promise.resolve(null),
    counters: () => null,
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}
