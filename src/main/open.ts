import { resolve } from 'node:path';
import { decidePinning, planWorkers, readTopology } from '../numa/index.js';
import {
  CommandRing,
  createControlBlock,
  databaseControlWords,
  databaseStateClosed,
  isLightningError,
  kDatabaseState,
  kWorkerFieldCount,
  LightningError,
} from '../shared-memory/index.js';
import {
  MvccState,
  snapshotSlotsPerThreadDefault,
  transactionEntriesDefault,
} from '../shared-memory/mvcc/mvcc-state.js';
import { attachThreadCounters, createThreadCounters } from '../shared-memory/thread-counters-layout.js';
import { accountForFiles, createIdentity, createPartitionFiles } from '../storage/database-files.js';
import { readMetadata } from '../storage/database-metadata.js';
import { DecisionLog, readCommittedTransactions, removeDecisionLogs } from '../storage/decision-log.js';
import { directoryFingerprint } from '../storage/directory-fingerprint.js';
import { installFileLayerModule } from '../storage/file-layer.js';
import { walDirectory } from '../storage/layout.js';
import { newDatabasePartitionHash } from '../storage/partition-hash.js';
import { cutTornTails, startWalRun, type TornTail } from '../storage/wal/index.js';
import { Failpoints } from '../workers/failpoints.js';
import { Database } from './database.js';
import { type DatabaseHandle, databaseHandleFormatVersion } from './database-handle.js';
import { KeepAlive } from './keep-alive.js';
import {
  type OpenOptions,
  partitionsDefault,
  type ResolvedOptions,
  resolveOpenOptions,
} from './open-options.js';
import { type OpenPhase, openPhaseClock } from './open-phases.js';
import { type StartedReplication, startReplication } from './open-replication.js';
import {
  explainOpenFailure,
  lockUnlessReadOnly,
  noDatabaseToRead,
  prepareDatabaseDirectory,
  type ReadOnlyCause,
  readOnlyError,
  refuseWrites,
  refuseWritesUntilSpace,
  writesRefusedUntilSpace,
} from './open-storage.js';
import { attachPartitionReaders, type PartitionReaders } from './partition-readers.js';
import { createPartitionRouter } from './partition-router.js';
import {
  decidePartitionStorage,
  framesPerPartition,
  type PartitionStorage,
  refuseLiveWriter,
} from './partition-storage.js';
import { reviveLightningError } from './revive-error.js';
import { watchThreadLiveness } from './thread-liveness.js';
import { ThreadReclaimer } from './thread-reclaimer.js';
import { claimThreadSlot, releaseThreadSlot } from './thread-slots.js';
import { WorkerPool } from './worker-pool.js';
import { WritableAgain } from './writable-again.js';
import { transactionRingBytes, WriteChannel } from './write-channel.js';

/**
 * Opens (creating if needed) the database in directory `path`: starts the partition-owner workers,
 * which allocate their partitions' memory, and returns the Database for this thread.
 *
 * The partition count is fixed when the database is created and recorded in the directory; reopening
 * with a different `partitions` is ERR_BAD_ARGUMENT. Each partition is recovered from its checkpoint and
 * write-ahead log before this resolves; damage other than a torn tail is ERR_CORRUPTION naming the file.
 */
export async function open(path: string, options?: OpenOptions, follow = false): Promise<Database> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'path must be a non-empty string');
  }
  const resolved = resolveOpenOptions(options);
  if (resolved.fileLayer !== undefined) await installFileLayerModule(resolved.fileLayer);
  const directory = resolve(path);
  const phase = openPhaseClock();
  // Not even the directory or its LOCK file is made where no database may be created.
  if (resolved.create === false && (await readMetadata(directory)) === null) {
    throw new LightningError('ERR_BAD_ARGUMENT', `no database at ${directory} (create: false)`);
  }
  try {
    await prepareDatabaseDirectory(directory, resolved.readOnly);
    const releaseLock = await lockUnlessReadOnly(directory, resolved.readOnly);
    phase('directory-and-lock');
    try {
      const db = await openLocked(directory, resolved, releaseLock, 'option', phase, follow);
      if (resolved.readOnly && db.stats().bufferPools !== null) {
        // Its page files are open now: a writer that locked the directory since the first look
        // did not see them (refuseOpenReaders), so it must be seen here.
        await refuseLiveWriter(directory).catch(async (error: unknown) => {
          await db.close();
          throw error;
        });
      }
      return db;
    } catch (error) {
      await releaseLock();
      throw explainOpenFailure(error, directory);
    }
  } catch (error) {
    // A database on a full disk still serves reads: it opens as with { readOnly: true }, its writes
    // reject with ERR_DISK_FULL, and it writes again once space is freed (WritableAgain).
    const diskFull = isLightningError(error, 'ERR_DISK_FULL') && !resolved.readOnly;
    if (!diskFull || (await readMetadata(directory).catch(() => null)) === null) throw error;
    return openLocked(directory, { ...resolved, readOnly: true }, async () => {}, 'disk-full');
  }
}

/** open() once this process holds the directory's lock; `releaseLock` is called when it closes. */
async function openLocked(
  directory: string,
  resolved: ResolvedOptions,
  releaseLock: () => Promise<void>,
  readOnlyCause: ReadOnlyCause = 'option',
  phase: (phase: OpenPhase) => void = () => {},
  follow = false,
): Promise<Database> {
  if (resolved.readOnly && (await readMetadata(directory)) === null) throw noDatabaseToRead(directory);
  // Every file the database needs is there and belongs to it, or nothing of a database is.
  const files = await accountForFiles(directory, resolved.create, resolved.readOnly);
  const existing = files.kind === 'database' ? files.metadata : null;
  if (existing !== null && resolved.partitions !== undefined && resolved.partitions !== existing.partitions) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `${directory} was created with ${existing.partitions} partitions; it cannot be opened with ${resolved.partitions}`,
    );
  }
  const partitions = existing?.partitions ?? resolved.partitions ?? partitionsDefault;
  phase('file-checks');
  let topology: ReturnType<typeof readTopology>;
  let plan: ReturnType<typeof planWorkers>;
  try {
    topology = readTopology();
    plan = planWorkers(topology, {
      workers: resolved.workers,
      ...(resolved.workersPerNode === undefined ? {} : { workersPerNode: resolved.workersPerNode }),
      partitions,
    });
  } catch (error) {
    throw new LightningError('ERR_BAD_ARGUMENT', (error as Error).message, { cause: error });
  }
  const workerCount = plan.workers.length;
  const controls = plan.workers.map(() => createControlBlock(kWorkerFieldCount));
  // Per worker: each thread slot's ring of plain writes, then each slot's ring of transaction parts
  // (transactions must never queue behind plain writes that wait for them).
  const rings = plan.workers.map(() => [
    ...Array.from({ length: resolved.threadsMax }, () => CommandRing.create()),
    ...Array.from({ length: resolved.threadsMax }, () => CommandRing.create(transactionRingBytes)),
  ]);
  const databaseControl = createControlBlock(databaseControlWords(resolved.threadsMax));
  const counters = createThreadCounters(resolved.threadsMax, partitions);
  const mvcc = MvccState.create({
    committers: workerCount + resolved.threadsMax,
    threads: resolved.threadsMax,
    slotsPerThread: snapshotSlotsPerThreadDefault,
    transactionEntries: transactionEntriesDefault,
  });
  // Opened on a full disk: what the directory holds before the owners read it, so that it takes the
  // lock later only if no other process wrote it meanwhile.
  const fingerprint = readOnlyCause === 'disk-full' ? await directoryFingerprint(directory) : null;
  // The owner threads load their modules (most of a worker's start-up) while this thread reads the
  // logs' layout and, for a new database, creates its files; they get their partitions after that.
  const pool = WorkerPool.spawn(plan, rings, controls, mvcc, resolved.fileLayer?.endsWith('.ts') === true);
  phase('workers-spawned');
  const partitionHash = existing?.hash ?? newDatabasePartitionHash;
  let router: Awaited<ReturnType<typeof createPartitionRouter>>;
  let committedTransactions: number[];
  let walRun: Awaited<ReturnType<typeof startWalRun>>;
  let createdId: Awaited<ReturnType<typeof createPartitionFiles>> | null;
  let storage: PartitionStorage;
  try {
    router = await createPartitionRouter(partitions, partitionHash);
    // Decisions of two-phase commits a crash left in doubt: the owners resolve them while recovering.
    // A replicated database presumes abort: the log decides what a leader that died mid-commit did
    // (the log's records are applied once it follows; replication-role.ts).
    committedTransactions =
      resolved.replication === null ? [...(await readCommittedTransactions(directory))] : [];
    // Refuses an old log layout and names this run's logs.
    walRun = await startWalRun(directory);
    // A new database: its partitions' manifests first, its identity once it started (below).
    // A budget too small for the partitions is refused before a new database's files exist.
    if (files.kind === 'none' && resolved.memoryMaxBytes !== null)
      framesPerPartition(partitions, resolved.pageSizeBytes, resolved);
    createdId = files.kind === 'none' ? await createPartitionFiles(directory, partitions) : null;
    storage = await decidePartitionStorage(
      directory,
      partitions,
      files.kind === 'database' ? files.manifests : null,
      resolved,
    );
  } catch (error) {
    await pool.stop();
    throw error;
  }
  // Where each partition's checkpoint covers the logs: damage there is skipped at recovery.
  const logCoverage =
    files.kind === 'database'
      ? files.manifests.map((manifest) => manifest.checkpoints[0]?.coversLog ?? null)
      : [];
  phase('logs-and-router');
  let started: Awaited<ReturnType<WorkerPool['start']>>;
  try {
    const pinning = decidePinning(resolved.pinWorkers, topology);
    started = await pool.start(
      directory,
      partitions,
      { ...resolved, pageSizeBytes: storage.pageSizeBytes },
      storage.framesPerPartition,
      pinning,
      committedTransactions,
      walRun.epoch,
      logCoverage,
    );
  } catch (error) {
    const revived = reviveLightningError(error);
    if (revived !== null) throw revived;
    throw new LightningError(
      'ERR_WORKER_CRASHED',
      `a partition-owner worker failed to start: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  phase('workers-started');
  const { trees, versionTrees, recoveries, placements } = started;
  // Recorded only once the database could start, so a refused open leaves the directory as it was.
  let tornTails: TornTail[];
  let readers: PartitionReaders | null = null;
  try {
    readers = await attachPartitionReaders(trees, versionTrees, mvcc);
    // Every owner has read the earlier logs: their checkpoints may remove those segments from now on.
    await pool.earlierLogsRead();
    // Every owner has read the earlier logs: the torn tails a crash left can be cut now (a read-only
    // open writes nothing: they stay for the next writable open).
    tornTails = resolved.readOnly ? [] : await cutTornTails(started.tornTails);
    // Every partition logged and synced the outcome of its in-doubt transactions: the decisions
    // that settled them are no longer needed.
    if (!resolved.readOnly) await removeDecisionLogs(directory);
    if (createdId !== null) await createIdentity(directory, partitions, createdId);
  } catch (error) {
    readers?.close();
    await pool.stop();
    throw error;
  }

  const partitionWorkers: number[] = new Array(partitions);
  for (const planned of plan.workers)
    for (const partition of planned.partitions) partitionWorkers[partition] = planned.index;
  const handle: DatabaseHandle = {
    kind: 'lightning-db/database',
    formatVersion: databaseHandleFormatVersion,
    path: directory,
    partitions,
    partitionHash,
    durability: resolved.durability,
    threadsMax: resolved.threadsMax,
    partitionWorkers,
    trees,
    versionTrees,
    mvcc: mvcc.sab,
    workerControls: controls.map((control) => control.buffer as SharedArrayBuffer),
    workerPlacements: placements,
    rings: rings.map((perWorker) => perWorker.map((ring) => ring.sab)),
    databaseControl: databaseControl.buffer as SharedArrayBuffer,
    counters,
    ...(resolved.readOnly && readOnlyCause === 'option' ? { readOnly: true } : {}),
  };
  const claim = claimThreadSlot(databaseControl, resolved.threadsMax);
  const slot = claim.slot;
  // Threads that die holding a slot: watched from here (the workers this thread starts), and their
  // slots reclaimed here.
  const liveness = watchThreadLiveness(databaseControl, resolved.threadsMax, null, () => {});
  const reclaimer = new ThreadReclaimer({
    path: directory,
    threadsMax: resolved.threadsMax,
    databaseControl,
    workerControls: controls,
    rings,
    mvcc,
    pools: readers.pools,
  });
  reclaimer.start();
  const keepAlive = new KeepAlive();
  const channels = Array.from(
    { length: workerCount },
    (_, worker) =>
      new WriteChannel(rings[worker]![slot]!, controls[worker]!, keepAlive, walDirectory(directory)),
  );
  const transactionChannels = Array.from(
    { length: workerCount },
    (_, worker) =>
      new WriteChannel(
        rings[worker]![resolved.threadsMax + slot]!,
        controls[worker]!,
        keepAlive,
        walDirectory(directory),
      ),
  );
  // A database opened on a full disk takes writes again once space returns.
  const writableAgain =
    fingerprint === null
      ? null
      : new WritableAgain(
          {
            directory,
            databaseControl,
            becomeWritable: (walEpoch) => pool.becomeWritable(walEpoch),
            finishOpen: async () => {
              await cutTornTails(started.tornTails);
              await removeDecisionLogs(directory);
            },
          },
          fingerprint,
        );
  writableAgain?.start();
  if (writableAgain !== null)
    refuseWritesUntilSpace([...channels, ...transactionChannels], directory, databaseControl);
  else if (resolved.readOnly) refuseWrites([...channels, ...transactionChannels], directory);
  phase('settled');
  let replication: StartedReplication | null = null;
  const db = new Database({
    handle,
    router,
    versionedReaders: readers.readers,
    partitionPools: readers.partitionPools,
    mvcc,
    slot,
    decisionLog: new DecisionLog(directory, slot),
    failpoints: new Failpoints(resolved.failpoints),
    channels,
    transactionChannels,
    workerControls: controls,
    databaseControl,
    counters: attachThreadCounters(counters, resolved.threadsMax, partitions),
    checkpoint: () =>
      (resolved.readOnly && writableAgain === null) || writesRefusedUntilSpace(databaseControl)
        ? Promise.reject(readOnlyError('checkpoint()', directory, readOnlyCause))
        : pool.checkpoint(),
    recovery: {
      checkpointEntries: recoveries.reduce((sum, recovery) => sum + recovery.checkpointEntries, 0),
      replayedRecords: recoveries.reduce((sum, recovery) => sum + recovery.replayedRecords, 0),
      tornTailsCut: tornTails.length,
      // Every owner reads every log, so each met the same damage.
      damagedLogRangesSkipped: new Set(started.skippedDamage.map((d) => `${d.file}:${d.offset}`)).size,
      tornTailBytes: tornTails.reduce((sum, torn) => sum + torn.bytesDropped, 0),
    },
    release: async () => {
      await replication?.beforeOwnersStop();
      markClosed(databaseControl);
      const lockTakenLater = (await writableAgain?.stop()) ?? null;
      liveness.stop();
      await reclaimer.stop();
      await pool.stop();
      readers.close();
      await replication?.afterOwnersStop();
      releaseThreadSlot(databaseControl, claim);
      await releaseLock();
      await lockTakenLater?.();
    },
  });
  if (resolved.replication !== null) {
    try {
      replication = await startReplication({
        directory,
        options: resolved.replication,
        lead: !follow,
        db,
        pool,
        databaseControl,
        threadsMax: resolved.threadsMax,
        rings,
        controls,
        keepAlive,
        partitionWorkers,
        userChannels: [...channels, ...transactionChannels],
      });
    } catch (error) {
      await db.close();
      throw error;
    }
    db.useReplication(replication.role);
  }
  return db;
}

function markClosed(databaseControl: Int32Array): void {
  Atomics.store(databaseControl, kDatabaseState, databaseStateClosed);
}
