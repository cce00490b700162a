/**
 * Transactions across partitions, many at once, over buffer pools far smaller than the trees: a part
 * that needs frames back from a page set while another prepared transaction's intents are in its
 * tree cannot have them (no set is written then), so the owner refuses it (statusWaitsForPageSet),
 * holds back new prepares until the set is written, and the coordinator retries the transaction
 * without counting a conflict. Every transaction must commit: none may fail with ERR_TX_CONFLICT
 * for want of a page set, however often its attempts wait for one.
 *
 * Two partitions on two owners, 64 frames of 4 KiB each (the least open() accepts), 6,000 keys of
 * 300-500 bytes (about five times the frames), then 1,200 transactions of 4 puts of 300-900 bytes,
 * 32 in flight. Checked: every transaction commits, the counts say attempts waited for page sets
 * and that none failed, every key holds a value some committed transaction wrote to it (or its
 * loaded value), the same after a reopen, and each page file passes checkPageFile. The admin
 * server's /metrics, scraped over HTTP after the transactions, counts the same page-set waits as
 * stats() (lightning_transaction_page_set_waits_total).
 *
 *   SEED=<n> (or LIGHTNING_SEED=<n>)   replay the seeded choices (printed at the start)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { checkPageFile } from '../src/storage/page-file/page-file-check.js';
import { parseExposition, total } from './support/prometheus-text.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x5e7_ca11);
console.log(`paged-transaction-page-sets: seed ${seed} (SEED=<n> to replay)`);

const pageSize = 4096;
const partitions = 2;
const frames = 64;
const options = { partitions, workers: 2, memoryMaxBytes: partitions * frames * pageSize } as const;
const keys = 6000;
const transactions = 1200;
const inFlight = 32;
const putsPerTransaction = 4;

let dir = '';
afterEach(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  dir = '';
});

const keyName = (index: number): string => `key-${String(index).padStart(5, '0')}`;

/** A value naming its write, padded to `length`, so a read names the write it came from. */
function valueNaming(write: string, length: number): Buffer {
  const value = Buffer.alloc(length, 0x2e);
  value.write(`${write};`);
  return value;
}

const writeOf = (value: Buffer): string => value.toString('latin1', 0, value.indexOf(0x3b));

it('cross-partition transactions that wait for page sets all commit', async () => {
  const next = mulberry32(seed);
  const below = (n: number): number => Math.floor((next() / 2 ** 32) * n);
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-tx-sets-'));
  /** Per key, every write that may be its value: its load, and each transaction that put it. */
  const writers = new Map<string, Set<string>>();
  let db = await open(dir, options);
  try {
    for (let first = 0; first < keys; first += 5) {
      const entries = [];
      for (let index = first; index < first + 5; index++) {
        const key = keyName(index);
        writers.set(key, new Set([`load ${index}`]));
        entries.push({ type: 'put' as const, key, value: valueNaming(`load ${index}`, 300 + below(201)) });
      }
      await db.batch(entries);
    }
    const before = db.stats().transactions;

    let issued = 0;
    const committed: string[] = [];
    const failures: string[] = [];
    const runner = async (): Promise<void> => {
      while (issued < transactions) {
        const name = `tx ${issued++}`;
        const puts = new Map<string, Buffer>();
        while (puts.size < putsPerTransaction)
          puts.set(keyName(below(keys)), valueNaming(name, 300 + below(601)));
        for (const key of puts.keys()) writers.get(key)!.add(name);
        try {
          await db.transaction((tx) => {
            for (const [key, value] of puts) tx.put(key, value);
          });
          committed.push(name);
        } catch (error) {
          failures.push(`${name}: ${String(error)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: inFlight }, runner));

    const after = db.stats().transactions;
    const waits = after.pageSetWaits - before.pageSetWaits;
    console.log(
      `paged-transaction-page-sets: ${committed.length} of ${transactions} committed, ` +
        `${waits} attempts waited for a page set, ${after.conflicts - before.conflicts} conflicts, ` +
        `${after.crossPartitionCommits - before.crossPartitionCommits} across partitions`,
    );
    expect(failures.slice(0, 5), 'transactions that failed').toEqual([]);
    expect(committed.length).toBe(transactions);
    expect(after.failed - before.failed).toBe(0);
    // The case is about these waits: with none, it tested nothing.
    expect(waits).toBeGreaterThan(0);
    expect(after.crossPartitionCommits - before.crossPartitionCommits).toBeGreaterThan(transactions / 2);
    // The counter reaches /metrics whole: nothing runs now, so the scrape and stats() read one figure.
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    try {
      const response = await fetch(`${server.url}/metrics`);
      expect(response.status).toBe(200);
      const metrics = parseExposition(await response.text());
      expect(total(metrics, 'lightning_transaction_page_set_waits_total')).toBe(
        db.stats().transactions.pageSetWaits,
      );
    } finally {
      await server.close();
    }

    const check = (context: string): void => {
      const wrong: string[] = [];
      for (const [key, possible] of writers) {
        const value = db.get(key);
        const write = value === undefined ? 'nothing' : writeOf(value);
        if (!possible.has(write)) wrong.push(`${key} holds ${write}`);
      }
      expect(wrong.slice(0, 5), `${context} (seed ${seed})`).toEqual([]);
    };
    check('after the transactions');
    await db.close();
    db = await open(dir, options);
    check('after a reopen');
  } finally {
    await db.close();
  }
  for (let partition = 0; partition < partitions; partition++) {
    const report = await checkPageFile(partitionDirectory(dir, partition), { partition });
    expect(report.problems, `partition ${partition}'s page file`).toEqual([]);
    expect(report.headerSound, `partition ${partition}'s page file header`).toBe(true);
    expect(report.repairable, `partition ${partition}'s torn pages`).toBe(0);
  }
}, 240_000);
