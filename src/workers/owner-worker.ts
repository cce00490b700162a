/**
 * Entry point of a partition-owner worker thread. The owner allocates its partitions' memory (so on
 * NUMA machines the pages land on its node), then serves writes from its command rings until told to
 * shut down. Only this thread ever writes its partitions' trees.
 */

import { type MessagePort, parentPort } from 'node:worker_threads';
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
import { LogShipper } from './log-shipper.js';
import { type OwnedPartition, OwnerLoop } from './owner-loop.js';
import { checkpointRecorder } from './owner-metrics.js';
import type { OwnerApi, OwnerConfig, OwnerStarted } from './owner-protocol.js';
import { closeOwnerTrees, type OwnerTree, openOwnerTrees } from './owner-trees.js';
import { type PagedPartition, PageSets } from './page-sets.js';
import type { PagedTree } from './paged-tree.js';
import type { CheckpointResult } from './partition-checkpoint.js';
import { recoverPartitions } from './partition-recovery.js';
import { encodeDecisionRecord } from './transaction-records.js';
import { VersionedPartition } from './versioned-partition.js';

let loop: OwnerLoop | null = null;
let control: Int32Array | null = null;
let syncTimer: NodeJS.Timeout | null = null;
let checkpointTimer: NodeJS.Timeout | null = null;
let checkpoints: CheckpointScheduler | null = null;
/** The page sets of this worker's partitions over page files, if it has any. */
let pageSets: PageSets | null = null;
/** This worker's partitions' trees, for closing their page files at shutdown. */
let ownerTrees: OwnerTree[] = [];
/** How often the worker looks at its logs' growth to decide on a checkpoint. */
const checkpointCheckIntervalMs = 250;
/** This worker's log for this run. */
let ownerLog: WalWriter | null = null;
/** The database directory and the partitions of this worker, for the manifests' marks at shutdown. */
let shutdownPath = '';
let shutdownPartitions: readonly number[] = [];
/** Serving reads only (opened with `readOnly`, or on a full disk): nothing of it writes to the directory. */
let readOnly = false;
/**
 * Every owner has read the earlier runs' logs (the opener said so, `earlierLogsRead()`): until then
 * this owner's checkpoints leave those logs' segments in place (see SegmentRemoval).
 */
let earlierLogsRead = false;
let removal: SegmentRemoval | null = null;
/** While serving reads only: what recovery left, for `becomeWritable`. */
let readable: RecoveredState | null = null;

const api: OwnerApi = {
  async start(config: OwnerConfig): Promise<OwnerStarted> {
    if (loop !== null) throw new Error('owner worker started twice');
    if (config.fileLayer !== undefined) await installFileLayerModule(config.fileLayer);
    control = attachControlBlock(config.control, kWorkerFieldCount);
    // Pinned before any partition exists, so the pages this thread first touches land on its node.
    const { node, cpus, pinning } = config.placement;
    const placement = { node, ...placeCurrentThread(cpus, pinning) };
    const mvcc = MvccState.attach(config.mvcc);
    const committed = new Set(config.committedTransactions);
    const owned = await openOwnerTrees(config);
    let recovered: Awaited<ReturnType<typeof recoverPartitions>>;
    try {
      recovered = await recoverPartitions(
        config.path,
        owned.map(({ partition, tree, pages }) => ({
          partition,
          tree,
          ...(pages === null ? {} : { pages }),
        })),
        committed,
        config.walEpoch,
        new LogCoverage(config.logCoverage.length > 0 ? config.logCoverage : [null]),
      );
    } catch (error) {
      closeOwnerTrees(owned);
      throw error;
    }
    ownerTrees = owned;
    // Cells recovered with an earlier run's commit timestamps must be older than every new snapshot
    // (every owner raises the shared oracle for its partitions before open() returns).
    mvcc.startAbove(Math.max(0, ...recovered.partitions.map((recovery) => recovery.timestampHigh)));
    // Each partition's version store, shared with the readers from the start: a database that serves
    // reads only (and may take writes later) hands out the same trees.
    // The version store stays in an arena: it holds only the versions open snapshots and prepared
    // transactions keep, and nothing of it outlives the process.
    const withVersions = owned.map(({ partition, tree, pages }) => ({
      partition,
      tree,
      pages,
      versions: BTree.create({ pageSizeBytes: config.pageSizeBytes, maxBytes: config.partitionBytesMax }),
    }));
    const state: RecoveredState = { config, partitions: withVersions, recovered, mvcc };
    if (config.readOnly) {
      // In-doubt transactions were resolved in memory at recovery; the version store stays empty.
      readOnly = true;
      readable = state;
    } else {
      await startWriting(state, config.walEpoch);
    }
    Atomics.store(control, kWorkerState, workerStateRunning);
    return {
      trees: withVersions.map(({ tree, pages }) => pages?.share() ?? tree.share()),
      versionTrees: withVersions.map(({ versions }) => versions.share()),
      recoveries: recovered.partitions,
      tornTails: recovered.tornTails,
      skippedDamage: recovered.skippedDamage,
      placement,
    };
  },

  async becomeWritable(walEpoch: number): Promise<void> {
    if (!readOnly) return;
    if (readable === null) throw new Error('owner worker not started');
    try {
      await startWriting(readable, walEpoch);
    } catch (error) {
      // ERR_DISK_FULL / ERR_READ_ONLY reach the opener with their type: it tries again later.
      rethrowStorageCondition(error, 'starting to write again', 'serving reads meanwhile');
    }
    readOnly = false;
    readable = null;
  },

  async earlierLogsRead(): Promise<void> {
    earlierLogsRead = true;
    removal?.releaseEarlier();
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

  async replicate(port: MessagePort | null, recordBytesMax = Number.MAX_SAFE_INTEGER): Promise<void> {
    if (loop === null) throw new Error('owner worker not started');
    loop.setShipper(port === null ? null : new LogShipper(port, recordBytesMax));
  },

  async shutdown(): Promise<void> {
    if (loop === null || control === null) {
      closeOwnerTrees(ownerTrees);
      ownerTrees = [];
      return;
    }
    if (syncTimer !== null) clearInterval(syncTimer);
    if (checkpointTimer !== null) clearInterval(checkpointTimer);
    await checkpoints?.idle();
    await loop.stop();
    await pageSets?.writeAll();
    try {
      await ownerLog?.close();
      // Everything logged is synced now: each partition's manifest promises its last record.
      if (ownerLog !== null) await recordClosingMarks(shutdownPath, shutdownPartitions, ownerLog);
    } catch (error) {
      // On a full disk, what the log holds was synced by the loop's last flush; nothing else is owed
      // (a durable mark not moved forward now is moved by the next open's recovery).
      if (storageCondition(error) === null) throw error;
    }
    loop.closed();
    closeOwnerTrees(ownerTrees);
    ownerTrees = [];
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

/** What recovery left a worker, for it to start writing now or, after a read-only open, later. */
interface RecoveredState {
  config: OwnerConfig;
  partitions: { partition: number; tree: BTree; pages: PagedTree | null; versions: BTree }[];
  recovered: Awaited<ReturnType<typeof recoverPartitions>>;
  mvcc: MvccState;
}

/**
 * Records the marks recovery found, opens this run's log (in `walEpoch`), logs the outcomes of the
 * in-doubt transactions recovery resolved, and starts the loop and the checkpoint timer. A failure
 * (a full disk) leaves nothing started, so it can be tried again with a new epoch.
 */
async function startWriting(state: RecoveredState, walEpoch: number): Promise<void> {
  const { config, recovered, mvcc } = state;
  const ownedPartitions = state.partitions.map(({ partition }) => partition);
  // Records an earlier run left unrecorded (it crashed): once synced here, the manifests promise them.
  await recordRecoveredMarks(config.path, ownedPartitions, recovered);
  // One log for all of this worker's partitions, new for this run: a batch is one write and one
  // fdatasync however many partitions it touched.
  const writer = await openOwnerLog({ ...config, walEpoch });
  const partitions = new Map<number, OwnedPartition>();
  // Opened read-only on a full disk, the trees over page files write sets again from here on.
  for (const { pages } of state.partitions) pages?.allowWrites();
  let anyResolved = false;
  state.partitions.forEach(({ partition, tree, pages, versions }, i) => {
    const recovery = recovered.partitions[i]!;
    const log = new PartitionLog(writer, partition, recovery.nextLsn);
    // Decided at recovery: logged and synced before the coordinators' decision logs are dropped.
    for (const { transactionId, committed: wasCommitted } of recovery.resolved) {
      log.append(recordTypeDecision, [encodeDecisionRecord(transactionId, wasCommitted)]);
      anyResolved = true;
    }
    partitions.set(partition, {
      tree,
      log,
      versioned: new VersionedPartition(tree, versions, mvcc),
      pages,
    });
  });
  if (anyResolved) {
    try {
      await writer.flush(true);
    } catch (error) {
      await writer.close().catch(() => {});
      throw error;
    }
  }
  ownerLog = writer;
  shutdownPath = config.path;
  shutdownPartitions = ownedPartitions;
  const rings = config.rings.map((sab) => CommandRing.attach(sab));
  const segmentRemoval = new SegmentRemoval(recovered.segments, writer, earlierLogsRead);
  removal = segmentRemoval;
  let wake = (): void => {};
  const paged = pagedPartitions(partitions);
  const sets =
    paged === null
      ? null
      : new PageSets(paged, config.path, config.durability, mvcc, segmentRemoval, failPageSet, () => wake());
  pageSets = sets;
  // A partition converted from a checkpoint file: its first set, recorded in its manifest, ends the
  // conversion (until then every open would load the file again). The open waits for it.
  const conversions = state.partitions.flatMap(({ partition, pages }, i) =>
    sets !== null && pages !== null && recovered.partitions[i]!.convertedToPages
      ? [sets.requestCheckpoint(partition).then(() => {}, failPageSet)]
      : [],
  );
  const running = new OwnerLoop(
    partitions,
    config.durability,
    rings,
    control!,
    new Failpoints(config.failpoints),
    mvcc,
    config.workerIndex,
    sets,
  );
  wake = () => running.wake();
  loop = running;
  running.start();
  await Promise.all(conversions);
  if (config.durability === 'relaxed') {
    // Writes were acknowledged after write(2); sync them within the interval.
    syncTimer = setInterval(() => {
      syncOwnerLogs(running.takeUnsynced()).catch(failLog);
    }, config.syncIntervalMs);
  }
  const scheduler = new CheckpointScheduler(
    config.path,
    partitions,
    config.checkpointWalBytes,
    segmentRemoval,
    checkpointRecorder(control!),
    sets,
  );
  checkpoints = scheduler;
  checkpointTimer = setInterval(() => scheduler.maybeStart(failCheckpoint), checkpointCheckIntervalMs);
}

/** The partitions over page files, or null if none is (every partition lives one way). */
function pagedPartitions(partitions: Map<number, OwnedPartition>): Map<number, PagedPartition> | null {
  const paged = new Map<number, PagedPartition>();
  for (const [partition, owned] of partitions) {
    if (owned.pages !== null) paged.set(partition, { ...owned, pages: owned.pages });
  }
  return paged.size === 0 ? null : paged;
}

/** A page set written in the background failed: the log still holds every write; the next set retries. */
function failPageSet(error: unknown): void {
  console.error(
    'lightning-db owner: writing a page set failed; the write-ahead log still holds every write',
    error,
  );
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
