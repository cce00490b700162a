/**
 * Attached readers terminated at random, in the middle of reads over a buffer pool far smaller than
 * the data, while the thread that opened the database reads on synchronously. A reader dies wherever
 * it is: often loading a page under its latch, or holding the pool's frame mutex. Its death reaches
 * the database through the 'exit' event on this thread, which cannot fire while this thread reads:
 * every wait on a dead reader's latch must end by the waiter's own check of the holder's thread
 * (buffer-pool.ts), within the read. Each round:
 *
 * - picks a reader and a read count (seeded), and terminates the reader once it has done that many;
 * - reads `burstReads` seeded keys on this thread before the event loop runs again: every value right,
 *   no error (a wait that gave up would be ERR_INTERNAL, after 10 s);
 * - then lets the termination finish and starts a new reader in its place.
 *
 * The other readers check every value they read and report the first wrong one or error. After the
 * rounds: every latch is given back and the database closes. LIGHTNING_READER_DEATHS sets the rounds
 * (npm run test:chaos runs 1,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { open } from '../src/index.js';
import {
  keyOf,
  type RandomReaderInput,
  type RandomReaderMessage,
  storedValue,
} from './fixtures/random-reader-worker.js';
import { within } from './support/async.js';
import { type BundledWorker, bundleWorker } from './support/bundled-worker.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x0dead_2ead);
const rounds = Number(process.env.LIGHTNING_READER_DEATHS ?? 24);
console.log(`paged-reader-deaths: seed ${seed}, ${rounds} rounds (LIGHTNING_SEED, LIGHTNING_READER_DEATHS)`);

const keyCount = 6000;
const framesPerPartition = 64;
const pageSizeBytes = 4096;
const readersLive = 3;
const burstReads = 1000;
/** Bounds each wait for a reader's progress or end: a hang, not a speed. */
const deadlineMs = 60_000;

let bundle: BundledWorker;
beforeAll(async () => {
  bundle = await bundleWorker(new URL('./fixtures/random-reader-worker.ts', import.meta.url));
});
afterAll(() => bundle.dispose());

interface Reader {
  worker: Worker;
  reads: Int32Array;
  ended: Promise<void>;
}

it(
  `keeps the opener's reads right and unblocked while ${rounds} attached readers are terminated mid-read`,
  async () => {
    const random = mulberry32(seed);
    const dir = mkdtempSync(join(tmpdir(), 'ldb-reader-deaths-'));
    const db = await open(dir, {
      partitions: 1,
      workers: 1,
      memoryMaxBytes: framesPerPartition * pageSizeBytes,
      threadsMax: 16,
      durability: 'relaxed',
    });
    try {
      for (let start = 0; start < keyCount; start += 4) {
        const operations = [0, 1, 2, 3].map((offset) => ({
          type: 'put' as const,
          key: keyOf(start + offset),
          value: storedValue(start + offset),
        }));
        await db.batch(operations);
      }
      await db.checkpoint();
      const handle = db.share();
      const failures: string[] = [];
      const startReader = (): Reader => {
        const reads = new Int32Array(new SharedArrayBuffer(4));
        const input: RandomReaderInput = {
          handle,
          seed: random(),
          keyCount,
          reads: reads.buffer as SharedArrayBuffer,
        };
        const worker = new Worker(bundle.file, { workerData: input });
        worker.on('message', (message: RandomReaderMessage) => failures.push(message.message));
        worker.on('error', (error) => failures.push(`reader crashed: ${error.stack}`));
        const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        return { worker, reads, ended };
      };
      const readers = Array.from({ length: readersLive }, startReader);
      const recoveriesBefore = db.stats().bufferPools![0]!.latchRecoveries;
      let openerReads = 0;
      for (let round = 0; round < rounds; round++) {
        const victim = random() % readersLive;
        const reader = readers[victim]!;
        // Somewhere in its first few thousand reads: past attach, inside the read loop.
        const at = 1 + (random() % 3000);
        const started = performance.now();
        while (Atomics.load(reader.reads, 0) < at && failures.length === 0) {
          if (performance.now() - started > deadlineMs)
            throw new Error(`round ${round}: reader never reached ${at} reads`);
          await sleep(1);
        }
        const terminated = reader.worker.terminate();
        // Synchronously, with no turn of the event loop until the burst is done.
        for (let n = 0; n < burstReads; n++) {
          const index = random() % keyCount;
          const value = db.getString(keyOf(index));
          if (value !== storedValue(index))
            failures.push(`opener, round ${round}: ${keyOf(index)} read wrong`);
          openerReads++;
        }
        await within(terminated, deadlineMs, `terminating reader ${victim} in round ${round}`);
        await within(reader.ended, deadlineMs, `reader ${victim} ending in round ${round}`);
        expect(failures, `failures by round ${round}`).toEqual([]);
        readers[victim] = startReader();
      }
      for (const reader of readers)
        await within(reader.worker.terminate(), deadlineMs, 'terminating a reader');
      expect(failures).toEqual([]);
      expect(openerReads).toBe(rounds * burstReads);
      const pool = db.stats().bufferPools![0]!;
      console.log(
        `paged-reader-deaths: ${rounds} readers terminated, ${openerReads} opener reads, ` +
          `${pool.latchRecoveries - recoveriesBefore} latch recoveries, ${pool.misses} misses`,
      );
    } finally {
      await within(db.close(), deadlineMs, 'db.close()');
      rmSync(dir, { recursive: true, force: true });
    }
  },
  Math.max(180_000, rounds * 2_000),
);
