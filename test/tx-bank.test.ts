/**
 * The bank test: 1,000 accounts of 1,000 each, spread over all 16 partitions, and thousands of
 * concurrent transfers from the main thread and from two attached app workers (each thread keeps 32
 * transactions outstanding, default retries). Every transfer reads two accounts, moves a random amount
 * if the source holds it, and writes a transfer record, all in one transaction.
 *
 * Checked: every transfer commits (no rejection at the default retry count); while transfers run, the
 * main thread and both workers repeatedly check the bank at snapshots (scan and point reads) and
 * through db.range(): the total is exactly 1,000,000 and every balance is explained by the records
 * visible in the same view (half a transaction breaks that); after the run the same holds, each thread
 * has exactly one record per committed transfer holding what its promise resolved, and
 * stats().transactions, which counts every thread's transactions, agrees with what the threads saw.
 *
 *   LIGHTNING_SEED=<n>               replay a seed (printed in the test name)
 *   LIGHTNING_BANK_TRANSFERS=<n>     transfers over all three threads (default 5,000)
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { createPartitionRouter, type PartitionRouter } from '../src/main/partition-router.js';
import type { BankWorkerInput, BankWorkerMessage, BankWorkerReport } from './fixtures/tx-bank-worker.js';
import { within } from './support/async.js';
import {
  accountCount,
  accountKey,
  type BankState,
  checkBank,
  encodeXfer,
  loadAccounts,
  recordsOf,
  xferKey,
} from './support/bank.js';
import { runTransfers } from './support/bank-driver.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

type Database = Awaited<ReturnType<typeof open>>;
type TransactionStats = ReturnType<Database['stats']>['transactions'];

const seed = seedFromEnv(randomInt(2 ** 32));
const transfersTotal = positiveFromEnv('LIGHTNING_BANK_TRANSFERS', 5000);
const partitions = 16;
const concurrency = 32;
/** Each worker runs 30% of the transfers, the main thread the rest. */
const workerTransfers = Math.floor(transfersTotal * 0.3);
const mainTransfers = transfersTotal - 2 * workerTransfers;
const checkEvery = 50;
/**
 * Every check reads all the transfer records, so a long run spaces its timed checks out: their cost
 * grows with the records, and they share two cores with the transfers.
 */
const checkIntervalMs = 30 * Math.max(1, Math.round(transfersTotal / 5000));

function positiveFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 3) throw new Error(`${name} must be an integer >= 3, got ${raw}`);
  return value;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface ThreadRun {
  readonly thread: string;
  readonly committed: number;
  readonly rejected: number;
  readonly errors: string[];
  readonly retries: number;
  readonly transfers: Array<[number, number, number | null]>;
  readonly transactions: TransactionStats;
}

/** Bounds on crossPartitionCommits: write sets spanning partitions, and read plus write sets. */
function crossPartitionBounds(router: PartitionRouter, run: ThreadRun): { low: number; high: number } {
  const partitionOf = (key: string): number => router.partitionOf(Buffer.from(key));
  let low = 0;
  let high = 0;
  run.transfers.forEach(([from, to, moved], n) => {
    if (moved === null) return;
    const record = partitionOf(xferKey(run.thread, n));
    const accounts = [partitionOf(accountKey(from)), partitionOf(accountKey(to))];
    const writes = new Set(moved > 0 ? [record, ...accounts] : [record]);
    if (writes.size > 1) low++;
    if (new Set([record, ...accounts]).size > 1) high++;
  });
  return { low, high };
}

function checkThreadRecords(state: BankState, run: ThreadRun): string[] {
  const problems: string[] = [];
  const found = recordsOf(state, run.thread);
  if (found !== run.committed) {
    problems.push(`${run.thread}: ${found} transfer records for ${run.committed} committed transfers`);
  }
  run.transfers.forEach(([from, to, moved], n) => {
    const record = state.records.get(xferKey(run.thread, n));
    if (moved === null) {
      if (record !== undefined) problems.push(`${run.thread}: rejected transfer ${n} left its record`);
    } else if (record === undefined) {
      problems.push(`${run.thread}: committed transfer ${n} has no record`);
    } else if (encodeXfer(record.from, record.to, record.moved) !== encodeXfer(from, to, moved)) {
      problems.push(
        `${run.thread}: transfer ${n} resolved ${encodeXfer(from, to, moved)}, its record holds ${encodeXfer(record.from, record.to, record.moved)}`,
      );
    }
  });
  return problems.slice(0, 20);
}

/** Checks `run.transactions` against what the run saw; `bounds` as crossPartitionBounds gives them. */
function checkThreadStats(run: ThreadRun, bounds: { low: number; high: number }): string[] {
  const t = run.transactions;
  const problems: string[] = [];
  const { low, high } = bounds;
  if (t.commits !== run.committed)
    problems.push(`commits ${t.commits}, ${run.committed} transfers committed`);
  if (t.retries !== run.retries)
    problems.push(`retries ${t.retries}, the bodies ran ${run.retries} extra times`);
  if (t.failed !== run.rejected) problems.push(`failed ${t.failed}, ${run.rejected} transfers rejected`);
  if (t.conflicts < t.retries) problems.push(`conflicts ${t.conflicts} < retries ${t.retries}`);
  if (t.crossPartitionCommits < low || t.crossPartitionCommits > high) {
    problems.push(`crossPartitionCommits ${t.crossPartitionCommits}, expected ${low}..${high}`);
  }
  return problems.map((problem) => `${run.thread} stats().transactions: ${problem} (${JSON.stringify(t)})`);
}

describe(`bank (LIGHTNING_SEED=${seed})`, () => {
  it(`${transfersTotal} concurrent transfers from 3 threads: all commit, the total is exact at every snapshot`, {
    timeout: 60_000 + transfersTotal * 20,
  }, async () => {
    console.log(`tx-bank: seed ${seed} (LIGHTNING_SEED=${seed} replays it), ${transfersTotal} transfers`);
    const dir = mkdtempSync(join(tmpdir(), 'ldb-bank-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = await open(dir, { partitions, workers: 2, durability: 'relaxed' });
    cleanups.push(() => within(db.close(), 20_000, 'db.close()').then(() => {}));
    const router = await createPartitionRouter(partitions);
    await loadAccounts(db);
    const spread = new Set(
      Array.from({ length: accountCount }, (_, i) => router.partitionOf(Buffer.from(accountKey(i)))),
    );
    expect(spread.size, 'the accounts fall in every partition').toBe(partitions);
    expect(checkBank(db, 'after loading', true).problems).toEqual([]);
    expect(db.stats().transactions.commits).toBe(0);

    const mailboxes = ['w1', 'w2'].map((thread, index) => {
      const input: BankWorkerInput = {
        handle: db.share(),
        thread,
        transfers: workerTransfers,
        concurrency,
        seed: (seed + 1 + index) >>> 0,
        checkEvery,
        checkIntervalMs,
      };
      const worker = startTsWorker(new URL('./fixtures/tx-bank-worker.ts', import.meta.url), input);
      cleanups.push(() => worker.terminate().then(() => {}));
      return new WorkerMailbox<BankWorkerMessage>(worker, `bank worker ${thread}`);
    });
    await within(Promise.all(mailboxes.map((mailbox) => mailbox.next('ready'))), 30_000, 'workers attaching');

    const problems: string[] = [];
    let snapshotChecks = 0;
    let scanChecks = 0;
    const checkAtSnapshot = (): void => {
      const snapshot = db.snapshot();
      try {
        problems.push(
          ...checkBank(snapshot, `main snapshot ${snapshotChecks} at ${snapshot.timestamp}`, true).problems,
        );
      } finally {
        snapshot.release();
      }
      snapshotChecks++;
    };
    const timer = setInterval(() => {
      checkAtSnapshot();
      problems.push(...checkBank(db, `main db.range scan ${scanChecks++}`, false).problems);
    }, checkIntervalMs);
    cleanups.push(() => clearInterval(timer));

    for (const mailbox of mailboxes) mailbox.worker.postMessage({ type: 'start' });
    const [main, ...reports] = await within(
      Promise.all([
        runTransfers({
          db,
          thread: 'main',
          transfers: mainTransfers,
          concurrency,
          random: mulberry32(seed),
          onCommitted: (n) => {
            if (n % checkEvery === 0) checkAtSnapshot();
          },
        }),
        ...mailboxes.map((mailbox) => mailbox.next('done').then((message) => message.report)),
      ]),
      50_000 + transfersTotal * 20,
      'the transfers',
    );
    clearInterval(timer);
    const workerReports = reports as BankWorkerReport[];
    const runs: ThreadRun[] = [
      {
        thread: 'main',
        committed: main.committed,
        rejected: main.rejected,
        errors: main.outcomes.flatMap((o) => (o.error === null ? [] : [o.error])).slice(0, 10),
        retries: main.retries,
        transfers: main.outcomes.map((o) => [o.plan.from, o.plan.to, o.moved]),
        transactions: db.stats().transactions,
      },
      ...workerReports.map((report, index) => ({
        thread: `w${index + 1}`,
        ...report,
        transactions: report.transactions as TransactionStats,
      })),
    ];
    const moved = runs.reduce(
      (sum, run) => sum + run.transfers.reduce((inner, [, , amount]) => inner + (amount ?? 0), 0),
      0,
    );
    console.log(
      `tx-bank: seed ${seed}: ${runs.map((r) => `${r.thread} ${r.committed} committed, ${r.rejected} rejected, ${r.retries} retries`).join('; ')}; ` +
        `${moved} moved; snapshot checks main ${snapshotChecks}, workers ${workerReports.map((r) => r.snapshotChecks).join('/')}; ` +
        `scan checks main ${scanChecks}, workers ${workerReports.map((r) => r.scanChecks).join('/')}; ` +
        `main ${(main.elapsedMs / 1000).toFixed(1)} s, workers ${workerReports.map((r) => (r.elapsedMs / 1000).toFixed(1)).join('/')} s`,
    );

    // What every thread saw while the transfers ran.
    expect([...problems.slice(0, 20), ...workerReports.flatMap((r) => r.problems)]).toEqual([]);
    expect(runs.map((run) => `${run.thread}: ${run.rejected} rejected ${run.errors.join(' | ')}`)).toEqual(
      runs.map((run) => `${run.thread}: 0 rejected `),
    );
    // The checks really ran during the run, on every thread.
    expect(snapshotChecks).toBeGreaterThanOrEqual(Math.floor(mainTransfers / checkEvery));
    for (const report of workerReports) {
      expect(report.snapshotChecks).toBeGreaterThanOrEqual(Math.floor(workerTransfers / checkEvery));
    }
    expect(moved, 'transfers moved money').toBeGreaterThan(0);

    // After the run: the bank at rest, then at a snapshot.
    const final = checkBank(db, 'after the run', true);
    expect(final.problems).toEqual([]);
    const snapshot = db.snapshot();
    expect(checkBank(snapshot, 'a snapshot after the run', true).problems).toEqual([]);
    snapshot.release();
    expect(final.records.size, 'one record per committed transfer').toBe(
      runs.reduce((sum, run) => sum + run.committed, 0),
    );
    expect(runs.flatMap((run) => checkThreadRecords(final, run))).toEqual([]);
    // stats() counts the transactions of every thread: it must agree with all three threads together.
    const allThreads: ThreadRun = {
      thread: 'all threads',
      committed: runs.reduce((sum, run) => sum + run.committed, 0),
      rejected: runs.reduce((sum, run) => sum + run.rejected, 0),
      errors: [],
      retries: runs.reduce((sum, run) => sum + run.retries, 0),
      transfers: runs.flatMap((run) => run.transfers),
      transactions: db.stats().transactions,
    };
    const bounds = runs.map((run) => crossPartitionBounds(router, run));
    const allBounds = {
      low: bounds.reduce((sum, bound) => sum + bound.low, 0),
      high: bounds.reduce((sum, bound) => sum + bound.high, 0),
    };
    expect(checkThreadStats(allThreads, allBounds)).toEqual([]);
    expect(db.stats().mvcc.openSnapshots, 'every snapshot released').toBe(0);

    for (const mailbox of mailboxes) mailbox.worker.postMessage({ type: 'close' });
    await within(Promise.all(mailboxes.map((mailbox) => mailbox.next('closed'))), 10_000, 'workers closing');
  });
});
