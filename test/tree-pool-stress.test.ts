/**
 * Multi-thread stress test of the B+Tree over a buffer pool holding 1/16 and 1/1024 of its pages: an
 * owner thread overwrites and deletes keys (three in four among 64 hot keys, which readers read most
 * too; some values in overflow chains) and writes its dirty pages back to a real page file as a
 * partition owner would; four reader threads attached to the same pool get and scan, missing and
 * loading pages themselves. Every value a reader is given must be:
 *
 * - the value of the key it asked for, or that a scan returned it with (a frame reused is caught);
 * - whole (a page or overflow chain read while being written, loaded or evicted is caught);
 * - no older than the reader saw before for that key (a lost write, or a dirty page evicted and read
 *   back old, is caught);
 * - of a generation the owner had started to write (garbage that passed validation is caught);
 *
 * and scans return keys in order. Afterwards checkTree passes, the owner reads every key at its last
 * generation, and a fresh pool over the page file alone reads the same tree. Work is counted in
 * operations, never in time.
 *
 * LIGHTNING_SEED replays the threads' choices (not their interleaving).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { BufferPoolStats } from '../src/shared-memory/pool/buffer-pool.js';
import { BufferPool } from '../src/shared-memory/pool/buffer-pool.js';
import { PooledPageSpace } from '../src/shared-memory/pool/pooled-page-space.js';
import { TreeReader } from '../src/shared-memory/tree/tree-reader.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import { createPageFile, pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import type { ReaderCounts, TreePoolStressInput } from './fixtures/tree-pool-stress-worker.js';
import { readTreePoolValue, treePoolKeyIndex, treePoolPageSize } from './fixtures/tree-pool-values.js';
import { seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const seed = seedFromEnv(0x7ee5_b001);
console.log(`tree-pool-stress: seed ${seed} (LIGHTNING_SEED to replay)`);

const keys = 200_000;
const pagesMax = 32_768;
const readers = 4;
const readsPerReader = 5_000;

type OwnerMessage =
  | { type: 'ready'; sab: SharedArrayBuffer; metaPageId: number; pages: number; framesMax: number }
  | {
      type: 'done';
      writes: number;
      deletes: number;
      writeBacks: number;
      retried: number;
      wrong: number;
      examples: string[];
      live: number;
      entries: number;
      stats: BufferPoolStats;
      model: Int32Array;
    }
  | { type: 'failed' };
type ReaderMessage =
  | {
      type: 'done';
      counts: ReaderCounts;
      errors: Record<string, number>;
      examples: string[];
      hits: number;
    }
  | { type: 'failed' };

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-tree-pool-stress-'));
  await createPageFile(dir, { pageSizeBytes: treePoolPageSize, partition: 0 });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const workerUrl = new URL('./fixtures/tree-pool-stress-worker.ts', import.meta.url);

it.each([
  { share: 16, writesMin: 20_000 },
  { share: 1024, writesMin: 2_000 },
])(
  'keeps every read whole, current and in order with the pool at 1/$share of the tree',
  async ({ share, writesMin }) => {
    const shared = new SharedArrayBuffer(4 * (keys + 1));
    const base: Omit<TreePoolStressInput, 'role' | 'readerIndex'> = {
      dir,
      seed,
      keys,
      pagesMax,
      share,
      writesMin,
      writesMax: writesMin * 20,
      reads: readsPerReader,
      readers,
      shared,
    };
    const owner = new WorkerMailbox<OwnerMessage>(
      startTsWorker(workerUrl, { ...base, role: 'owner', readerIndex: -1 }),
      'owner',
    );
    const started: WorkerMailbox<ReaderMessage>[] = [];
    try {
      const { sab, metaPageId, pages, framesMax } = await owner.next('ready');
      // 16 frames is the floor: the share holds for a tree of 16,384 pages or more.
      expect(pages).toBeGreaterThanOrEqual(16_384);
      expect(framesMax).toBe(Math.max(16, Math.floor(pages / share)));
      for (let readerIndex = 0; readerIndex < readers; readerIndex++) {
        const input: TreePoolStressInput = { ...base, role: 'reader', readerIndex, sab, metaPageId };
        started.push(
          new WorkerMailbox<ReaderMessage>(startTsWorker(workerUrl, input), `reader ${readerIndex}`),
        );
      }
      const results = await Promise.all(started.map((reader) => reader.next('done')));
      const done = await owner.next('done');
      console.log(
        `tree-pool-stress 1/${share}: ${framesMax} frames over ${pages} pages; owner ${done.writes} writes ` +
          `(${done.deletes} deletes, ${done.retried} retried after a write-back), ${done.writeBacks} write-backs; misses ${done.stats.misses}, evictions ` +
          `${done.stats.evictions}; readers ${JSON.stringify(results.map((r) => ({ ...r.counts, full: r.errors.full })))}`,
      );
      for (const [index, result] of results.entries()) {
        expect(result.errors, `reader ${index}: ${result.examples.join('; ')}`).toMatchObject({
          wrongKey: 0,
          torn: 0,
          backwards: 0,
          future: 0,
          unordered: 0,
        });
        expect(result.counts.gets + result.counts.scans).toBe(readsPerReader);
        expect(result.counts.found).toBeGreaterThan(0);
        expect(result.counts.scanned).toBeGreaterThan(0);
      }
      expect(done.wrong, done.examples.join('; ')).toBe(0);
      expect(done.entries).toBe(done.live);
      expect(done.writes).toBeGreaterThanOrEqual(writesMin);
      expect(done.deletes).toBeGreaterThan(0);
      // The readers and the owner really missed and evicted.
      expect(done.stats.misses).toBeGreaterThan(framesMax);
      expect(done.stats.evictions).toBeGreaterThan(framesMax);
      expect(done.stats.dirtyPages).toBe(0);

      // The page file alone: every page sound, and the tree in it the owner's last one.
      expect(await pageFileProblems(dir, treePoolPageSize)).toEqual([]);
      const file = await PageFileReader.open(dir, { pageSizeBytes: treePoolPageSize, partition: 0 });
      try {
        const fresh = BufferPool.create(
          { pageSizeBytes: treePoolPageSize, pagesMax, framesMax: 64, pagesAllocated: file.pageCount() },
          file,
        );
        const reader = TreeReader.over(PooledPageSpace.forReader(fresh), metaPageId);
        let stale = 0;
        let entries = 0;
        for (const [key, value] of reader.range()) {
          const index = treePoolKeyIndex(key);
          const seen = readTreePoolValue(value);
          if (seen.index !== index || !seen.whole || seen.generation !== done.model[index]) stale++;
          entries++;
        }
        expect(stale).toBe(0);
        expect(entries).toBe(done.live);
        fresh.detach();
      } finally {
        file.close();
      }
    } finally {
      await Promise.all([owner, ...started].map((mailbox) => mailbox.worker.terminate()));
    }
  },
  180_000,
);
