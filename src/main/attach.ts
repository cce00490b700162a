import {
  attachControlBlock,
  CommandRing,
  databaseControlWords,
  kWorkerFieldCount,
  LightningError,
} from '../shared-memory/index.js';
import { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { attachThreadCounters } from '../shared-memory/thread-counters-layout.js';
import { DecisionLog } from '../storage/decision-log.js';
import { walDirectory } from '../storage/layout.js';
import { Failpoints } from '../workers/failpoints.js';
import { Database } from './database.js';
import { assertDatabaseHandle } from './database-handle.js';
import { KeepAlive } from './keep-alive.js';
import { refuseWrites, refuseWritesUntilSpace, writesRefusedUntilSpace } from './open-storage.js';
import { attachPartitionReaders, type PartitionReaders } from './partition-readers.js';
import { createPartitionRouter } from './partition-router.js';
import { watchThreadLiveness } from './thread-liveness.js';
import { claimThreadSlot, releaseThreadSlot } from './thread-slots.js';
import { WriteChannel } from './write-channel.js';

/**
 * Gives another thread (an app's worker) its own Database over the same memory: synchronous reads
 * from the partitions' shared buffers, writes through rings of its own to the same owner workers.
 * `close()` on it releases this thread's slot; the workers keep running for the other threads.
 *
 * A thread that ends without `close()` loses its slot all the same, with its open snapshots, its
 * commit window and its undecided two-phase transactions (aborted, unless their decision reached the
 * decision log): its end is reported when Node runs its 'exit' handlers (process.exit(), an uncaught
 * exception, an event loop that empties) or when the thread that started it sees it exit (also
 * `worker.terminate()`), and the thread that opened the database reclaims the slot within about a
 * second of that report, when its event loop gets to it. Writes the thread appended and the owners
 * had not yet applied are dropped, since nobody alive awaits them. See "Threads" in the README.
 */
export async function attach(handle: unknown): Promise<Database> {
  assertDatabaseHandle(handle);
  const databaseControl = attachControlBlock(handle.databaseControl, databaseControlWords(handle.threadsMax));
  const controls = handle.workerControls.map((sab) => attachControlBlock(sab, kWorkerFieldCount));
  const counters = attachThreadCounters(handle.counters, handle.threadsMax, handle.partitions);
  const router = await createPartitionRouter(handle.partitions, handle.partitionHash);
  const claim = claimThreadSlot(databaseControl, handle.threadsMax);
  const slot = claim.slot;
  const keepAlive = new KeepAlive();
  const logDirectory = walDirectory(handle.path);
  const channels = handle.rings.map(
    (perWorker, worker) =>
      new WriteChannel(CommandRing.attach(perWorker[slot]), controls[worker]!, keepAlive, logDirectory),
  );
  const transactionChannels = handle.rings.map(
    (perWorker, worker) =>
      new WriteChannel(
        CommandRing.attach(perWorker[handle.threadsMax + slot]),
        controls[worker]!,
        keepAlive,
        logDirectory,
      ),
  );
  if (handle.readOnly === true) refuseWrites([...channels, ...transactionChannels], handle.path);
  else if (writesRefusedUntilSpace(databaseControl))
    refuseWritesUntilSpace([...channels, ...transactionChannels], handle.path, databaseControl);
  const mvcc = MvccState.attach(handle.mvcc);
  const liveness = watchThreadLiveness(databaseControl, handle.threadsMax, claim, () => {
    // Exit listeners that run after this one must not reach a ring the slot's next thread will use.
    const exiting = new LightningError(
      'ERR_CLOSED',
      'this thread is exiting: its thread slot is being reclaimed',
    );
    for (const channel of [...channels, ...transactionChannels]) channel.fail(exiting);
  });
  let readers: PartitionReaders;
  try {
    readers = await attachPartitionReaders(handle.trees, handle.versionTrees, mvcc);
  } catch (error) {
    liveness.stop();
    releaseThreadSlot(databaseControl, claim);
    throw error;
  }
  return new Database({
    handle,
    router,
    versionedReaders: readers.readers,
    partitionPools: readers.partitionPools,
    mvcc,
    slot,
    decisionLog: new DecisionLog(handle.path, slot),
    failpoints: new Failpoints(undefined),
    channels,
    transactionChannels,
    workerControls: controls,
    databaseControl,
    counters,
    release: async () => {
      liveness.stop();
      readers.close();
      releaseThreadSlot(databaseControl, claim);
    },
    checkpoint: null,
    recovery: null,
  });
}
