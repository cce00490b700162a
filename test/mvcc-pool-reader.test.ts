/**
 * Snapshots read on another thread over buffer pools while the owner writes, against the model of
 * test/mvcc-pool.test.ts. The owner runs the same seeded passes over a partition whose tree and
 * version store each live in a 32-frame pool (test/fixtures/mvcc-pool-workload.ts); a reader thread
 * attaches reader spaces to both pools and to the MVCC state, and takes snapshots of its own
 * (test/fixtures/mvcc-pool-reader.ts): it scans and point-reads each twice, with `gap` owner passes
 * in between, so that its snapshot's versions move to the version store, its pages are evicted and
 * loaded again, and cleanup runs while it reads. The two reads must be the same, and after the run
 * each must equal the model at the snapshot's timestamp. The owner waits for the reader's first read
 * of a snapshot every `gap` passes, and the reader waits for `gap` passes between its two reads:
 * reads and writes interleave whatever the scheduling, counted in passes, never in time. At the end,
 * with every snapshot released, cleanup must empty the version store.
 *
 * LIGHTNING_SEED replays the threads' choices (not their interleaving).
 */
import { afterEach, expect, it } from 'vitest';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { digestOf } from './fixtures/mvcc-pool-model.js';
import {
  type MvccPoolReaderInput,
  type ReaderReport,
  readerSharedWords,
  wordOwnerDone,
  wordOwnerPasses,
  wordReaderDone,
  wordReaderReads,
} from './fixtures/mvcc-pool-reader-protocol.js';
import { MvccPoolWorkload, type WorkloadShape } from './fixtures/mvcc-pool-workload.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

const seed = seedFromEnv(0x3ecc_9002);
console.log(`mvcc-pool-reader: seed ${seed} (LIGHTNING_SEED to replay)`);

const shape: WorkloadShape = {
  keys: 1500,
  batchMax: 3,
  shortBytesMax: 600,
  longBytesMax: 12_000,
  snapshotsMax: 2,
  opsPerRound: 250,
  pagesMax: 16_384,
  treeFrames: 64,
  versionFrames: 64,
};
const rounds = 4;
const readerSnapshots = 24;
const gap = 20;
const readerThread = 1;

const workerUrl = new URL('./fixtures/mvcc-pool-reader.ts', import.meta.url);
let cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of cleanup) await close();
  cleanup = [];
});

it(`a reader thread's snapshots over the pools match the model while the owner writes (seed ${seed})`, {
  timeout: 120_000,
}, async () => {
  const workload = await MvccPoolWorkload.create(shape, mulberry32(seed), 2);
  const { pooled, model } = workload;
  cleanup.push(() => pooled.close());
  const partition = pooled.partition;
  await workload.fill();

  const shared = new Int32Array(new SharedArrayBuffer(4 * readerSharedWords));
  const input: MvccPoolReaderInput = {
    tree: {
      sab: pooled.treeFile.pool.sab,
      dir: pooled.treeFile.dir,
      metaPageId: partition.tree.view.metaPageId,
    },
    versions: {
      sab: pooled.versionFile.pool.sab,
      dir: pooled.versionFile.dir,
      metaPageId: partition.versions.view.metaPageId,
    },
    mvcc: workload.mvcc.sab,
    thread: readerThread,
    keys: workload.keys.map((key) => key.toString('hex')),
    snapshots: readerSnapshots,
    pointReads: 48,
    gap,
    seed: seed ^ 0x5eed,
    shared: shared.buffer as SharedArrayBuffer,
  };
  const mailbox = new WorkerMailbox<ReaderReport | { type: 'failed' }>(
    startTsWorker(workerUrl, input),
    'reader',
  );
  cleanup.unshift(async () => {
    await mailbox.worker.terminate();
  });
  const finished = mailbox.next('done');
  // Awaited below; a failure meanwhile also ends the waits.
  finished.catch(() => undefined);

  /** Until the reader has made `reads` first reads of its snapshots, or is done. */
  const waitForReader = async (reads: number): Promise<void> => {
    for (;;) {
      const seen = Atomics.load(shared, wordReaderReads);
      if (seen >= reads || Atomics.load(shared, wordReaderDone) === 1) return;
      const wait = Atomics.waitAsync(shared, wordReaderReads, seen);
      if (wait.async) await Promise.race([wait.value, finished]);
    }
  };

  let passes = 0;
  for (let round = 0; round < rounds; round++) {
    for (let n = 0; n < shape.opsPerRound; n++) {
      if (passes % gap === 0) await waitForReader(passes / gap + 1);
      await workload.pass(round % 4 === 3);
      passes++;
      Atomics.store(shared, wordOwnerPasses, passes);
      Atomics.notify(shared, wordOwnerPasses);
    }
    workload.notePages();
    for (const snapshot of workload.open) workload.checkReadsAt(snapshot.at, 100, `round ${round}`);
    workload.checkReadsAt(readLatest, null, `round ${round}, newest`);
    checkTree(partition.tree);
    checkTree(partition.versions);
  }
  Atomics.store(shared, wordOwnerDone, 1);
  Atomics.notify(shared, wordOwnerPasses);
  const report = (await finished) as ReaderReport;

  expect(report.unrepeatable).toEqual([]);
  expect(report.reads.length).toBe(readerSnapshots);
  const wrong: string[] = [];
  for (const read of report.reads) {
    const contents = model.contentsAt(read.at);
    const points = read.pointKeys.map(
      (index) => model.valueAt(workload.keys[index]!, read.at)?.toString('hex') ?? '-',
    );
    if (read.entries !== contents.length || read.scanDigest !== digestOf(contents)) {
      wrong.push(`scan at ${read.at}: ${read.entries} entries, the model ${contents.length}`);
    }
    if (read.pointDigest !== digestOf(points)) wrong.push(`point reads at ${read.at}`);
  }
  expect(wrong).toEqual([]);
  // The reader's snapshots spanned owner writes: some read a state the newest heads no longer show.
  const stale = report.reads.filter(
    (read) => digestOf(model.contentsAt(read.at)) !== digestOf(model.contentsAt(readLatest)),
  );
  expect(stale.length).toBeGreaterThan(0);

  await workload.finish();
  expect(workload.mvcc.oldestSnapshot()).toBe(Number.POSITIVE_INFINITY);
  expect(partition.versionsRetained).toBe(0);
  expect(checkTree(partition.tree).entries).toBe(model.liveAt(readLatest));
  checkTree(partition.versions);

  const { held } = workload;
  console.log(
    `mvcc-pool-reader: ${passes} owner passes (${JSON.stringify(workload.counts)}); reader ${report.reads.length} ` +
      `snapshots read twice, ${report.restarts} restarts, ${report.full} loads refused for want of a frame; ` +
      `tree ${held.treePages} pages and version store ${held.versionPages} pages at most, ${shape.treeFrames} ` +
      `and ${shape.versionFrames} frames; ${pooled.treeFile.writeBacks + pooled.versionFile.writeBacks} write-backs`,
  );
  expect(held.treePages).toBeGreaterThan(4 * shape.treeFrames);
  expect(held.versionPages).toBeGreaterThan(2 * shape.versionFrames);
});
