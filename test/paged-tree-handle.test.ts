/**
 * A tree over a buffer pool read from other threads through its handle alone (`PagedTree.share()`,
 * `attachPagedTree`): two reader threads attach, open the page file themselves and read every key
 * while the owner rewrites each one, writing page sets and evicting so that reads keep missing. Each
 * reader checks every value (its key's, whole, never older than one it saw), and all of generation 2
 * at the end. Then bad handles, and holder slots given back by `close`.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed below>.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { attachPagedTree } from '../src/storage/page-file/paged-tree-handle.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { handleTestKey, handleTestValue } from './fixtures/paged-tree-values.js';
import { seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const seed = seedFromEnv(0x4a7d_1e01);
console.log(`paged-tree-handle: seed ${seed} (LIGHTNING_SEED to replay)`);
const pageSize = 4096;
const keys = 1500;
const framesMax = 24;
const partition = 3;

let dir: string;
let paged: PagedTree;
/** The redo LSN the test's page sets carry: there is no log, so any rising number. */
let setNumber = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-handle-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition });
  paged = await PagedTree.open({ dir, partition, pageSizeBytes: pageSize, pagesMax: 8192, framesMax });
});

afterEach(async () => {
  paged.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Writes `generation` of every key, a page set and an eviction every `chunk` keys; after each chunk,
 * `between` runs (the readers' turn).
 */
async function writeGeneration(
  generation: number,
  chunk: number,
  between: () => Promise<void> = async () => {},
): Promise<void> {
  for (let key = 0; key < keys; key++) {
    await paged.withRoom(
      () => paged.tree.put(handleTestKey(key), handleTestValue(key, generation)),
      () => ++setNumber,
    );
    if (key % chunk === 0) {
      await paged.writePages(++setNumber);
      paged.pool.evict(framesMax / 2);
      await between();
    }
  }
  await paged.writePages(++setNumber);
  paged.pool.evict(framesMax);
}

type ReaderMessage = { type: 'ready' } | { type: 'done'; reads: number; passes: number };

/** Waits, in 1 ms sleeps, until every reader has read `count` more keys than at `from`. */
async function readersAdvance(shared: Int32Array, from: number[], count: number): Promise<void> {
  for (let reader = 0; reader < from.length; reader++) {
    while (Atomics.load(shared, 1 + reader) - from[reader]! < count) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

describe('a tree over a buffer pool, read from other threads by its handle', () => {
  it('serves readers that attach with the handle alone while the owner rewrites every key', async () => {
    await writeGeneration(1, 200);
    const readerCount = 2;
    const shared = new SharedArrayBuffer(4 * (1 + readerCount));
    const counts = new Int32Array(shared);
    const handle = paged.share();
    const readers = Array.from({ length: readerCount }, (_, index) => {
      const worker = startTsWorker(new URL('./fixtures/paged-tree-reader.ts', import.meta.url), {
        handle,
        keys,
        seed: seed + index,
        readerIndex: index,
        shared,
      });
      return new WorkerMailbox<ReaderMessage>(worker, `reader ${index}`);
    });
    try {
      await Promise.all(readers.map((reader) => reader.next('ready')));
      const missesBefore = paged.pool.stats().misses;
      const readsBefore = Array.from({ length: readerCount }, (_, reader) =>
        Atomics.load(counts, 1 + reader),
      );
      // After each 25 keys rewritten, every reader reads 50 keys more: reads and writes interleave,
      // counted, however the threads are scheduled.
      await writeGeneration(2, 25, () =>
        readersAdvance(
          counts,
          Array.from({ length: readerCount }, (_, reader) => Atomics.load(counts, 1 + reader)),
          50,
        ),
      );
      const readsWhileWriting = Array.from(
        { length: readerCount },
        (_, reader) => Atomics.load(counts, 1 + reader) - readsBefore[reader]!,
      );
      Atomics.store(counts, 0, 1);
      const done = (await Promise.all(readers.map((reader) => reader.next('done')))).map((message) => {
        if (message.type !== 'done') throw new Error('expected done');
        return message;
      });
      const stats = paged.pool.stats();
      console.log(
        `paged-tree-handle: ${keys} keys, ${framesMax} frames of ${stats.pagesAllocated} pages; ` +
          done.map((d, i) => `reader ${i}: ${d.reads} reads in ${d.passes} passes`).join('; ') +
          `; ${readsWhileWriting.join(' and ')} reads while the owner wrote; ${stats.misses - missesBefore} misses meanwhile`,
      );
      for (const reads of readsWhileWriting) expect(reads).toBeGreaterThanOrEqual(50 * Math.floor(keys / 25));
      expect(stats.misses - missesBefore).toBeGreaterThan(keys);
    } finally {
      for (const reader of readers) await reader.worker.terminate();
    }
  }, 120_000);

  it('refuses handles that are not one, and gives holder slots back on close', async () => {
    await writeGeneration(1, 500);
    const handle = paged.share();
    const codeOf = async (bad: unknown): Promise<string> => {
      try {
        (await attachPagedTree(bad)).close();
        return 'attached';
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
    };
    expect(await codeOf(null)).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf({ ...handle, kind: 'lightning-db/tree' })).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf({ ...handle, formatVersion: 99 })).toBe('ERR_FORMAT_VERSION');
    expect(await codeOf({ ...handle, sab: new ArrayBuffer(64) })).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf({ ...handle, metaPageId: 0 })).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf({ ...handle, metaPageId: 8000 })).toBe('ERR_BAD_ARGUMENT');
    expect(await codeOf({ ...handle, metaPageId: 2 })).toBe('ERR_CORRUPTION');
    expect(await codeOf({ ...handle, pageSizeBytes: 8192 })).toBe('ERR_CORRUPTION');
    expect(await codeOf({ ...handle, partition: 4 })).toBe('ERR_CORRUPTION');
    expect(await codeOf({ ...handle, dir: join(dir, 'gone') })).toBe('ERR_CORRUPTION');
    // More attaches than a pool has holder slots (252): each close gives its slot back.
    for (let i = 0; i < 300; i++) {
      const attached = await attachPagedTree(handle);
      expect(attached.reader.get(handleTestKey(i))?.equals(handleTestValue(i, 1))).toBe(true);
      attached.close();
    }
  });
});
