import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type CheckpointBatch,
  readManifest,
  recordCheckpoint,
  writeCheckpoint,
} from '../storage/checkpoint/index.js';
import { removeQuietly, syncDirectory } from '../storage/durable-file.js';
import { partitionDirectory } from '../storage/layout.js';
import type { PartitionLog, SegmentRemoval } from '../storage/wal/index.js';
import { latestEntries, type VersionedPartition } from './versioned-partition.js';

/** Entries handed to the checkpoint writer per step; the owner serves writes between steps. */
const walkBatchEntries = 2048;

export interface CheckpointResult {
  partition: number;
  startLsn: number;
  entries: number;
  bytes: number;
  durationMs: number;
  walSegmentsRemoved: number;
}

/**
 * Writes a checkpoint of one partition and drops the log segments it makes unnecessary: those whose
 * partitions have now all checkpointed past their records (SegmentRemoval).
 *
 * The walk is fuzzy: it reads the live tree a step at a time while the owner keeps applying writes
 * in between, so writes stop for no longer than one step. That is sound because replay starts at
 * `startLsn`, the log position when the walk began: every write before it is in the tree the walk
 * reads, and every write after it is replayed over the checkpoint in order. Puts and deletes are
 * blind writes, so replaying one whose effect the walk already saw gives the same result.
 *
 * Each partition has its own manifest in its own directory: owners of different partitions run in
 * different threads and must not read-modify-write one shared file.
 */
export async function checkpointPartition(
  databaseDirectory: string,
  partition: number,
  partitionState: VersionedPartition,
  log: PartitionLog,
  segmentRemoval: SegmentRemoval,
): Promise<CheckpointResult> {
  const started = performance.now();
  const directory = partitionDirectory(databaseDirectory, partition);
  // A transaction prepared and not yet decided lives only in the log: replay must meet its prepare.
  const startLsn = Math.min(log.nextLsn, partitionState.oldestLsnToReplay() ?? Number.POSITIVE_INFINITY);
  // Read in the same turn as startLsn: every record of this partition before it lies before this
  // position. When replay must start further back (staged or prepared records) that is unknown.
  const coversLog = startLsn === log.nextLsn ? log.writer.appendPosition() : null;
  const written = await writeCheckpoint(
    directory,
    partition,
    BigInt(startLsn),
    walk(latestEntries(partitionState)),
  );
  try {
    await recordCheckpoint(directory, partition, written.file, BigInt(startLsn), written.entries, {
      coversLog,
      durable: log.writer.syncedMark(partition),
    });
  } catch (error) {
    await dropUnrecordedCheckpoint(directory, partition, written.file);
    throw error;
  }
  const walSegmentsRemoved = await segmentRemoval.removeObsolete((other) =>
    checkpointStartLsn(databaseDirectory, other),
  );
  return {
    partition,
    startLsn,
    entries: written.entries,
    bytes: written.bytes,
    durationMs: performance.now() - started,
    walSegmentsRemoved,
  };
}

/**
 * Removes a checkpoint file the manifest could not be updated to name (the disk filled up, say): the
 * previous checkpoint and manifest stay in charge, and the orphan would only take space. A manifest
 * that did get renamed into place names the file, which then stays.
 */
async function dropUnrecordedCheckpoint(directory: string, partition: number, file: string): Promise<void> {
  try {
    const manifest = await readManifest(directory);
    const named = manifest?.checkpoints.some(
      (record) => record.partition === partition && record.file === file,
    );
    if (named !== true) await removeQuietly(join(directory, file));
  } catch {
    // An unreadable manifest is for recovery to judge; the orphan goes at the next checkpoint.
  }
}

async function* walk(entries: Iterable<[Buffer, Buffer]>): AsyncGenerator<CheckpointBatch> {
  let batch: [Buffer, Buffer][] = [];
  for (const entry of entries) {
    batch.push(entry);
    if (batch.length === walkBatchEntries) {
      yield batch;
      batch = [];
      await yieldToEventLoop();
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * The LSN a partition's replay starts at, from its durable manifest (0 without a checkpoint). The
 * manifest, not this owner's memory, decides: the partition may belong to another owner this run.
 */
export async function checkpointStartLsn(databaseDirectory: string, partition: number): Promise<number> {
  const directory = partitionDirectory(databaseDirectory, partition);
  const manifest = await readManifest(directory);
  // Another owner may have just renamed this manifest into place without having synced its
  // directory yet: sync it here, so no log segment is removed on the word of a manifest that a
  // power loss could still take back.
  if (manifest !== null) await syncDirectory(directory);
  const checkpoint = manifest?.checkpoints.find((record) => record.partition === partition);
  return checkpoint === undefined ? 0 : Number(checkpoint.startLsn);
}
