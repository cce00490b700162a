import { unlink } from 'node:fs/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  type CheckpointBatch,
  readManifest,
  recordCheckpoint,
  writeCheckpoint,
  writeManifest,
} from '../storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../storage/layout.js';
import type { WalWriter } from '../storage/wal/index.js';
import { listSegments, syncDirectory } from '../storage/wal/wal-files.js';
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
 * Writes a checkpoint of one partition and drops the log segments it makes unnecessary.
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
  partitions: number,
  partitionState: VersionedPartition,
  log: WalWriter,
): Promise<CheckpointResult> {
  const started = performance.now();
  const directory = partitionDirectory(databaseDirectory, partition);
  if ((await readManifest(directory)) === null)
    await writeManifest(directory, { partitions, checkpoints: [] });
  // A transaction prepared and not yet decided lives only in the log: replay must meet its prepare.
  const startLsn = Math.min(log.nextLsn, partitionState.oldestLsnToReplay() ?? Number.POSITIVE_INFINITY);
  const written = await writeCheckpoint(
    directory,
    partition,
    BigInt(startLsn),
    walk(latestEntries(partitionState)),
  );
  await recordCheckpoint(directory, partition, written.file, BigInt(startLsn), written.entries);
  const walSegmentsRemoved = await removeCoveredSegments(
    walDirectory(databaseDirectory, partition),
    startLsn,
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
 * Deletes the segments whose records all precede `startLsn`: a segment is covered when the next
 * segment starts at or before it. The newest segment is never deleted (the writer appends to it).
 */
async function removeCoveredSegments(directory: string, startLsn: number): Promise<number> {
  const segments = await listSegments(directory);
  let removed = 0;
  for (let i = 0; i + 1 < segments.length; i++) {
    if (segments[i + 1]!.nameLsn > startLsn) break;
    await unlink(segments[i]!.path);
    removed++;
  }
  if (removed > 0) await syncDirectory(directory);
  return removed;
}
