/**
 * The buffer pool on one thread against a model, its bad input, its limits, and the recovery of
 * latches held by threads that died. The multi-thread stress test is pool-stress.test.ts; crashes
 * and power loss during checkpoints are pool-crash.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLightningError } from '../src/shared-memory/errors.js';
import { BufferPool } from '../src/shared-memory/pool/buffer-pool.js';
import {
  holderLost,
  kPoolFrameMutex,
  kPoolHoldersBase,
  recoveringBy,
} from '../src/shared-memory/pool/pool-layout.js';
import { installFileLayer, nodeFileLayer } from '../src/storage/file-layer.js';
import { doubleWriteFileName, pageFileName } from '../src/storage/page-file/page-file-format.js';
import { PageFileReader } from '../src/storage/page-file/page-file-reader.js';
import {
  createPageFile,
  pageFileProblems,
  repairTornPages,
  writeDirtyPages,
} from '../src/storage/page-file/page-file-writer.js';
import { PageSetWriter } from '../src/storage/page-file/page-set-writer.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const pageSize = 4096;
const durableAll = Number.MAX_SAFE_INTEGER;
const seed = seedFromEnv(0x0b0f_f001);
console.log(`buffer-pool: seed ${seed} (LIGHTNING_SEED to replay)`);

let dir: string;
let readers: PageFileReader[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-pool-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
  readers = [];
});

afterEach(async () => {
  for (const reader of readers) reader.close();
  await rm(dir, { recursive: true, force: true });
});

/** A pool over the test's page file, with the pages the file already holds allocated. */
async function newPool(pagesMax: number, framesMax: number): Promise<BufferPool> {
  const reader = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
  readers.push(reader);
  return BufferPool.create(
    { pageSizeBytes: pageSize, pagesMax, framesMax, pagesAllocated: reader.pageCount() },
    reader,
  );
}

/** The content the model expects: every byte from 32 on derived from (pageId, generation). */
function fillPage(pool: BufferPool, offset: number, pageId: number, generation: number): void {
  for (let at = 32; at < pageSize; at++) pool.u8[offset + at] = (pageId * 31 + generation * 7 + at) & 0xff;
}

/** The first byte from 32 on that does not match (pageId, generation), or -1. */
function mismatchAt(pool: BufferPool, offset: number, pageId: number, generation: number): number {
  for (let at = 32; at < pageSize; at++) {
    if (pool.u8[offset + at] !== ((pageId * 31 + generation * 7 + at) & 0xff)) return at;
  }
  return -1;
}

function rewrite(pool: BufferPool, pageId: number, generation: number): void {
  const offset = pool.lock(pageId);
  fillPage(pool, offset, pageId, generation);
  pool.unlock(pageId, true);
}

/** Writes dirty pages and evicts down to `freeTarget` free frames: the owner's background duty. */
async function checkpointAndEvict(pool: BufferPool, freeTarget: number): Promise<void> {
  await writeDirtyPages(pool, dir, durableAll);
  pool.evict(freeTarget);
}

function expectCode(run: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(isLightningError(thrown) ? thrown.code : String(thrown)).toBe(code);
}

describe('buffer pool on one thread', () => {
  it('serves pages 16x its frames against a model through rewrites, checkpoints and evictions', async () => {
    const random = mulberry32(seed);
    const pageCount = 512;
    const pool = await newPool(pageCount + 1, pageCount / 16);
    const generations: number[] = [0];
    for (let i = 0; i < pageCount; i++) {
      if (pool.stats().dirtyPages >= pool.framesMax - 2) await checkpointAndEvict(pool, pool.framesMax / 2);
      const pageId = pool.allocate();
      fillPage(pool, pool.lockedOffset(pageId), pageId, 0);
      pool.unlock(pageId, true);
      generations.push(0);
    }
    let validatedReads = 0;
    for (let op = 0; op < 20_000; op++) {
      const pageId = 1 + (random() % pageCount);
      if (random() % 4 === 0) {
        if (pool.stats().dirtyPages >= pool.framesMax - 2) await checkpointAndEvict(pool, pool.framesMax / 2);
        generations[pageId]! += 1;
        rewrite(pool, pageId, generations[pageId]!);
        continue;
      }
      const offset = pool.read(pageId);
      const bad = mismatchAt(pool, offset, pageId, generations[pageId]!);
      // One thread: nothing can change the page between read and validate.
      expect(pool.validate(pageId, pool.version)).toBe(true);
      expect(bad, `page ${pageId} at generation ${generations[pageId]}`).toBe(-1);
      validatedReads++;
    }
    const stats = pool.stats();
    expect(validatedReads).toBeGreaterThan(10_000);
    expect(stats.misses).toBeGreaterThan(1_000);
    expect(stats.evictions).toBeGreaterThan(1_000);
    expect(stats.residentPages).toBeLessThanOrEqual(pool.framesMax);
    await writeDirtyPages(pool, dir, durableAll);
    expect(await pageFileProblems(dir, pageSize)).toEqual([]);
    // A fresh pool over the same file sees the last generation of every page.
    const fresh = await newPool(pageCount + 1, 8);
    expect(fresh.pagesAllocated()).toBe(pageCount + 1);
    for (let pageId = 1; pageId <= pageCount; pageId++) {
      expect(mismatchAt(fresh, fresh.read(pageId), pageId, generations[pageId]!)).toBe(-1);
    }
  });

  it('refuses a frame when every frame is dirty, and serves again after a checkpoint', async () => {
    const pool = await newPool(64, 8);
    for (let i = 0; i < 8; i++) {
      const pageId = pool.allocate();
      pool.unlock(pageId, true);
    }
    expectCode(() => pool.allocate(), 'ERR_PARTITION_FULL');
    expect(pool.pagesAllocated()).toBe(9);
    await writeDirtyPages(pool, dir, durableAll);
    const pageId = pool.allocate();
    expect(pageId).toBe(9);
    pool.unlock(pageId, true);
  });

  it('records the redo LSN with every page set, and a reopened file reports it', async () => {
    const pool = await newPool(16, 8);
    const fresh = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
    readers.push(fresh);
    expect(fresh.redoLsn()).toBeNull();
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 1);
    pool.unlock(pageId, true);
    expect(await writeDirtyPages(pool, dir, 500)).toEqual({ pagesWritten: 1, pagesChangedMeanwhile: 0 });
    // A set with no dirty page still moves the redo LSN: the log below it is in the pages.
    expect(await writeDirtyPages(pool, dir, 2 ** 40 + 7)).toEqual({
      pagesWritten: 0,
      pagesChangedMeanwhile: 0,
    });
    const reopened = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
    readers.push(reopened);
    expect(reopened.redoLsn()).toBe(2 ** 40 + 7);
    expect(reopened.poolStart()).toEqual({ pagesAllocated: 2, freeListHead: 0, freePageCount: 0 });
    await expect(writeDirtyPages(pool, dir, -1)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
  });

  it('keeps a page dirty whose bytes changed in place, without a version bump, while it was written', async () => {
    // A tree's meta page takes its root and counters as words in place: only the bytes tell.
    const pool = await newPool(16, 8);
    const pageId = pool.allocate();
    const offset = pool.lockedOffset(pageId);
    fillPage(pool, offset, pageId, 1);
    pool.unlock(pageId, true);
    const writer = await PageSetWriter.open(pool, dir);
    try {
      const set = writer.capture(9);
      pool.u8[offset + 100] ^= 0xff;
      expect(await writer.write(set)).toEqual({ pagesWritten: 1, pagesChangedMeanwhile: 1 });
      expect(pool.stats().dirtyPages).toBe(1);
      expect(await writer.write(writer.capture(10))).toEqual({ pagesWritten: 1, pagesChangedMeanwhile: 0 });
      expect(pool.stats().dirtyPages).toBe(0);
      await expect(PageSetWriter.open(pool, dir)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    } finally {
      writer.close();
    }
  });

  it('keeps a page dirty that changed while its image was being written', async () => {
    const pool = await newPool(16, 8);
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 1);
    pool.unlock(pageId, true);
    // Hold the checkpoint at its first file write, after it copied the image: change the page then.
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reachedFiles = (): void => {};
    const reached = new Promise<void>((resolve) => {
      reachedFiles = resolve;
    });
    installFileLayer({
      ...nodeFileLayer,
      async open(path, flags) {
        reachedFiles();
        await gate;
        return nodeFileLayer.open(path, flags);
      },
    });
    let writing: ReturnType<typeof writeDirtyPages>;
    try {
      writing = writeDirtyPages(pool, dir, durableAll);
      await reached;
      rewrite(pool, pageId, 2);
      release();
      await writing;
    } finally {
      installFileLayer(nodeFileLayer);
    }
    expect(await writing).toEqual({ pagesWritten: 1, pagesChangedMeanwhile: 1 });
    expect(pool.stats().dirtyPages).toBe(1);
    // Evicting now would lose generation 2: the clock passes the dirty page over.
    expect(pool.evict(8)).toBe(0);
    expect(await writeDirtyPages(pool, dir, durableAll)).toMatchObject({
      pagesWritten: 1,
      pagesChangedMeanwhile: 0,
    });
    expect(pool.evict(8)).toBe(1);
    expect(mismatchAt(pool, pool.read(pageId), pageId, 2)).toBe(-1);
  });

  it('gives a damaged page back as ERR_CORRUPTION and leaves it evicted', async () => {
    const pool = await newPool(16, 8);
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 1);
    pool.unlock(pageId, true);
    await checkpointAndEvict(pool, 8);
    const { open } = await import('node:fs/promises');
    const file = await open(join(dir, pageFileName), 'r+');
    await file.write(Buffer.from([0xff]), 0, 1, pageId * pageSize + 1000);
    await file.close();
    expectCode(() => pool.read(pageId), 'ERR_CORRUPTION');
    expect(pool.stats().residentPages).toBe(0);
    // Still evicted, not wedged: the next read tries again (and fails again, the file is still bad).
    expectCode(() => pool.read(pageId), 'ERR_CORRUPTION');
    expect(await pageFileProblems(dir, pageSize)).toEqual([
      `page ${pageId}: checksum mismatch (torn or damaged)`,
    ]);
  });

  it('keeps the page space state with the pages, and refuses a damaged one', async () => {
    const pool = await newPool(16, 8);
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 1);
    pool.unlock(pageId, true);
    await checkpointAndEvict(pool, 8);
    const written = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
    readers.push(written);
    expect(written.poolStart()).toEqual({ pagesAllocated: 2, freeListHead: 0, freePageCount: 0 });
    // One byte of the state (byte 68: its page count) changed on disk.
    const { open } = await import('node:fs/promises');
    const file = await open(join(dir, pageFileName), 'r+');
    await file.write(Buffer.from([0x7f]), 0, 1, 68);
    await file.close();
    await expect(PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 })).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
    });
    expect(await pageFileProblems(dir, pageSize)).toEqual([
      expect.stringContaining('page 0 (the header): ERR_CORRUPTION: page file'),
    ]);
  });
});

describe('buffer pool bad input', () => {
  it('refuses bad options, page ids, buffers and latch misuse with typed errors', async () => {
    const reader = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
    readers.push(reader);
    const create = (options: { pageSizeBytes: number; pagesMax: number; framesMax: number }) => () =>
      BufferPool.create(options, reader);
    expectCode(create({ pageSizeBytes: 3000, pagesMax: 64, framesMax: 8 }), 'ERR_BAD_ARGUMENT');
    expectCode(create({ pageSizeBytes: pageSize, pagesMax: 1, framesMax: 8 }), 'ERR_BAD_ARGUMENT');
    expectCode(create({ pageSizeBytes: pageSize, pagesMax: 64, framesMax: 7 }), 'ERR_BAD_ARGUMENT');
    expectCode(create({ pageSizeBytes: pageSize, pagesMax: 64, framesMax: 65 }), 'ERR_BAD_ARGUMENT');
    expectCode(create({ pageSizeBytes: pageSize, pagesMax: 64.5, framesMax: 8 }), 'ERR_BAD_ARGUMENT');
    // Over 2 GiB of frames, or a page table as large: offsets stay below 2^31 (limits.ts).
    expectCode(
      create({ pageSizeBytes: pageSize, pagesMax: 2 ** 20, framesMax: 2 ** 19 }),
      'ERR_BAD_ARGUMENT',
    );
    expectCode(create({ pageSizeBytes: pageSize, pagesMax: 2 ** 28, framesMax: 8 }), 'ERR_BAD_ARGUMENT');
    expectCode(
      () =>
        BufferPool.create(
          { pageSizeBytes: pageSize, pagesMax: 64, framesMax: 8, pagesAllocated: 65 },
          reader,
        ),
      'ERR_BAD_ARGUMENT',
    );
    expectCode(
      () =>
        BufferPool.create({ pageSizeBytes: pageSize, pagesMax: 64, framesMax: 8, pagesAllocated: 0 }, reader),
      'ERR_BAD_ARGUMENT',
    );
    // A free-page list that cannot belong to the allocated pages: beyond them, or a head without a count.
    for (const list of [
      { freeListHead: 10, freePageCount: 1 },
      { freeListHead: 3, freePageCount: 0 },
      { freeListHead: 0, freePageCount: 2 },
      { freeListHead: 2, freePageCount: 10 },
    ]) {
      const options = { pageSizeBytes: pageSize, pagesMax: 64, framesMax: 8, pagesAllocated: 10, ...list };
      expectCode(() => BufferPool.create(options, reader), 'ERR_BAD_ARGUMENT');
    }
    expectCode(() => BufferPool.attach(new ArrayBuffer(64), reader), 'ERR_BAD_ARGUMENT');
    expectCode(() => BufferPool.attach(new SharedArrayBuffer(64), reader), 'ERR_CORRUPTION');

    const pool = BufferPool.create({ pageSizeBytes: pageSize, pagesMax: 8, framesMax: 8 }, reader);
    expectCode(() => pool.read(0), 'ERR_BAD_ARGUMENT');
    expectCode(() => pool.read(1), 'ERR_BAD_ARGUMENT');
    expectCode(() => pool.read(Number.NaN), 'ERR_BAD_ARGUMENT');
    const pageId = pool.allocate();
    expectCode(() => pool.lock(pageId), 'ERR_INTERNAL');
    pool.unlock(pageId, true);
    expectCode(() => pool.unlock(pageId, false), 'ERR_INTERNAL');
    expectCode(() => pool.recoverThread(threadId), 'ERR_BAD_ARGUMENT');
    expectCode(() => pool.recoverThread(-1), 'ERR_BAD_ARGUMENT');
    while (pool.pagesAllocated() < 8) pool.unlock(pool.allocate(), true);
    expectCode(() => pool.allocate(), 'ERR_PARTITION_FULL');

    const corrupt = new Int32Array(pool.sab);
    const saved = corrupt[3]!;
    corrupt[3] = saved + 1;
    expectCode(() => BufferPool.attach(pool.sab, reader), 'ERR_CORRUPTION');
    corrupt[3] = saved;
  });

  it('refuses a bad durable LSN, a second write-back at once, a page-size mismatch and a missing file', async () => {
    const pool = await newPool(16, 8);
    pool.unlock(pool.allocate(), true);
    for (const durableLsn of [-1, 1.5, Number.NaN, 2 ** 53]) {
      await expect(writeDirtyPages(pool, dir, durableLsn)).rejects.toMatchObject({
        code: 'ERR_BAD_ARGUMENT',
      });
    }
    const first = writeDirtyPages(pool, dir, durableAll);
    await expect(writeDirtyPages(pool, dir, durableAll)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    expect(await first).toMatchObject({ pagesWritten: 1 });
    const wide = BufferPool.create({ pageSizeBytes: 8192, pagesMax: 16, framesMax: 8 }, readers[0]!);
    wide.unlock(wide.allocate(), true);
    await expect(writeDirtyPages(wide, dir, durableAll)).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' });
    await expect(writeDirtyPages(pool, join(dir, 'nowhere'), durableAll)).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
    });
  });

  it('reports a missing or foreign page file as ERR_CORRUPTION, and a page past its end', async () => {
    await expect(
      PageFileReader.open(join(dir, 'nowhere'), { pageSizeBytes: pageSize, partition: 0 }),
    ).rejects.toMatchObject({ code: 'ERR_CORRUPTION' });
    await expect(PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 1 })).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
    });
    await expect(createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 })).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
    });
    const reader = await PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 });
    readers.push(reader);
    expectCode(() => reader.load(3, new Uint8Array(pageSize)), 'ERR_CORRUPTION');
    expectCode(() => reader.load(3, new Uint8Array(100)), 'ERR_BAD_ARGUMENT');
    await rm(join(dir, doubleWriteFileName));
    await expect(repairTornPages(dir, pageSize)).rejects.toMatchObject({ code: 'ERR_CORRUPTION' });
    await writeFile(join(dir, pageFileName), Buffer.alloc(pageSize));
    await expect(PageFileReader.open(dir, { pageSizeBytes: pageSize, partition: 0 })).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
    });
  });
});

type LatchMessage =
  | { type: 'holding'; holder: number; threadId: number }
  | { type: 'done' }
  | { type: 'failed' };

function startLatchWorker(pool: BufferPool, mode: string, pageId: number, fill: number) {
  const worker = startTsWorker(new URL('./fixtures/pool-latch-worker.ts', import.meta.url), {
    mode,
    sab: pool.sab,
    dir,
    pageId,
    fill,
  });
  return new WorkerMailbox<LatchMessage>(worker, `latch worker (${mode})`);
}

/** A pool of 8 frames, each holding a written page, and a thread terminated holding its frame mutex. */
async function poolWithDeadMutexHolder(): Promise<{
  pool: BufferPool;
  holding: LatchMessage & { type: 'holding' };
}> {
  const pool = await newPool(64, 8);
  for (let i = 0; i < 8; i++) {
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 0);
    pool.unlock(pageId, true);
  }
  await writeDirtyPages(pool, dir, durableAll);
  const mailbox = startLatchWorker(pool, 'die-holding-mutex', 1, 0);
  const holding = await mailbox.next('holding');
  await mailbox.worker.terminate();
  return { pool, holding };
}

/** A pool of 8 frames whose one page, filled with `generation`, is written and evicted. */
async function poolWithOneEvictedPage(generation: number): Promise<{ pool: BufferPool; pageId: number }> {
  const pool = await newPool(64, 8);
  const pageId = pool.allocate();
  fillPage(pool, pool.lockedOffset(pageId), pageId, generation);
  pool.unlock(pageId, true);
  await checkpointAndEvict(pool, 8);
  expect(pool.stats().residentPages).toBe(0);
  return { pool, pageId };
}

describe('buffer pool latches across threads', () => {
  it('recovers a page latched by a thread that was terminated while loading it', async () => {
    const { pool, pageId } = await poolWithOneEvictedPage(3);
    const mailbox = startLatchWorker(pool, 'die-holding-page', pageId, 0);
    const holding = await mailbox.next('holding');
    expect(pool.holderOfThread(holding.threadId)).toBe(holding.holder);
    await mailbox.worker.terminate();
    // The dead thread's latch: the page it loaded goes back to evicted, its frame to the free stack.
    expect(pool.recoverThread(holding.threadId)).toBe(1);
    expect(pool.stats()).toMatchObject({ residentPages: 0, latchRecoveries: 1 });
    expect(pool.holderOfThread(holding.threadId)).toBe(-1);
    expect(mismatchAt(pool, pool.read(pageId), pageId, 3)).toBe(-1);
  });

  it('recovers the frame mutex from a thread that died holding it', async () => {
    const { pool, holding } = await poolWithDeadMutexHolder();
    expect(Atomics.load(pool.i32, kPoolFrameMutex)).toBe(holding.holder + 1);
    expect(pool.recoverThread(holding.threadId)).toBe(1);
    expect(Atomics.load(pool.i32, kPoolFrameMutex)).toBe(0);
    // The pool still evicts and loads: a ninth page needs a frame the clock must free.
    const pageId = pool.allocate();
    pool.unlock(pageId, true);
    expect(pool.stats().evictions).toBe(1);
  });

  it('lets a thread waiting on the frame mutex of a terminated thread recover it itself', async () => {
    const { pool, holding } = await poolWithDeadMutexHolder();
    // Nobody calls recoverThread: the ninth page needs the mutex, and its waiter finds the holder's
    // OS thread gone (a wait that gave up instead would be ERR_INTERNAL after 10 s).
    const pageId = pool.allocate();
    pool.unlock(pageId, true);
    expect(pool.stats()).toMatchObject({ latchRecoveries: 1, evictions: 1 });
    expect(pool.holderOfThread(holding.threadId)).toBe(-1);
    expect(Atomics.load(pool.i32, kPoolFrameMutex)).toBe(0);
    // Recovered once: the reclaimer's later call finds nothing left to give back.
    expect(pool.recoverThread(holding.threadId)).toBe(0);
  });

  it('finishes the recovery a thread left when it died in the middle of it', async () => {
    const { pool, pageId } = await poolWithOneEvictedPage(7);
    const first = startLatchWorker(pool, 'die-holding-page', pageId, 0);
    const holding = await first.next('holding');
    await first.worker.terminate();
    // A second thread starts recovering the first (it claims its holder word) and dies.
    const second = startLatchWorker(pool, 'die-recovering', holding.holder, 0);
    const recovering = await second.next('holding');
    await second.worker.terminate();
    expect(Atomics.load(pool.i32, kPoolHoldersBase + holding.holder)).toBe(recoveringBy(recovering.holder));
    // The read waits on the first thread's latch. Its holder word names the second thread, whose OS
    // thread is gone: the reader recovers the second, and finishes the first's recovery with it.
    expect(mismatchAt(pool, pool.read(pageId), pageId, 7)).toBe(-1);
    expect(pool.stats().latchRecoveries).toBe(1);
    expect(Atomics.load(pool.i32, kPoolHoldersBase + holding.holder)).toBe(0);
    expect(pool.holderOfThread(recovering.threadId)).toBe(-1);
  });

  it('never unlocks a page a dead thread was changing: a waiter is told at once, and the page stays latched', async () => {
    const pool = await newPool(64, 8);
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 2);
    pool.unlock(pageId, true);
    const mailbox = startLatchWorker(pool, 'die-changing-page', pageId, 0xee);
    const holding = await mailbox.next('holding');
    await mailbox.worker.terminate();
    // Half of it is 0xee now: a reader must not see it (before, it was unlocked as it stood).
    expectCode(() => pool.read(pageId), 'ERR_WORKER_CRASHED');
    expect(pool.isLatched(pageId)).toBe(true);
    expect(Atomics.load(pool.i32, kPoolHoldersBase + holding.holder)).toBe(holderLost);
    expect(pool.stats().latchRecoveries).toBe(0);
    // Told again, at once, and the reclaimer's later call changes nothing.
    expectCode(() => pool.lock(pageId), 'ERR_WORKER_CRASHED');
    expect(pool.recoverThread(holding.threadId)).toBe(0);
    // Other pages go on.
    const other = pool.allocate();
    fillPage(pool, pool.lockedOffset(other), other, 3);
    pool.unlock(other, true);
    expect(mismatchAt(pool, pool.read(other), other, 3)).toBe(-1);
  });

  it('leaves a page evicted, not latched, when its load gives up on a frame mutex nobody recovers', async () => {
    const { pool, pageId } = await poolWithOneEvictedPage(5);
    // A holder that died holding the mutex, and whose death nobody has recovered yet.
    Atomics.store(pool.i32, kPoolFrameMutex, pool.holder + 2);
    // The load waits the latch budget (10 s), then gives up.
    expectCode(() => pool.read(pageId), 'ERR_INTERNAL');
    Atomics.store(pool.i32, kPoolFrameMutex, 0);
    // The page went back to evicted: a later read loads it (it used to stay latched by this thread,
    // every later read failing with "already latched by this thread").
    expect(mismatchAt(pool, pool.read(pageId), pageId, 5)).toBe(-1);
  }, 60_000);

  it('makes a reader wait for a page another thread has latched, then see the whole change', async () => {
    const pool = await newPool(64, 8);
    const pageId = pool.allocate();
    fillPage(pool, pool.lockedOffset(pageId), pageId, 0);
    pool.unlock(pageId, true);
    const mailbox = startLatchWorker(pool, 'rewrite-slowly', pageId, 0xab);
    await mailbox.next('holding');
    // Latched by the worker: read() waits on the latch (this thread blocks) until the unlock.
    const offset = pool.read(pageId);
    const content = pool.u8.subarray(offset + 32, offset + pageSize);
    expect(content.every((byte) => byte === 0xab)).toBe(true);
    expect(pool.validate(pageId, pool.version)).toBe(true);
    // The rewrite pauses 8 x 5 ms, past the 5 ms between checks of the holder: a live one is left alone.
    expect(pool.stats().latchRecoveries).toBe(0);
    await mailbox.next('done');
    await mailbox.worker.terminate();
  });
});
