import { join } from 'node:path';
import { type BTree, isLightningError, LightningError } from '../shared-memory/index.js';
import { encodedEntries } from '../shared-memory/ring/operation-codec.js';
import {
  type DurableMark,
  manifestFileName,
  readCheckpoint,
  readManifest,
} from '../storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../storage/layout.js';
import { pageFileName } from '../storage/page-file/page-file-format.js';
import {
  lsnFirst,
  readWal,
  recordTypeDecision,
  recordTypePrepare,
  type SegmentContents,
  type SkippedDamage,
  type TornTail,
  type WalRecord,
} from '../storage/wal/index.js';
import type { LogCoverage } from '../storage/wal/log-coverage.js';
import { applyOperation } from './apply-operation.js';
import type { PagedTree } from './paged-tree.js';
import { decisionCommitted, recordTransactionId } from './transaction-records.js';

export interface PartitionRecovery {
  /** Where the partition's LSN sequence continues. */
  nextLsn: number;
  /** Entries loaded from the partition's checkpoint (0 without one). */
  checkpointEntries: number;
  /**
   * The partition's checkpoint file was loaded into its page file (a conversion): until a page set
   * is recorded in its manifest, every open loads the file again.
   */
  convertedToPages: boolean;
  replayedRecords: number;
  /**
   * The highest commit timestamp a cell of the partition may carry as recovered: a page file's
   * high-water (its pages keep the heads open snapshots needed, stamped in an earlier run), 0 for a
   * checkpoint file, whose entries carry none. The timestamp oracle must start above it.
   */
  timestampHigh: number;
  /**
   * Transactions that were prepared here and had no decision in the logs, resolved from the
   * coordinators' decision logs (presumed abort): the owner logs these decisions before serving.
   */
  resolved: { transactionId: number; committed: boolean }[];
}

/** What an owner recovered: each partition's state, and the earlier runs' segments it read. */
export interface OwnerRecovery {
  /** In the order of the partitions asked for. */
  partitions: PartitionRecovery[];
  /** Every segment of the earlier runs, with the partitions in it: candidates for removal. */
  segments: readonly SegmentContents[];
  /** Torn tails met at the ends of earlier logs: not replayed, cut by the opener once all owners read. */
  tornTails: TornTail[];
  /** Damaged log bytes that every partition's checkpoint covers: skipped. */
  skippedDamage: SkippedDamage[];
  /**
   * Per partition (in the order asked for): a durable mark past the manifest's, found in the logs,
   * to record once the logs are synced; null where the manifest's stands.
   */
  durableMarks: (DurableMark | null)[];
}

/** A partition to recover: its tree, and for a partition over a page file, that tree's pages. */
export interface OwnedTree {
  readonly partition: number;
  readonly tree: BTree;
  /** The page file the tree was opened from (its pages stand for the checkpoint), or none. */
  readonly pages?: PagedTree;
}

/** Replay state of one partition. */
interface Replay {
  readonly partition: number;
  readonly tree: BTree;
  readonly pages: PagedTree | null;
  readonly recovery: PartitionRecovery;
  /** Prepared transactions without a decision yet: their writes, as batch operations, and LSNs. */
  readonly prepared: Map<number, { writes: Uint8Array; lsn: number }>;
}

/**
 * Rebuilds an owner's partitions from the files: each partition's checkpoint (the one its manifest
 * names, when there is one), then every earlier run's log, replayed record by record into the
 * partition each record names, each partition in its own LSN order from its checkpoint's start LSN.
 * The worker count may have changed between runs, so one partition's records may lie in several
 * logs; each owner reads all of them and keeps its own partitions' records (the logs of this run,
 * `epoch`, are not read: they are being written). A partition whose sequence has a gap is
 * ERR_CORRUPTION naming what is missing, and the database does not open with data silently missing.
 * A torn tail is not replayed and is returned: the opener cuts it once every owner has read.
 */
export async function recoverPartitions(
  databaseDirectory: string,
  owned: readonly OwnedTree[],
  committedTransactions: ReadonlySet<number>,
  epoch: number,
  coverage: LogCoverage,
): Promise<OwnerRecovery> {
  // Checkpoints load concurrently: one waits on its file (reads, lz4 on the libuv pool) while
  // another fills its tree on this thread.
  const starts = await Promise.all(
    owned.map(({ partition, tree, pages }) =>
      loadCheckpoint(databaseDirectory, partition, tree, pages ?? null),
    ),
  );
  const replays = new Map<number, Replay>();
  const fromLsns = new Map<number, number>();
  owned.forEach(({ partition, tree, pages }, i) => {
    const { fromLsn, entries, converted } = starts[i]!;
    fromLsns.set(partition, fromLsn);
    const recovery = {
      nextLsn: fromLsn,
      checkpointEntries: entries,
      convertedToPages: converted,
      replayedRecords: 0,
      timestampHigh: pages?.timestampHigh ?? 0,
      resolved: [],
    };
    replays.set(partition, { partition, tree, pages: pages ?? null, recovery, prepared: new Map() });
  });
  const result = await readWal(walDirectory(databaseDirectory), {
    beforeEpoch: epoch,
    partitions: fromLsns,
    onRecord: (record) => {
      const replay = replays.get(record.partition)!;
      if (replay.pages === null) return replayRecord(replay, record);
      return replayPagedRecord(replay, record, replay.pages);
    },
    coverage,
  });
  owned.forEach(({ partition }, i) => {
    const nextLsn = result.nextLsns.get(partition) ?? fromLsns.get(partition)!;
    checkDurableReached(databaseDirectory, partition, fromLsns.get(partition)!, nextLsn, starts[i]!.durable);
  });
  for (const replay of replays.values()) {
    // A checkpoint can cover records that never reached the disk ('relaxed', 'none': the checkpoint
    // is synced, the log tail it covers may not be): the sequence then continues after the
    // checkpoint, never below it, or new records would take LSNs the next recovery skips.
    const fromLsn = fromLsns.get(replay.partition)!;
    replay.recovery.nextLsn = Math.max(result.nextLsns.get(replay.partition) ?? fromLsn, fromLsn);
    await resolveInDoubt(replay, committedTransactions);
  }
  return {
    partitions: owned.map(({ partition }) => replays.get(partition)!.recovery),
    segments: result.contents,
    tornTails: [...result.tornTails],
    skippedDamage: [...result.skippedDamage],
    durableMarks: owned.map(({ partition }, i) => {
      const last = result.lastFiles.get(partition);
      const lsn = BigInt((result.nextLsns.get(partition) ?? lsnFirst) - 1);
      const recorded = starts[i]!.durable;
      return last === undefined || lsn <= recorded.lsn ? null : { lsn, log: last };
    }),
  };
}

/**
 * The partition's manifest promises its records up to `durable.lsn` are in the logs (they were
 * synced, or found there by an earlier recovery): logs that end before it lost them (a segment or
 * a whole log deleted, or cut short), unless the checkpoint covers them.
 */
function checkDurableReached(
  databaseDirectory: string,
  partition: number,
  fromLsn: number,
  nextLsn: number,
  durable: DurableMark,
): void {
  const promised = Number(durable.lsn);
  if (promised < fromLsn || nextLsn > promised) return;
  const log = durable.log === null ? 'the logs' : join(walDirectory(databaseDirectory), durable.log);
  throw new LightningError(
    'ERR_CORRUPTION',
    `partition ${partition}: its records end at LSN ${nextLsn - 1}, but LSN ${promised} was made durable in ${log}: ` +
      `that log segment (or one before it) is missing, truncated or damaged (${partitionDirectory(databaseDirectory, partition)}/MANIFEST.json records it); ` +
      'restore the database from a backup, or run `lightning-cli repair` to accept the loss',
  );
}

/**
 * Where a replay interrupted before the record at `lsn` must start again: there, or at the prepare of
 * a transaction still waiting for its decision (its writes are not in the tree yet, and its prepare
 * must be met again). The records in between are puts and deletes applied twice, to the same effect.
 */
function redoLsnWhileReplaying(replay: Replay, lsn: number): number {
  let redo = lsn;
  for (const { lsn: prepared } of replay.prepared.values()) redo = Math.min(redo, prepared);
  return redo;
}

/**
 * Loads the partition's checkpoint into `tree` (a paged tree's pages are its checkpoint, loaded as
 * they are read); returns where its log replay starts.
 */
async function loadCheckpoint(
  databaseDirectory: string,
  partition: number,
  tree: BTree,
  pages: PagedTree | null,
): Promise<{ fromLsn: number; entries: number; durable: DurableMark; converted: boolean }> {
  const checkpointDirectory = partitionDirectory(databaseDirectory, partition);
  const manifest = await readManifest(checkpointDirectory);
  if (manifest === null) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${partition}: ${join(checkpointDirectory, manifestFileName)} is missing`,
    );
  }
  const durable = manifest.durable ?? { lsn: 0n, log: null };
  const checkpoint = manifest.checkpoints.find((record) => record.partition === partition) ?? null;
  const manifestPath = join(checkpointDirectory, manifestFileName);
  if (pages !== null && checkpoint !== null && checkpoint.file !== pageFileName) {
    // Converted to a page file: the checkpoint file is loaded into a page file that holds nothing.
    if (pages.redoLsn !== null) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `partition ${partition}: ${manifestPath} names the checkpoint ${checkpoint.file}, and its page file ` +
          `holds a page set at LSN ${pages.redoLsn}: a page file loaded from a checkpoint must start empty`,
      );
    }
  } else if (pages !== null) {
    // The manifest is written after the set it names: the page file can only be further on.
    const redoLsn = pages.redoLsn ?? lsnFirst;
    if (checkpoint !== null && redoLsn < Number(checkpoint.startLsn)) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `partition ${partition}: its page file's pages are as of LSN ${redoLsn}, but ${manifestPath} ` +
          `records a page set at LSN ${checkpoint.startLsn}: the page file is older than the manifest (replaced or restored alone)`,
      );
    }
    return { fromLsn: redoLsn, entries: 0, durable, converted: false };
  }
  if (checkpoint?.file === pageFileName) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `partition ${partition}: ${manifestPath} names its page file as its checkpoint, and this open keeps partitions in memory`,
    );
  }
  // Without a checkpoint the sequence must start at the first LSN: a missing first record is lost
  // data, not a shorter log.
  if (checkpoint === null) return { fromLsn: lsnFirst, entries: 0, durable, converted: false };
  const file = join(checkpointDirectory, checkpoint.file);
  let entries = 0;
  const startLsn = Number(checkpoint.startLsn);
  try {
    for await (const batch of readCheckpoint(file)) {
      if (pages === null) {
        for (const [key, value] of batch) tree.put(key, value);
      } else {
        // A pool holds only so many changed pages: sets are written as it fills. The manifest names
        // the checkpoint file until a set is recorded, after the open: a crash before that loads the
        // file again into a fresh page file.
        for (const [key, value] of batch)
          await pages.withRoom(
            () => tree.put(key, value),
            () => startLsn,
          );
      }
      entries += batch.length;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${partition}: its checkpoint ${file}, named by ${manifestFileName}, is missing`,
      { cause: error },
    );
  }
  return { fromLsn: startLsn, entries, durable, converted: pages !== null };
}

/**
 * Replays a record into a tree over a page file, one entry at a time: a pool holds only so many
 * changed pages, so a set is written whenever it is full (withRoom), at the LSN replay must start
 * from again to meet this record (or an undecided prepare before it). Entry by entry, a batch logged
 * when the partition had more memory (before a conversion, or with a larger memoryMaxBytes) still
 * replays: a set in its middle is safe, since the next replay applies the whole record again, and
 * its puts and deletes land the same way twice.
 */
async function replayPagedRecord(replay: Replay, record: WalRecord, pages: PagedTree): Promise<void> {
  try {
    const { writes, decides } = replayedWrites(replay, record);
    if (writes !== null) await applyWithRoom(replay, pages, writes, record.lsn);
    // Only once applied: a set written meanwhile must make the next replay meet the prepare.
    if (decides !== null) replay.prepared.delete(decides);
    replay.recovery.replayedRecords++;
  } catch (error) {
    throw replayFailure(replay, record, error);
  }
}

function replayRecord(replay: Replay, record: WalRecord): void {
  try {
    const { writes, decides } = replayedWrites(replay, record);
    if (writes !== null) applyOperation(replay.tree, writes, 0, writes.length);
    if (decides !== null) replay.prepared.delete(decides);
    replay.recovery.replayedRecords++;
  } catch (error) {
    throw replayFailure(replay, record, error);
  }
}

/**
 * What a record asks replay to apply: a prepare is kept until its decision (nothing to apply), a
 * committed decision applies its prepare's writes, any other record its own; `decides` names the
 * transaction a decision settles, for the caller to forget once the writes are in.
 */
function replayedWrites(
  replay: Replay,
  record: WalRecord,
): { writes: Uint8Array | null; decides: number | null } {
  const payload = record.payload;
  if (record.type === recordTypePrepare) {
    replay.prepared.set(recordTransactionId(payload), { writes: payload.slice(8), lsn: record.lsn });
    return { writes: null, decides: null };
  }
  if (record.type === recordTypeDecision) {
    const transactionId = recordTransactionId(payload);
    const writes = replay.prepared.get(transactionId)?.writes;
    const committed = writes !== undefined && decisionCommitted(payload);
    return { writes: committed ? writes : null, decides: transactionId };
  }
  return { writes: payload, decides: null };
}

/**
 * Applies encoded writes to a tree over a page file entry by entry, writing a set whenever the pool
 * is full, at the LSN replay must start from again to meet the record at `lsn` (or an undecided
 * prepare before it).
 */
async function applyWithRoom(
  replay: Replay,
  pages: PagedTree,
  writes: Uint8Array,
  lsn: number,
): Promise<void> {
  const tree = replay.tree;
  const redoLsn = (): number => redoLsnWhileReplaying(replay, lsn);
  for (const { key, value } of encodedEntries(writes, 0, writes.length)) {
    await pages.withRoom(() => (value === null ? tree.delete(key) : tree.put(key, value)), redoLsn);
  }
}

/** A record's replay failed: why, as the opener should see it. */
function replayFailure(replay: Replay, record: WalRecord, error: unknown): LightningError {
  // Not damage: the files hold more than this open's partitionBytesMax lets the partition hold, or
  // (over a page file) one entry changes more pages than the pool has frames for.
  if (isLightningError(error, 'ERR_PARTITION_FULL')) {
    const where = `while replaying ${record.file} (LSN ${record.lsn})`;
    return new LightningError(
      'ERR_PARTITION_FULL',
      replay.pages === null
        ? `partition ${replay.partition} does not fit in partitionBytesMax ${where}; open with a larger partitionBytesMax`
        : `partition ${replay.partition} ${where}: ${(error as Error).message}; open with a larger memoryMaxBytes`,
      { cause: error },
    );
  }
  // A read-only open whose log tail changes more pages than a pool holds (PagedTree.withRoom).
  if (isLightningError(error, 'ERR_NOT_SUPPORTED')) {
    return new LightningError(
      'ERR_NOT_SUPPORTED',
      `while replaying ${record.file} (LSN ${record.lsn}): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return new LightningError(
    'ERR_CORRUPTION',
    `replaying ${record.file} at byte ${record.offset} (partition ${replay.partition}, LSN ${record.lsn}) failed: ${String(error)}`,
    { cause: error },
  );
}

/**
 * In doubt: prepared, then the process died before this partition logged a decision. A decision
 * log naming the transaction means the coordinator decided to commit; otherwise it never did.
 */
async function resolveInDoubt(replay: Replay, committedTransactions: ReadonlySet<number>): Promise<void> {
  for (const [transactionId, { writes, lsn }] of replay.prepared) {
    const committed = committedTransactions.has(transactionId);
    if (committed && replay.pages === null) applyOperation(replay.tree, writes, 0, writes.length);
    // Entry by entry, as replay does; a set in the middle is at this transaction's prepare or before
    // it, and replay from there decides it again, the same way.
    else if (committed) await applyWithRoom(replay, replay.pages!, writes, lsn);
    replay.recovery.resolved.push({ transactionId, committed });
  }
}
