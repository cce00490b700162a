/**
 * Entry point of a partition-owner worker thread. The owner allocates its partitions' memory (so on
 * NUMA machines the pages land on its node), then serves writes from its command rings until told to
 * shut down. Only this thread ever writes its partitions' trees.
 */

import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { placeCurrentThread } from '../numa/index.js';
import { LightningError } from '../shared-memory/errors.js';
import {
  attachControlBlock,
  BTree,
  CommandRing,
  kWorkerFieldCount,
  kWorkerState,
  type TreeHandle,
  workerStateRunning,
  workerStateStopped,
} from '../shared-memory/index.js';
import { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { installFileLayerModule } from '../storage/file-layer.js';
import { walDirectory } from '../storage/layout.js';
import { rethrowStorageCondition, storageCondition } from '../storage/storage-errors.js';
import {
  LogCoverage,
  PartitionLog,
  recordTypeDecision,
  SegmentRemoval,
  syncOwnerLogs,
  WalWriter,
} from '../storage/wal/index.js';
import { CheckpointScheduler } from './checkpoint-scheduler.js';
import { recordClosingMarks, recordRecoveredMarks } from './durable-marks.js';
import { Failpoints } from './failpoints.js';
import { type OwnedPartition, OwnerLoop } from './owner-loop.js';
import { checkpointRecorder } from './owner-metrics.js';
import type { OwnerApi, OwnerConfig, OwnerStarted, WorkerPlacement } from './owner-protocol.js';
import type { CheckpointResult } from './partition-checkpoint.js';
import { recoverPartitions } from './partition-recovery.js';
import { encodeDecisionRecord } from './transaction-records.js';
import { VersionedPartition } from './versioned-partition.js';

let loop: OwnerLoop | null = null;
let control: Int32Array | null = null;
let syncTimer: NodeJS.Timeout | null = null;
let checkpointTimer: NodeJS.Timeout | null = null;
let checkpoints: CheckpointScheduler | null = null;
/** How often the worker looks at its logs' growth to decide on a checkpoint. */
const checkpointCheckIntervalMs = 250;
/** This worker's log for this run. */
let ownerLog: WalWriter | null = null;
/** The database directory and the partitions of this worker, for the manifests' marks at shutdown. */
let shutdownPath = '';
let shutdownPartitions: readonly number[] = [];
/** Opened with `readOnly`: nothing of this worker writes to the directory. */
let readOnly = false;

const api: OwnerApi = {
  async start(config: OwnerConfig): Promise<OwnerStarted> {
    if (loop !== null) throw new Error('owner worker started twice');
    if (config.fileLayer !== undefined) await installFileLayerModule(config.fileLayer);
    control = attachControlBlock(config.control, kWorkerFieldCount);
    // Pinned before any partition exists, so the pages this thread first touches land on its node.
    const { node, cpus, pinning } = config.placement;
    const placement = { node, ...placeCurrentThread(cpus, pinning) };
    const partitions = new Map<number, OwnedPartition>();
    const trees: TreeHandle[] = [];
    const versionTrees: TreeHandle[] = [];
    const mvcc = MvccState.attach(config.mvcc);
    const committed = new Set(config.committedTransactions);
    const owned = config.partitions.map((partition) => ({
      partition,
      tree: BTree.create({ pageSizeBytes: config.pageSizeBytes, maxBytes: config.partitionBytesMax }),
    }));
    const recovered = await recoverPartitions(
      config.path,
      owned,
      committed,
      config.walEpoch,
      new LogCoverage(config.logCoverage.length > 0 ? config.logCoverage : [null]),
    );
    if (config.readOnly) {
      readOnly = true;
      return startReadOnly(owned, recovered, config, placement);
    }
    // Records an earlier run left unrecorded (it crashed): once synced here, the manifests promise them.
    await recordRecoveredMarks(config.path, config.partitions, recovered);
    // One log for all of this worker's partitions, new for this run: a batch is one write and one
    // fdatasync however many partitions it touched.
    const writer = await openOwnerLog(config);
    ownerLog = writer;
    shutdownPath = config.path;
    shutdownPartitions = config.partitions;
    const recoveries = recovered.partitions;
    let anyResolved = false;
    owned.forEach(({ partition, tree }, i) => {
      const recovery = recoveries[i]!;
      const log = new PartitionLog(writer, partition, recovery.nextLsn);
      // Decided at recovery: logged and synced before the coordinators' decision logs are dropped.
      for (const { transactionId, committed: wasCommitted } of recovery.resolved) {
        log.append(recordTypeDecision, [encodeDecisionRecord(transactionId, wasCommitted)]);
        anyResolved = true;
      }
      const versions = BTree.create({
        pageSizeBytes: config.pageSizeBytes,
        maxBytes: config.partitionBytesMax,
      });
      partitions.set(partition, { tree, log, versioned: new VersionedPartition(tree, versions, mvcc) });
      trees.push(tree.share());
      versionTrees.push(versions.share());
    });
    if (anyResolved) await writer.flush(true);
    const rings = config.rings.map((sab) => CommandRing.attach(sab));
    loop = new OwnerLoop(
      partitions,
      config.durability,
      rings,
      control,
      new Failpoints(config.failpoints),
      mvcc,
      config.workerIndex,
    );
    loop.start();
    if (config.durability === 'relaxed') {
      // Writes were acknowledged after write(2); sync them within the interval.
      const running = loop;
      syncTimer = setInterval(() => {
        syncOwnerLogs(running.takeUnsynced()).catch(failLog);
      }, config.syncIntervalMs);
    }
    const scheduler = new CheckpointScheduler(
      config.path,
      partitions,
      config.checkpointWalBytes,
      new SegmentRemoval(recovered.segments, writer),
      checkpointRecorder(control),
    );
    checkpoints = scheduler;
    checkpointTimer = setInterval(() => scheduler.maybeStart(failCheckpoint), checkpointCheckIntervalMs);
    Atomics.store(control, kWorkerState, workerStateRunning);
    return {
      trees,
      versionTrees,
      recoveries,
      tornTails: recovered.tornTails,
      skippedDamage: recovered.skippedDamage,
      placement,
    };
  },

  async checkpoint(): Promise<CheckpointResult[]> {
    if (readOnly) throw readOnlyRefusal('checkpoint()');
    if (checkpoints === null) throw new Error('owner worker not started');
    try {
      return await checkpoints.checkpointAll();
    } catch (error) {
      // The previous checkpoint and its manifest stay in place; the log still holds every write.
      rethrowStorageCondition(error, 'writing a checkpoint', 'the previous checkpoint is kept');
    }
  },

  async shutdown(): Promise<void> {
    if (loop === null || control === null) return;
    if (syncTimer !== null) clearInterval(syncTimer);
    if (checkpointTimer !== null) clearInterval(checkpointTimer);
    await checkpoints?.idle();
    await loop.stop();
    try {
      await ownerLog?.close();
      // Everything logged is synced now: each partition's manifest promises its last record.
      if (ownerLog !== null) await recordClosingMarks(shutdownPath, shutdownPartitions, ownerLog);
    } catch (error) {
      // On a full disk, what the log holds was synced by the loop's last flush; nothing else is owed
      // (a durable mark not moved forward now is moved by the next open's recovery).
      if (storageCondition(error) === null) throw error;
    }
    Atomics.store(control, kWorkerState, workerStateStopped);
  },
};

/**
 * This run's log for this worker. A disk with no room for it (or a read-only one) is ERR_DISK_FULL /
 * ERR_READ_ONLY saying how to read the database anyway.
 */
async function openOwnerLog(config: OwnerConfig): Promise<WalWriter> {
  const directory = walDirectory(config.path);
  try {
    return await WalWriter.open(directory, { epoch: config.walEpoch, worker: config.workerIndex });
  } catch (error) {
    rethrowStorageCondition(
      error,
      `creating this run's log in ${directory}`,
      `to read the database, open it with { readOnly: true }`,
    );
  }
}

/** Serves the recovered partitions for reading only: no log, no loop, no checkpoints. */
function startReadOnly(
  owned: { tree: BTree }[],
  recovered: Awaited<ReturnType<typeof recoverPartitions>>,
  config: OwnerConfig,
  placement: WorkerPlacement,
): OwnerStarted {
  const trees: TreeHandle[] = [];
  const versionTrees: TreeHandle[] = [];
  for (const { tree } of owned) {
    trees.push(tree.share());
    // In-doubt transactions were resolved in memory at recovery; the version store stays empty.
    const versions = BTree.create({
      pageSizeBytes: config.pageSizeBytes,
      maxBytes: config.partitionBytesMax,
    });
    versionTrees.push(versions.share());
  }
  Atomics.store(control!, kWorkerState, workerStateRunning);
  return {
    trees,
    versionTrees,
    recoveries: recovered.partitions,
    tornTails: recovered.tornTails,
    skippedDamage: recovered.skippedDamage,
    placement,
  };
}

function readOnlyRefusal(what: string): LightningError {
  return new LightningError('ERR_READ_ONLY', `${what}: the database was opened with { readOnly: true }`);
}

/** A failed checkpoint loses nothing (the log still holds everything); it is reported and retried later. */
function failCheckpoint(error: unknown): void {
  console.error(
    'lightning-db owner: a checkpoint failed; the write-ahead log still holds every write',
    error,
  );
}

function failLog(error: unknown): void {
  console.error('lightning-db owner: syncing the write-ahead log failed; stopping this worker', error);
  process.exit(74);
}

if (parentPort === null) throw new Error('owner-worker must run in a worker thread');
Comlink.expose(api, nodeEndpoint(parentPort));
