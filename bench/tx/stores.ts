/**
 * The stores bench:tx compares, each run at one durability class and one concurrency per child:
 * lightning-db and lmdb-js through their shared adapters (bench/stores/), whose promise transactions
 * may be outstanding several at once; lmdb-js's synchronous transactionSync; better-sqlite3's
 * db.transaction in WAL mode. A store whose API runs one transaction at a time has no concurrent row.
 */
import { lightningDurabilityOf, openLightning } from '../stores/lightning.js';
import { openLmdb } from '../stores/lmdb.js';
import type { KvPeer, TxAccess, TxCounters } from '../stores/peer.js';
import { openSqlite } from '../stores/sqlite.js';
import { lightningPartitions } from './workload.js';

export type { TxCounters };

export const storeNames = ['lightning', 'lmdb', 'lmdb-txnsync', 'sqlite'] as const;
export type StoreName = (typeof storeNames)[number];

export const storeLabels: Record<StoreName, string> = {
  lightning: 'lightning-db',
  lmdb: 'lmdb-js transaction()',
  'lmdb-txnsync': 'lmdb-js transactionSync()',
  sqlite: 'better-sqlite3',
};

/** The durability classes bench:tx runs: every store offers both. */
export const txDurabilities = ['sync', 'nosync'] as const;
export type TxDurability = (typeof txDurabilities)[number];

/** Whether a store can have several transactions outstanding. */
export const storeConcurrent: Record<StoreName, boolean> = {
  lightning: true,
  lmdb: true,
  'lmdb-txnsync': false,
  sqlite: false,
};

export const lightningWorkers = 2;

export interface TxStore {
  readonly setup: string;
  readonly durability: string;
  readonly method: string;
  readonly facts: Record<string, string | number | boolean>;
  load(balance: number): Promise<void>;
  /** Moves `amount` if account `from` holds it; returns whether it moved. */
  transfer(from: number, to: number, amount: number): Promise<boolean> | boolean;
  /** Reads the balance of `account` and writes it back plus one. */
  readModifyWrite(account: number): Promise<void> | void;
  /** The committed balance of `account`. */
  balance(account: number): number | undefined;
  /** Waits until every commit is as durable as the class promises; seconds waited, or null. */
  settle(): Promise<number | null>;
  counters(): TxCounters | null;
  close(): Promise<void>;
}

/** Decimal ASCII digits to a number without a string in between (the same cost for every peer). */
function parseBalance(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return Number.NaN;
  let value = 0;
  for (let i = 0; i < bytes.length; i++) value = value * 10 + (bytes[i]! - 48);
  return value;
}

function balanceBytes(balance: number): Buffer {
  return Buffer.from(String(balance), 'latin1');
}

export function openTxStore(
  store: StoreName,
  dir: string,
  durability: TxDurability,
  keys: string[],
): Promise<TxStore> {
  switch (store) {
    case 'lightning':
      return openLightning({
        dir,
        durability: lightningDurabilityOf[durability],
        workers: lightningWorkers,
        partitions: lightningPartitions,
      }).then((peer) => peerStore(peer, keys, 'promise'));
    case 'lmdb':
      return openLmdb(dir, durability).then((peer) => peerStore(peer, keys, 'promise'));
    case 'lmdb-txnsync':
      return openLmdb(dir, durability).then((peer) => peerStore(peer, keys, 'sync'));
    case 'sqlite':
      return openSqliteStore(dir, durability, keys);
  }
}

/** A shared-adapter peer: its promise transactions, or its synchronous ones when it has them. */
function peerStore(peer: KvPeer, names: string[], api: 'promise' | 'sync'): TxStore {
  const keys = names.map((name) => Buffer.from(name, 'latin1'));
  const transferBody =
    (from: number, to: number, amount: number) =>
    (tx: TxAccess): boolean => {
      const a = parseBalance(tx.get(keys[from]!));
      if (a < amount) return false;
      const b = parseBalance(tx.get(keys[to]!));
      tx.put(keys[from]!, balanceBytes(a - amount));
      tx.put(keys[to]!, balanceBytes(b + amount));
      return true;
    };
  const rmwBody =
    (account: number) =>
    (tx: TxAccess): void => {
      tx.put(keys[account]!, balanceBytes(parseBalance(tx.get(keys[account]!)) + 1));
    };
  const sync = peer.transactionSync;
  if (api === 'sync' && sync === null) throw new Error('this peer has no synchronous transactions');
  return {
    setup: peer.setup,
    durability: peer.acknowledgement,
    method:
      api === 'sync'
        ? 'db.transactionSync(() => { db.getBinary(); db.putSync() }): synchronous, one at a time'
        : peer.transactionMethod,
    facts: peer.facts,
    load: async (balance) => {
      const value = balanceBytes(balance);
      for (let from = 0; from < keys.length; from += 10_000) {
        const pending: Promise<unknown>[] = [];
        for (let i = from; i < Math.min(keys.length, from + 10_000); i++)
          pending.push(peer.put(keys[i]!, value));
        await Promise.all(pending);
      }
      await peer.settle();
    },
    transfer:
      api === 'sync'
        ? (from, to, amount) => sync!(transferBody(from, to, amount))
        : (from, to, amount) => peer.transaction(transferBody(from, to, amount)),
    readModifyWrite:
      api === 'sync' ? (account) => sync!(rmwBody(account)) : (account) => peer.transaction(rmwBody(account)),
    balance: (account) => {
      const bytes = peer.get(keys[account]!);
      return bytes === undefined ? undefined : parseBalance(bytes);
    },
    settle: () => peer.settle(),
    counters: () => peer.transactionCounters(),
    close: () => peer.close(),
  };
}

async function openSqliteStore(dir: string, durability: TxDurability, keys: string[]): Promise<TxStore> {
  const peer = await openSqlite(dir, 'bank.sqlite', durability);
  const db = peer.db;
  db.exec(
    'CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL) WITHOUT ROWID',
  );
  const select = db.prepare<[string], unknown>('SELECT balance FROM accounts WHERE id = ?').pluck();
  const update = db.prepare<[number, string]>('UPDATE accounts SET balance = ? WHERE id = ?');
  const insert = db.prepare<[string, number]>('INSERT OR REPLACE INTO accounts (id, balance) VALUES (?, ?)');
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
  const loadChunk = db.transaction((from: number, to: number, balance: number): void => {
    for (let i = from; i < to; i++) insert.run(keys[i]!, balance);
  });
  return {
    setup: `${peer.setup}; table accounts (id TEXT PRIMARY KEY, balance INTEGER) WITHOUT ROWID; prepared statements`,
    durability: peer.acknowledgement,
    method:
      'db.transaction((from, to, amount) => { SELECT both; UPDATE both })(...): synchronous, one at a time',
    facts: { synchronous: peer.synchronous, sqlite: peer.version },
    load: (balance) => {
      for (let from = 0; from < keys.length; from += 10_000) {
        loadChunk(from, Math.min(keys.length, from + 10_000), balance);
      }
      return Promise.resolve();
    },
    transfer: (from, to, amount) => transfer(keys[from]!, keys[to]!, amount),
    readModifyWrite: (account) => readModifyWrite(keys[account]!),
    balance: (account) => balanceOf(keys[account]!),
    settle: () => Promise.resolve(null),
    counters: () => null,
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}
