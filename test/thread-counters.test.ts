/**
 * Whole-process counts: app workers attached with attach() do puts, gets and transactions; the
 * opener's stats() and its admin server's /metrics (real HTTP) count them, and keep counting them
 * after a worker closed, after one was terminated holding its slot and the slot was reclaimed, and
 * after a new thread took that slot over.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attach, type Database, open } from '../src/index.js';
import type { CountingWorkerInput, CountingWorkerMessage } from './fixtures/counting-worker.js';
import { codeOf, within } from './support/async.js';
import { parseExposition, total } from './support/prometheus-text.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';
import { useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-counters-');
const cleanups: (() => Promise<unknown>)[] = [];
/** Polls for the dead worker's slot at this interval, at most this many times. */
const reclaimPollMs = 50;
const reclaimPollsMax = 600;

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

interface Work {
  puts: number;
  gets: number;
  transactions: number;
}

async function runWorker(handle: unknown, name: string, work: Work, close: boolean): Promise<void> {
  const input: CountingWorkerInput = {
    handle: handle as CountingWorkerInput['handle'],
    name,
    ...work,
    close,
  };
  const worker = startTsWorker(new URL('./fixtures/counting-worker.ts', import.meta.url), input);
  cleanups.push(() => worker.terminate());
  const mailbox = new WorkerMailbox<CountingWorkerMessage>(worker, name);
  await within(mailbox.next('done'), 60_000, `${name} done`);
  if (close) await within(mailbox.next('closed'), 60_000, `${name} closed`);
  // Terminated either way: without close() the thread dies holding its slot.
  await worker.terminate();
}

async function scrape(url: string): Promise<ReturnType<typeof parseExposition>> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** The opener's view, in stats() and in /metrics, equals `expected`. */
async function expectCounts(db: Database, url: string, expected: Work, label: string): Promise<void> {
  const stats = db.stats();
  expect(stats.operations.put, `${label}: stats puts`).toBe(expected.puts);
  expect(stats.operations.get, `${label}: stats gets`).toBe(expected.gets);
  expect(stats.transactions.commits, `${label}: stats commits`).toBe(expected.transactions);
  const metrics = await scrape(url);
  expect(total(metrics, 'lightning_operations_total', { operation: 'put' }), `${label}: metric puts`).toBe(
    expected.puts,
  );
  expect(total(metrics, 'lightning_operations_total', { operation: 'get' }), `${label}: metric gets`).toBe(
    expected.gets,
  );
  expect(total(metrics, 'lightning_transaction_commits_total'), `${label}: metric commits`).toBe(
    expected.transactions,
  );
}

describe('thread counters', () => {
  it("counts every thread's operations and transactions, through worker exits and slot reuse", async () => {
    const seed = seedFromEnv(0x7c0_0e75);
    console.log(`thread counters seed ${seed}`);
    const random = mulberry32(seed);
    const work = (): Work => ({
      puts: 20 + (random() % 60),
      gets: 20 + (random() % 100),
      transactions: 3 + (random() % 10),
    });
    // Two slots: the opener holds one, so every worker (and the last attach) takes the other in turn.
    const db = await open(join(await temporaryDirectory(), 'db'), {
      partitions: 4,
      workers: 2,
      threadsMax: 2,
      durability: 'none',
    });
    cleanups.push(() => db.close());
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    const handle = db.share();
    await expectCounts(db, server.url, { puts: 0, gets: 0, transactions: 0 }, 'at open');

    const closing = work();
    await runWorker(handle, 'closing', closing, true);
    const expected = { ...closing };
    await expectCounts(db, server.url, expected, 'after a worker closed');

    const dying = work();
    await runWorker(handle, 'dying', dying, false);
    expected.puts += dying.puts;
    expected.gets += dying.gets;
    expected.transactions += dying.transactions;
    await expectCounts(db, server.url, expected, 'after a worker died holding its slot');

    // The dead worker's slot is reclaimed (then attach succeeds): its counts stay, and the slot's
    // next holder counts on top of them.
    let next: Database | null = null;
    for (let poll = 0; next === null; poll++) {
      try {
        next = await attach(handle);
      } catch (error) {
        if (codeOf(error) !== 'ERR_BAD_ARGUMENT' || poll >= reclaimPollsMax) throw error;
        await new Promise((resolve) => setTimeout(resolve, reclaimPollMs));
      }
    }
    cleanups.push(() => next.close());
    await expectCounts(db, server.url, expected, 'after the dead slot was reclaimed');
    await next.put('next', 'x');
    next.get('next');
    await next.close();
    expected.puts++;
    expected.gets++;
    await expectCounts(db, server.url, expected, "after the slot's next holder closed");
  });
});
