/**
 * The bank: 1,000 accounts holding 1,000 each, moved between by transfers. Shared by the bank test,
 * its app-worker fixture, the crash child and the crash checker.
 *
 * Every committed transfer also writes a record `xfer:<thread>:<n>` = `<from>><to>:<moved>` in the
 * same transaction, so any consistent state satisfies, for every account,
 *   balance = 1000 + (sum moved in by the records present) - (sum moved out by the records present)
 * and the total is 1,000,000. A state that shows half of a transaction (an account change without
 * its record, a record without its account changes, one account changed without the other) breaks
 * that equation for some account, even when the total happens to stay exact.
 */
import type { open } from '../../src/index.js';

type Database = Awaited<ReturnType<typeof open>>;
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];
type RangeOptions = NonNullable<Parameters<Database['range']>[0]>;

/** What the checker reads from: a Database (its reads are at an implicit snapshot) or a Snapshot. */
export interface BankView {
  get(key: string): Buffer | undefined;
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]>;
}

export const accountCount = 1000;
export const initialBalance = 1000;
export const totalBalance = accountCount * initialBalance;
export const accountPrefix = 'acct:';
export const xferPrefix = 'xfer:';
/** The largest amount a transfer tries to move. */
export const amountMax = 250;

export function accountKey(index: number): string {
  return `${accountPrefix}${index.toString().padStart(4, '0')}`;
}

/** Transfer records sort by thread, then by number. */
export function xferKey(thread: string, n: number): string {
  return `${xferPrefix}${thread}:${n.toString().padStart(7, '0')}`;
}

export interface TransferPlan {
  readonly from: number;
  readonly to: number;
  readonly amount: number;
}

/** A transfer between two distinct random accounts, drawn before the transaction runs. */
export function planTransfer(random: () => number): TransferPlan {
  const from = random() % accountCount;
  let to = random() % (accountCount - 1);
  if (to >= from) to++;
  return { from, to, amount: 1 + (random() % amountMax) };
}

export function encodeXfer(from: number, to: number, moved: number): string {
  return `${from}>${to}:${moved}`;
}

export function decodeXfer(text: string): { from: number; to: number; moved: number } | null {
  const match = /^(\d+)>(\d+):(\d+)$/.exec(text);
  if (match === null) return null;
  const [from, to, moved] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (from >= accountCount || to >= accountCount || from === to) return null;
  return { from, to, moved };
}

export function parseBalance(bytes: Buffer | undefined): number | null {
  if (bytes === undefined) return null;
  const text = bytes.toString('utf8');
  return /^\d{1,10}$/.test(text) ? Number(text) : null;
}

/**
 * The body of one transfer, run inside db.transaction (possibly several times): reads both accounts,
 * moves the amount if the source holds it (else moves nothing), and writes the transfer record.
 * Returns the amount moved. Throws on a balance that is missing or malformed: that is a bug.
 */
export function transferBody(tx: Transaction, plan: TransferPlan, recordKey: string): number {
  const fromKey = accountKey(plan.from);
  const toKey = accountKey(plan.to);
  const fromBalance = parseBalance(tx.get(fromKey));
  const toBalance = parseBalance(tx.get(toKey));
  if (fromBalance === null || toBalance === null) {
    throw new Error(
      `transfer ${recordKey}: ${fromKey} = ${String(tx.getString(fromKey))}, ${toKey} = ${String(tx.getString(toKey))}`,
    );
  }
  const moved = fromBalance >= plan.amount ? plan.amount : 0;
  if (moved > 0) {
    tx.put(fromKey, String(fromBalance - moved));
    tx.put(toKey, String(toBalance + moved));
  }
  tx.put(recordKey, encodeXfer(plan.from, plan.to, moved));
  return moved;
}

/** Writes every account at its initial balance (plain puts: no transaction is counted). */
export async function loadAccounts(db: Database): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let i = 0; i < accountCount; i++) pending.push(db.put(accountKey(i), String(initialBalance)));
  await Promise.all(pending);
}

export interface BankState {
  /** Balance per account, read with get (null where missing or malformed). */
  readonly balances: (number | null)[];
  /** Transfer records by key. */
  readonly records: Map<string, { from: number; to: number; moved: number }>;
  readonly problems: string[];
}

const prefixEnd = (prefix: string): string =>
  prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

/**
 * Reads the bank from `view` with one range scan over the accounts and the records together (so a
 * database's scan is one implicit snapshot too) and checks it: the total is exactly 1,000,000, no
 * balance is malformed, every record parses, and every balance is what the records present explain.
 * With `pointReads` (a snapshot, or a database nobody writes to) a get per account must also agree
 * with the scan; a plain db.get is not at a snapshot, so a database being written is checked by its
 * scan alone. `label` names the view in problems.
 */
export function checkBank(view: BankView, label: string, pointReads: boolean): BankState {
  const problems: string[] = [];
  const balances = new Array<number | null>(accountCount).fill(null);
  const records = new Map<string, { from: number; to: number; moved: number }>();
  const expected = new Array<number>(accountCount).fill(initialBalance);
  let rangeTotal = 0;
  let rangeCount = 0;
  for (const [key, value] of view.range({ gte: accountPrefix, lt: prefixEnd(xferPrefix) })) {
    const name = key.toString('utf8');
    const text = value.toString('utf8');
    if (name.startsWith(xferPrefix)) {
      const record = decodeXfer(text);
      if (record === null) {
        problems.push(`${label}: record ${name} is malformed: ${JSON.stringify(text)}`);
        continue;
      }
      records.set(name, record);
      expected[record.from]! -= record.moved;
      expected[record.to]! += record.moved;
      continue;
    }
    rangeCount++;
    const index = Number(name.slice(accountPrefix.length));
    const balance = parseBalance(value);
    if (balance === null || !Number.isInteger(index) || accountKey(index) !== name) {
      problems.push(`${label}: range shows ${name} = ${JSON.stringify(text)}`);
      continue;
    }
    balances[index] = balance;
    rangeTotal += balance;
  }
  if (rangeCount !== accountCount) problems.push(`${label}: range lists ${rangeCount} accounts`);
  if (rangeTotal !== totalBalance) problems.push(`${label}: total by range is ${rangeTotal}`);
  if (pointReads) {
    let getTotal = 0;
    let disagreements = 0;
    for (let i = 0; i < accountCount; i++) {
      const balance = parseBalance(view.get(accountKey(i)));
      if (balance === null) problems.push(`${label}: ${accountKey(i)} is missing or malformed by get`);
      else getTotal += balance;
      if (balance !== balances[i] && disagreements++ < 5) {
        problems.push(`${label}: ${accountKey(i)} is ${balance} by get, ${balances[i]} by range`);
      }
    }
    if (getTotal !== totalBalance) problems.push(`${label}: total by get is ${getTotal}`);
  }
  let unexplained = 0;
  for (let i = 0; i < accountCount; i++) {
    if (balances[i] === null || balances[i] === expected[i]) continue;
    if (unexplained++ < 5) {
      problems.push(
        `${label}: ${accountKey(i)} is ${balances[i]} but the ${records.size} records present make it ${expected[i]}: half a transfer is visible`,
      );
    }
  }
  if (unexplained > 5) problems.push(`${label}: ... ${unexplained - 5} more accounts unexplained`);
  return { balances, records, problems };
}

/** Counts the records of one thread's transfers in `state`. */
export function recordsOf(state: BankState, thread: string): number {
  const prefix = `${xferPrefix}${thread}:`;
  let count = 0;
  for (const key of state.records.keys()) if (key.startsWith(prefix)) count++;
  return count;
}
