/**
 * A thread that dies holding a page latch in a buffer pool gives the latch back. A database over page
 * files (`memoryMaxBytes`: one partition of 64 frames, its tree several times larger) is shared with
 * an attached worker that dies in the middle of loading a page into the pool, so the page stays
 * latched with the worker's holder index: by process.exit() from inside the load (its own 'exit'
 * handler reports the death), or by worker.terminate() while it is blocked there (the opener's
 * 'worker' watch reports it). Then, once the opener's reclaimer has freed the worker's thread slot:
 *
 * - the page is no longer latched, and the dead thread has no holder index left in the pool (as seen
 *   through a pool attached on this thread for inspection), and stats() counts the recovery;
 * - overwriting every key goes through, and every key reads back its new value (left latched, the
 *   page would stall the owner and this thread for good).
 *
 * The latch is checked before any write or read is issued, so a reclaimer that does not give latches
 * back fails on an assertion, not on a hang. Waits poll with a deadline: they bound a hang, they time
 * nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { kSlotClaim, kSlotThread, slotWord } from '../src/shared-memory/index.js';
import {
  type AttachedPartitionTree,
  attachPartitionTree,
} from '../src/storage/page-file/paged-tree-handle.js';
import type {
  LatchDeath,
  LatchHoldingWorkerInput,
  LatchHoldingWorkerMessage,
} from './fixtures/latch-holding-worker.js';
import { within } from './support/async.js';
import { type BundledWorker, bundleWorker } from './support/bundled-worker.js';

type Database = Awaited<ReturnType<typeof open>>;

const fixture = new URL('./fixtures/latch-holding-worker.ts', import.meta.url);
/** Bounds every wait for a message, a thread's end or a reclaim: a hang, not a speed. */
const deadlineMs = 30_000;
const pageSizeBytes = 4096;
const framesPerPartition = 64;
/** About 1 MB of values: several times the 256 KiB the pool holds. */
const keyCount = 3000;
const valueBytes = 300;
/** Small enough for one batch's changed pages to fit the pool's frames. */
const batchSize = 4;
/** Batches in flight at once. */
const inFlightMax = 8;

const keys = Array.from({ length: keyCount }, (_, i) => `key:${String(i).padStart(5, '0')}`);

function valueFor(round: string, index: number): string {
  return `${round}:${index}:`.padEnd(valueBytes, round === 'first' ? 'a' : 'b');
}

const opened: { db: Database; dir: string; inspector: AttachedPartitionTree | null }[] = [];
let bundle: BundledWorker;

beforeAll(async () => {
  bundle = await bundleWorker(fixture);
});

afterAll(() => bundle.dispose());

afterEach(async () => {
  for (const { db, dir, inspector } of opened.splice(0)) {
    inspector?.close();
    await within(db.close(), deadlineMs, 'db.close()');
    rmSync(dir, { recursive: true, force: true });
  }
});

async function writeAll(db: Database, round: string): Promise<void> {
  const batches: number[] = [];
  for (let start = 0; start < keyCount; start += batchSize) batches.push(start);
  const lane = async (): Promise<void> => {
    for (let start = batches.shift(); start !== undefined; start = batches.shift()) {
      const operations = keys
        .slice(start, start + batchSize)
        .map((key, offset) => ({ type: 'put' as const, key, value: valueFor(round, start! + offset) }));
      await within(db.batch(operations), deadlineMs, `writing keys ${start}.. (${round})`);
    }
  };
  await Promise.all(Array.from({ length: inFlightMax }, lane));
}

/** Polls `check` until it returns true; fails naming `what` after the deadline. */
async function eventually(what: string, check: () => boolean): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > deadlineMs) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await sleep(10);
  }
}

/** The worker's 'latched' message, or a rejection if it fails or exits first. */
function firstMessage(worker: Worker): Promise<LatchHoldingWorkerMessage & { type: 'latched' }> {
  return within(
    new Promise((resolve, reject) => {
      worker.on('message', (message: LatchHoldingWorkerMessage) => {
        if (message.type === 'latched') resolve(message);
        else reject(new Error(`the latch-holding worker failed: ${message.message}`));
      });
      worker.once('error', (error) => reject(new Error(`the latch-holding worker crashed: ${error.stack}`)));
      worker.once('exit', (code) => reject(new Error(`the latch-holding worker exited (${code}) first`)));
    }),
    deadlineMs,
    "the worker's 'latched' message",
  );
}

/** A database far larger than its pool, and an attached worker blocked inside a load, latch held. */
async function startHolding(death: LatchDeath) {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-paged-dead-'));
  const db = await open(dir, {
    partitions: 1,
    workers: 1,
    memoryMaxBytes: framesPerPartition * pageSizeBytes,
    threadsMax: 4,
    // Not what is tested: spares the writes an fsync each.
    durability: 'relaxed',
  });
  const entry: (typeof opened)[number] = { db, dir, inspector: null };
  opened.push(entry);
  await writeAll(db, 'first');
  await within(db.checkpoint(), deadlineMs, 'db.checkpoint()');

  const handle = db.share();
  // A second attachment of this thread, with a holder index of its own, to look at latches.
  entry.inspector = await attachPartitionTree(handle.trees[0]!);
  const pool = entry.inspector.pool!;
  expect(pool).not.toBeNull();
  const stats = db.stats();
  expect(stats.bufferPools?.[0]?.framesMax).toBe(framesPerPartition);
  // The tree is far larger than the pool: reads miss it.
  expect(pool.pagesAllocated()).toBeGreaterThan(3 * framesPerPartition);
  const recoveriesBefore = stats.bufferPools![0]!.latchRecoveries;

  const go = new Int32Array(new SharedArrayBuffer(4));
  const input: LatchHoldingWorkerInput = { handle, death, keys, go: go.buffer as SharedArrayBuffer };
  const worker = new Worker(bundle.file, { workerData: input });
  const workerThreadId = worker.threadId;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const { pageId } = await firstMessage(worker);

  // The worker, blocked inside the load, holds its thread slot, a holder index in the pool and the
  // latch of the page it was loading.
  const control = new Int32Array(handle.databaseControl);
  const slot = Array.from({ length: handle.threadsMax }, (_, s) => s).find(
    (s) => Atomics.load(control, slotWord(s, kSlotThread)) === workerThreadId + 1,
  );
  expect(slot, "the worker's thread slot").toBeDefined();
  const deadHolder = pool.holderOfThread(workerThreadId);
  expect(deadHolder).toBeGreaterThanOrEqual(0);
  expect(deadHolder).not.toBe(pool.holder);
  expect(pool.isLatched(pageId), `page ${pageId} latched by the worker`).toBe(true);
  return { db, pool, pageId, worker, workerThreadId, exited, go, control, slot: slot!, recoveriesBefore };
}

describe('a thread that dies holding a page latch', () => {
  it.each<LatchDeath>(['exit', 'terminate'])('gives the latch back when it dies by %s', async (death) => {
    const { db, pool, pageId, worker, workerThreadId, exited, go, control, slot, recoveriesBefore } =
      await startHolding(death);

    if (death === 'terminate') await within(worker.terminate(), deadlineMs, 'worker.terminate()');
    else {
      Atomics.store(go, 0, 1);
      Atomics.notify(go, 0);
    }
    await within(exited, deadlineMs, 'the worker thread ending');
    // The reclaimer frees the slot last, after the latches, the rings and the transactions.
    await eventually(
      `the reclaimer freeing slot ${slot}`,
      () => Atomics.load(control, slotWord(slot, kSlotClaim)) === 0,
    );

    expect(pool.isLatched(pageId), `page ${pageId} still latched after the reclaim`).toBe(false);
    expect(pool.holderOfThread(workerThreadId), "the dead thread's holder index").toBe(-1);
    expect(db.stats().bufferPools![0]!.latchRecoveries).toBeGreaterThan(recoveriesBefore);

    // Every key, the ones on the page the worker held among them, is written and read again.
    await writeAll(db, 'second');
    const wrong = keys.filter((key, i) => db.getString(key) !== valueFor('second', i));
    expect(wrong, 'keys not reading back their new value').toEqual([]);
    await within(db.checkpoint(), deadlineMs, 'db.checkpoint() after the overwrite');
    expect(pool.isLatched(pageId)).toBe(false);
  });

  it('lets the thread that terminated it read the latched page before its event loop runs again', async () => {
    const { db, pool, pageId, worker, workerThreadId, exited, control, slot, recoveriesBefore } =
      await startHolding('terminate');

    // The worker's death is reported from its 'exit' event, on this thread's event loop. Every key is
    // read now, synchronously: the reads of the latched page wait on it, and only the waiting
    // thread itself can see that the holder is gone (before, the wait gave up after 10 s with
    // ERR_INTERNAL).
    const ending = worker.terminate();
    const wrong = keys.filter((key, i) => db.getString(key) !== valueFor('first', i));
    expect(wrong, 'keys not reading back their value').toEqual([]);
    expect(pool.isLatched(pageId), `page ${pageId} still latched`).toBe(false);
    expect(pool.holderOfThread(workerThreadId), "the dead thread's holder index").toBe(-1);
    expect(db.stats().bufferPools![0]!.latchRecoveries).toBe(recoveriesBefore + 1);
    // The death has not been reported yet: the reclaimer has not run, the slot is still claimed.
    expect(Atomics.load(control, slotWord(slot, kSlotClaim))).not.toBe(0);

    await within(ending, deadlineMs, 'worker.terminate()');
    await within(exited, deadlineMs, 'the worker thread ending');
    await eventually(
      `the reclaimer freeing slot ${slot}`,
      () => Atomics.load(control, slotWord(slot, kSlotClaim)) === 0,
    );
    // The reclaimer found the latches given back already: nothing recovered twice.
    expect(db.stats().bufferPools![0]!.latchRecoveries).toBe(recoveriesBefore + 1);
    await writeAll(db, 'second');
    const stale = keys.filter((key, i) => db.getString(key) !== valueFor('second', i));
    expect(stale, 'keys not reading back their new value').toEqual([]);
  });
});
