/**
 * Threads that die release what they held. An attached worker dies without close() in each way a
 * thread can end — process.exit(), worker.terminate(), an uncaught exception, an event loop that
 * empties — and then:
 *
 * - its snapshot stops pinning old versions: versions retained by overwrites while it was open fall
 *   back to zero, and stats().mvcc.openSnapshots to zero;
 * - its thread slot is free again: with threadsMax 2 (the opener and one more), attach() succeeds;
 * - a two-phase transaction it left prepared and undecided is aborted, so plain writes to its keys go
 *   through; one whose decision record it had written is committed.
 *
 * Then threads attach and die 1,000 times over (LIGHTNING_LIVENESS_ROUNDS), a few at a time, with
 * threadsMax 8: the database must still accept attach() and clean up versions at the end.
 *
 * Waits poll with deadlines of tens of seconds: they bound a hang, they do not time anything.
 *
 *   LIGHTNING_SEED=<n>               replay a seed (printed)
 *   LIGHTNING_LIVENESS_ROUNDS=<n>    threads in the attach/die loop (default 1,000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attach, open } from '../src/index.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import type { Death, DyingWorkerInput, DyingWorkerMessage } from './fixtures/dying-attached-worker.js';
import { within } from './support/async.js';
import { type BundledWorker, bundleWorker } from './support/bundled-worker.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;

const seed = seedFromEnv(0x11fe_0001);
const loopRounds = positiveFromEnv('LIGHTNING_LIVENESS_ROUNDS', 1000);
const deaths: readonly Death[] = ['exit', 'terminate', 'throw', 'empty'];
const fixture = new URL('./fixtures/dying-attached-worker.ts', import.meta.url);
/** Bounds every wait for the database to notice a death and undo it: a hang, not a speed. */
const deadlineMs = 30_000;

const opened: { db: Database; dir: string }[] = [];
let bundle: BundledWorker;

beforeAll(async () => {
  bundle = await bundleWorker(fixture);
});

afterAll(() => bundle.dispose());

afterEach(async () => {
  for (const { db, dir } of opened.splice(0)) {
    await within(db.close(), 20_000, 'db.close()');
    rmSync(dir, { recursive: true, force: true });
  }
});

async function openDatabase(threadsMax: number): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-liveness-'));
  const db = await open(dir, { partitions: 4, workers: 2, durability: 'sync', threadsMax });
  opened.push({ db, dir });
  return db;
}

/** Polls `check` until it returns true; fails naming `what` after the deadline. */
async function eventually(what: string, check: () => boolean | Promise<boolean>): Promise<number> {
  const started = performance.now();
  let polls = 0;
  for (;;) {
    polls++;
    if (await check()) return polls;
    if (performance.now() - started > deadlineMs) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await sleep(20);
  }
}

interface Dying {
  worker: Worker;
  next: (type: DyingWorkerMessage['type']) => Promise<DyingWorkerMessage>;
  exited: Promise<number>;
}

function startDying(input: DyingWorkerInput): Dying {
  const worker = new Worker(bundle.file, { workerData: input });
  const queued: DyingWorkerMessage[] = [];
  const waiting: { type: string; resolve: (message: DyingWorkerMessage) => void }[] = [];
  let failure: Error | null = null;
  const failWaiters = (error: Error): void => {
    failure ??= error;
    for (const waiter of waiting.splice(0)) waiter.resolve({ type: 'failed', message: failure.message });
  };
  worker.on('message', (message: DyingWorkerMessage) => {
    if (message.type === 'failed') failWaiters(new Error(message.message));
    const index = waiting.findIndex((waiter) => waiter.type === message.type);
    if (index >= 0) waiting.splice(index, 1)[0]!.resolve(message);
    else queued.push(message);
  });
  // The uncaught exception is the point of the 'throw' death: expected, not a test failure.
  worker.on('error', () => {});
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  void exited.then(() => failWaiters(new Error('the worker exited')));
  return {
    worker,
    exited,
    next: async (type) => {
      const index = queued.findIndex((message) => message.type === type);
      if (index >= 0) return queued.splice(index, 1)[0]!;
      if (failure !== null) throw failure;
      const message = await within(
        new Promise<DyingWorkerMessage>((resolve) => waiting.push({ type, resolve })),
        deadlineMs,
        `the worker's '${type}' message`,
      );
      if (message.type === 'failed') throw new Error(`the dying worker failed: ${message.message}`);
      return message;
    },
  };
}

/** Lets `dying` die (terminating it if that is its death) and waits for its thread to end. */
async function letDie(dying: Dying, death: Death): Promise<void> {
  if (death === 'terminate') await dying.worker.terminate();
  else dying.worker.postMessage('die');
  await within(dying.exited, deadlineMs, 'the worker thread ending');
}

/**
 * attach() from this thread succeeds (the slot is free again); when `writeKey` is given, the attached
 * database writes 'next thread' under it and reads it back. The attached database is closed.
 */
async function attachSucceeds(db: Database, writeKey?: string): Promise<boolean> {
  let attached: Database;
  try {
    attached = await attach(db.share());
  } catch {
    return false;
  }
  try {
    if (writeKey !== undefined) {
      await within(attached.put(writeKey, 'next thread'), deadlineMs, "a write by the slot's next thread");
      expect(attached.get(writeKey)?.toString()).toBe('next thread');
    }
  } finally {
    await attached.close();
  }
  return true;
}

describe('a thread that dies without close()', () => {
  for (const death of deaths) {
    it(`releases its slot and its snapshot (${death})`, async () => {
      const db = await openDatabase(2);
      const keys = Array.from({ length: 20 }, (_, i) => `pinned:${i}`);
      await db.batch(keys.map((key) => ({ type: 'put', key, value: 'before' })));
      const dying = startDying({ handle: db.share(), death, scenario: 'snapshot' });
      await dying.next('ready');
      expect(db.stats().mvcc.openSnapshots).toBe(1);
      // Its slot is the only one besides the opener's: nobody else can attach while it lives.
      expect(await attachSucceeds(db)).toBe(false);
      // Overwrites while its snapshot is open keep the versions it can see.
      for (let round = 0; round < 3; round++) {
        for (const key of keys) await db.put(key, `after ${round}`);
      }
      const retained = db.stats().mvcc.versionsRetained;
      expect(retained).toBeGreaterThanOrEqual(keys.length);
      await letDie(dying, death);
      const polls = await eventually('its snapshot released and the versions it pinned cleaned up', () => {
        const { openSnapshots, versionsRetained } = db.stats().mvcc;
        return openSnapshots === 0 && versionsRetained === 0;
      });
      await eventually('attach() succeeding in its slot', () => attachSucceeds(db));
      console.log(
        `thread-liveness (${death}): ${retained} versions pinned by the dead thread, all cleaned up (${polls} polls)`,
      );
      expect(db.get('pinned:0')?.toString()).toBe('after 2');
    });
  }

  for (const death of deaths) {
    it(`has its undecided two-phase transaction aborted (${death})`, async () => {
      const db = await openDatabase(2);
      // Sixteen keys over four partitions: a cross-partition transaction (all in one has odds 4^-15).
      const keys = Array.from({ length: 16 }, (_, i) => `undecided:${i}`);
      await db.batch(keys.map((key) => ({ type: 'put', key, value: 'before' })));
      // A thread whose event loop must empty cannot have a write in flight.
      const orphanWrite = death !== 'empty';
      const dying = startDying({
        handle: db.share(),
        death,
        scenario: 'undecided',
        keys,
        value: 'tx',
        orphanWrite,
      });
      await dying.next('prepared');
      await letDie(dying, death);
      // A plain write to a key the transaction holds waits for its decision: it must come.
      const [orphaned, ...others] = keys;
      await within(
        Promise.all(others.map((key) => db.put(key, 'plain'))),
        deadlineMs,
        "plain writes to the keys of the dead thread's transaction",
      );
      for (const key of others) expect(db.get(key)?.toString()).toBe('plain');
      // Every partition applied the abort; the dead thread's own write, left waiting in its ring
      // behind its transaction's lock, was dropped with its ring, not applied afterwards.
      expect(db.get(orphaned!)?.toString()).toBe('before');
      await within(db.put(orphaned!, 'plain'), deadlineMs, 'a plain write to the last key');
      // The slot's next thread starts on clean rings: its writes complete as its own.
      await eventually('attach() succeeding in its slot', () => attachSucceeds(db, orphaned!));
      expect(db.get(orphaned!)?.toString()).toBe('next thread');
      expect(db.stats().mvcc.versionsRetained).toBeLessThanOrEqual(keys.length);
    });
  }

  for (const death of ['exit', 'terminate'] as const) {
    it(`has its transaction committed when its decision was durable (${death})`, async () => {
      const db = await openDatabase(2);
      const keys = Array.from({ length: 16 }, (_, i) => `decided:${i}`);
      await db.batch(keys.map((key) => ({ type: 'put', key, value: 'before' })));
      const dying = startDying({ handle: db.share(), death, scenario: 'decided', keys, value: 'tx' });
      await dying.next('prepared');
      await letDie(dying, death);
      await eventually('the transaction committed in every partition', () =>
        keys.every((key) => db.get(key)?.toString() === 'tx'),
      );
      await within(
        Promise.all(keys.map((key) => db.put(key, 'plain'))),
        deadlineMs,
        'plain writes after the commit',
      );
      for (const key of keys) expect(db.get(key)?.toString()).toBe('plain');
      await eventually('attach() succeeding in its slot', () => attachSucceeds(db));
    });
  }
});

describe('threads attaching and dying over and over', () => {
  it(`leaves the database accepting attach() and cleaning versions (${loopRounds} threads, seed ${seed})`, async () => {
    console.log(`thread-liveness: seed ${seed} (replay with LIGHTNING_SEED=${seed})`);
    const random = mulberry32(seed);
    const db = await openDatabase(8);
    const keys = Array.from({ length: 8 }, (_, i) => `loop:${i}`);
    await db.batch(keys.map((key) => ({ type: 'put', key, value: '0' })));
    // Seven at a time: every other slot is taken, so each new one needs a slot a dead thread held.
    const concurrency = 7;
    const counts = new Map<Death, number>(deaths.map((death) => [death, 0]));
    let started = 0;
    let overwrites = 0;
    let refusedWhileReclaiming = 0;
    const lane = async (): Promise<void> => {
      while (started < loopRounds) {
        started++;
        const death = deaths[random() % deaths.length]!;
        counts.set(death, counts.get(death)! + 1);
        // The slot may still be being reclaimed from the thread before: retry attach, for a while.
        let dying: Dying;
        const refusedSince = performance.now();
        for (;;) {
          dying = startDying({ handle: db.share(), death, scenario: 'snapshot' });
          try {
            await dying.next('ready');
            break;
          } catch (error) {
            await within(dying.exited, deadlineMs, 'a worker that could not attach ending');
            if (!String(error).includes('thread slots are in use')) throw error;
            if (performance.now() - refusedSince > deadlineMs)
              throw new Error(
                `attach() refused for ${deadlineMs} ms after ${started} threads: ${String(error)}`,
              );
            refusedWhileReclaiming++;
            await sleep(50);
          }
        }
        await db.put(keys[started % keys.length]!, String(started));
        overwrites++;
        await letDie(dying, death);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    const polls = await eventually("every dead thread's snapshot released and versions cleaned", () => {
      const { openSnapshots, versionsRetained } = db.stats().mvcc;
      return openSnapshots === 0 && versionsRetained === 0;
    });
    // Every slot but the opener's is free: seven threads attach at once.
    const attached = await Promise.all(Array.from({ length: 7 }, () => attach(db.share())));
    for (const database of attached) await database.close();
    const summary = [...counts].map(([death, count]) => `${death} ${count}`).join(', ');
    console.log(
      `thread-liveness: ${started} threads attached and died (${summary}); ${overwrites} overwrites; attach refused ${refusedWhileReclaiming} times while a slot was being reclaimed; clean after ${polls} polls`,
    );
    expect(started).toBe(loopRounds);
  }, 1_800_000);
});
