import {
  attachControlBlock,
  CommandRing,
  kDatabaseSlots,
  kWorkerFieldCount,
  TreeReader,
} from '../shared-memory/index.js';
import { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { VersionedReader } from '../shared-memory/mvcc/versioned-reader.js';
import { DecisionLog } from '../storage/decision-log.js';
import { Failpoints } from '../workers/failpoints.js';
import { Database } from './database.js';
import { assertDatabaseHandle } from './database-handle.js';
import { KeepAlive } from './keep-alive.js';
import { createPartitionRouter } from './partition-router.js';
import { claimThreadSlot, releaseThreadSlot } from './thread-slots.js';
import { WriteChannel } from './write-channel.js';

/**
 * Gives another thread (an app's worker) its own Database over the same memory: synchronous reads
 * from the partitions' shared buffers, writes through rings of its own to the same owner workers.
 * `close()` on it releases this thread's slot; the workers keep running for the other threads.
 */
export async function attach(handle: unknown): Promise<Database> {
  assertDatabaseHandle(handle);
  const databaseControl = attachControlBlock(handle.databaseControl, kDatabaseSlots + handle.threadsMax);
  const controls = handle.workerControls.map((sab) => attachControlBlock(sab, kWorkerFieldCount));
  const router = await createPartitionRouter(handle.partitions);
  const slot = claimThreadSlot(databaseControl, handle.threadsMax);
  const keepAlive = new KeepAlive();
  const channels = handle.rings.map(
    (perWorker, worker) =>
      new WriteChannel(CommandRing.attach(perWorker[slot]), controls[worker]!, keepAlive),
  );
  const transactionChannels = handle.rings.map(
    (perWorker, worker) =>
      new WriteChannel(CommandRing.attach(perWorker[handle.threadsMax + slot]), controls[worker]!, keepAlive),
  );
  const mvcc = MvccState.attach(handle.mvcc);
  return new Database({
    handle,
    router,
    versionedReaders: handle.trees.map(
      (tree, partition) =>
        new VersionedReader(
          TreeReader.attach(tree),
          TreeReader.attach(handle.versionTrees[partition]!),
          mvcc,
        ),
    ),
    mvcc,
    slot,
    decisionLog: new DecisionLog(handle.path, slot),
    failpoints: new Failpoints(undefined),
    channels,
    transactionChannels,
    workerControls: controls,
    databaseControl,
    release: async () => releaseThreadSlot(databaseControl, slot),
    checkpoint: null,
    recovery: null,
  });
}
