/**
 * Multi-thread stress test of the buffer pool over a real page file, with the pool at 1/16 and at
 * 1/1024 of the data: one owner thread rewrites pages and, like a partition owner, writes its dirty
 * pages back and evicts in the background; four reader threads read pages optimistically, miss, load
 * pages themselves and run the clock when no frame is free. Every read that validates must show:
 *
 * - the page asked for (a frame reused for another page is caught);
 * - one whole write of it (a page read while being written or loaded is caught);
 * - a generation no older than this reader saw before (a page evicted while dirty, or a checkpoint
 *   that lost a write, would bring an old generation back);
 * - a generation the owner had started to write (garbage that passed validation is caught).
 *
 * The owner also allocates pages as it goes, which readers pick as soon as the page count includes
 * them (latched until the owner fills them). Afterwards every page checksum in the file is valid and a fresh pool reads every page at the
 * owner's last generation of it. Work is counted in operations, never in time.
 *
 * LIGHTNING_SEED replays the threads' choices of pages (not their interleaving).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { BufferPoolStats } from '../src/shared-memory/pool/buffer-pool.js';
import { BufferPool } from '../src/shared-memory/pool/buffer-pool.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import { pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import { buildStressPageFile, readStressPage, stressPageSize } from './fixtures/pool-stress-pages.js';
import type { PoolStressInput } from './fixtures/pool-stress-worker.js';
import { seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const seed = seedFromEnv(0x5eed_b001);
console.log(`pool-stress: seed ${seed} (LIGHTNING_SEED to replay)`);

const pageCount = 16_384;
const readers = 4;
const readsPerReader = 20_000;
/** Pages the owner allocates during the run, which readers pick as soon as they exist. */
const pagesGrown = 256;

type OwnerMessage =
  | { type: 'ready'; sab: SharedArrayBuffer }
  | {
      type: 'done';
      rewrites: number;
      checkpoints: number;
      full: number;
      grown: number;
      stats: BufferPoolStats;
    }
  | { type: 'failed' };
type ReaderMessage =
  | {
      type: 'done';
      counts: { validated: number; restarts: number; full: number };
      errors: Record<string, number>;
      examples: string[];
      hits: number;
    }
  | { type: 'failed' };

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-pool-stress-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const workerUrl = new URL('./fixtures/pool-stress-worker.ts', import.meta.url);

it.each([
  { share: 16, rewritesMin: 4_000 },
  { share: 1024, rewritesMin: 1_500 },
])(
  'keeps every read whole and current with the pool at 1/$share of the data',
  async ({ share, rewritesMin }) => {
    await buildStressPageFile(dir, pageCount);
    const framesMax = pageCount / share;
    const pagesFinal = pageCount + pagesGrown;
    const shared = new SharedArrayBuffer(4 * (pagesFinal + 1));
    const base: Omit<PoolStressInput, 'role' | 'readerIndex'> = {
      dir,
      seed,
      pageCount,
      pagesGrown,
      framesMax,
      rewritesMin,
      rewritesMax: rewritesMin * 20,
      reads: readsPerReader,
      shared,
      readers,
    };
    const owner = new WorkerMailbox<OwnerMessage>(
      startTsWorker(workerUrl, { ...base, role: 'owner', readerIndex: -1 }),
      'owner',
    );
    const started: WorkerMailbox<ReaderMessage>[] = [];
    try {
      const { sab } = await owner.next('ready');
      for (let readerIndex = 0; readerIndex < readers; readerIndex++) {
        const input: PoolStressInput = { ...base, role: 'reader', readerIndex, sab };
        started.push(
          new WorkerMailbox<ReaderMessage>(startTsWorker(workerUrl, input), `reader ${readerIndex}`),
        );
      }
      const results = await Promise.all(started.map((reader) => reader.next('done')));
      const ownerDone = await owner.next('done');
      console.log(
        `pool-stress 1/${share}: ${framesMax} frames over ${pageCount} pages; owner ${ownerDone.rewrites} rewrites, ` +
          `${ownerDone.checkpoints} checkpoints, ${ownerDone.grown} pages allocated, ${ownerDone.full} full; misses ${ownerDone.stats.misses}, ` +
          `evictions ${ownerDone.stats.evictions}; readers ${JSON.stringify(results.map((r) => r.counts))}`,
      );
      for (const [index, result] of results.entries()) {
        expect(result.errors, `reader ${index}: ${result.examples.join('; ')}`).toEqual({
          wrongPage: 0,
          torn: 0,
          backwards: 0,
          future: 0,
        });
        expect(result.counts.validated).toBe(readsPerReader);
      }
      expect(ownerDone.rewrites).toBeGreaterThanOrEqual(rewritesMin);
      expect(ownerDone.grown).toBe(pagesGrown);
      // The readers raced the owner and missed: restarts show the race, misses and evictions the pool's work.
      expect(ownerDone.stats.misses).toBeGreaterThan(framesMax);
      expect(ownerDone.stats.evictions).toBeGreaterThan(0);
      expect(ownerDone.stats.residentPages).toBeLessThanOrEqual(framesMax);
      expect(ownerDone.stats.dirtyPages).toBe(0);

      // The file: every page sound, each at the owner's last generation of it.
      expect(await pageFileProblems(dir, stressPageSize)).toEqual([]);
      const generations = new Int32Array(shared);
      const reader = await PageFileReader.open(dir, { pageSizeBytes: stressPageSize, partition: 0 });
      try {
        const fresh = BufferPool.create(
          {
            pageSizeBytes: stressPageSize,
            pagesMax: pagesFinal + 1,
            framesMax: 64,
            pagesAllocated: pagesFinal + 1,
          },
          reader,
        );
        let stale = 0;
        for (let pageId = 1; pageId <= pagesFinal; pageId++) {
          const seen = readStressPage(fresh.u8, fresh.read(pageId));
          if (seen.pageId !== pageId || !seen.whole || seen.generation !== generations[pageId]) stale++;
        }
        expect(stale).toBe(0);
      } finally {
        reader.close();
      }
    } finally {
      await Promise.all([owner, ...started].map((mailbox) => mailbox.worker.terminate()));
    }
  },
  120_000,
);
