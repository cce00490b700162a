import { basename, isAbsolute, join, resolve } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import {
  type ChecksummedJsonKind,
  checksumOf,
  decimalU64Pattern,
  type Fail,
  isRecord,
  readChecksummedJson,
  writeChecksummedJson,
} from '../checksummed-json.js';
import { ensureDirectory } from '../durable-file.js';
import { removeSupersededCheckpoints } from './checkpoint-files.js';
import { lsnMax, parseCheckpointFileName, u32Max } from './checkpoint-format.js';
import { readCheckpointHeader } from './checkpoint-reader.js';

/**
 * The manifest names each partition's current checkpoint. Recovery loads that checkpoint and replays
 * the partition's WAL from its start LSN, so the manifest is what makes a checkpoint count: a file
 * the manifest does not name is garbage, however complete. One `MANIFEST.json` per database, replaced
 * atomically (temporary file, fsync, rename, fsync directory), so a crash leaves the old or the new.
 */
export const manifestFileName = 'MANIFEST.json';
export const manifestFormat = 'lightning-db-manifest';
export const manifestFormatVersion = 1;

export interface CheckpointRecord {
  partition: number;
  /** Path of the checkpoint file relative to the manifest's directory. */
  file: string;
  /** The WAL position from which replay must begin; stored as a decimal string (u64). */
  startLsn: bigint;
  entries: number;
}

export interface Manifest {
  partitions: number;
  /** At most one record per partition; a partition without one has never been checkpointed. */
  checkpoints: CheckpointRecord[];
}

const manifestKind: ChecksummedJsonKind = {
  format: manifestFormat,
  formatVersion: manifestFormatVersion,
  description: 'a lightning-db manifest',
  versionName: 'manifest format',
};

/** Reads `dir/MANIFEST.json`: null if absent, ERR_CORRUPTION if damaged, ERR_FORMAT_VERSION if newer. */
export async function readManifest(dir: string): Promise<Manifest | null> {
  const read = await readChecksummedJson(join(dir, manifestFileName), manifestKind);
  if (read === null) return null;
  const { fields, fail } = read;
  const manifest = fromJson(fields, fail);
  if (fields.checksum !== (await checksumOf(canonicalObject(manifest)))) fail('checksum mismatch');
  return manifest;
}

/** Replaces the manifest in `dir` atomically and durably. Validates it first (ERR_BAD_ARGUMENT). */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  checkManifest(manifest, (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `writeManifest: ${why}`);
  });
  return serialized(dir, () => writeUnserialized(dir, manifest));
}

export interface RecordCheckpointResult {
  manifest: Manifest;
  /** Superseded checkpoint files removed after the manifest was made durable, relative to `dir`. */
  removed: string[];
}

/**
 * Makes a finished checkpoint current for its partition: verifies that `file` (relative to `dir`) is
 * a complete checkpoint of that partition and start LSN with that many entries, writes the manifest
 * naming it durably, and only then removes the partition's superseded checkpoint files, so at every
 * instant the durable manifest names a file that exists.
 *
 * A read-modify-write of one shared file: calls for one directory are serialized within this thread,
 * but the manifest must have a single writing thread per database (owners report finished
 * checkpoints to it over the control plane). The manifest must exist (written at creation).
 */
export async function recordCheckpoint(
  dir: string,
  partition: number,
  file: string,
  startLsn: bigint,
  entries: number,
): Promise<RecordCheckpointResult> {
  const record: CheckpointRecord = { partition, file, startLsn, entries };
  checkRecord(record, (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `recordCheckpoint: ${why}`);
  });
  return serialized(dir, () => recordUnserialized(dir, record));
}

async function recordUnserialized(dir: string, record: CheckpointRecord): Promise<RecordCheckpointResult> {
  const bad: Fail = (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `recordCheckpoint: ${why}`);
  };
  const info = await readCheckpointHeader(join(dir, record.file));
  if (
    info.partition !== record.partition ||
    info.startLsn !== record.startLsn ||
    info.entryCount !== record.entries
  ) {
    bad(
      `${record.file} holds partition ${info.partition}, start LSN ${info.startLsn}, ${info.entryCount} entries; ` +
        `expected ${record.partition}, ${record.startLsn}, ${record.entries}`,
    );
  }
  const current = await readManifest(dir);
  if (current === null) bad(`no ${manifestFileName} in ${dir}; write one when the database is created`);
  if (record.partition >= current.partitions) bad(`partition ${record.partition} of ${current.partitions}`);
  const previous = current.checkpoints.find((c) => c.partition === record.partition) ?? null;
  if (previous !== null && record.startLsn < previous.startLsn) {
    bad(`start LSN ${record.startLsn} is older than the recorded checkpoint's ${previous.startLsn}`);
  }
  const manifest: Manifest = {
    partitions: current.partitions,
    checkpoints: [...current.checkpoints.filter((c) => c.partition !== record.partition), record].sort(
      (a, b) => a.partition - b.partition,
    ),
  };
  await writeUnserialized(dir, manifest);
  // The manifest naming the new checkpoint is durable: nothing refers to the old files any more.
  const removed = await removeSupersededCheckpoints(
    dir,
    record.partition,
    record.file,
    record.startLsn,
    manifest.checkpoints.map((c) => c.file),
    previous !== null && previous.file !== record.file ? previous.file : null,
  );
  return { manifest, removed };
}

async function writeUnserialized(dir: string, manifest: Manifest): Promise<void> {
  await ensureDirectory(dir);
  await writeChecksummedJson(join(dir, manifestFileName), canonicalObject(manifest));
}

/**
 * The manifest as stored, with a fixed key order and records sorted by partition: its JSON is the
 * canonical text the checksum covers, so equal manifests always have equal checksums.
 */
function canonicalObject(manifest: Manifest) {
  return {
    format: manifestFormat,
    formatVersion: manifestFormatVersion,
    partitions: manifest.partitions,
    checkpoints: [...manifest.checkpoints]
      .sort((a, b) => a.partition - b.partition)
      .map((c) => ({
        partition: c.partition,
        file: c.file,
        startLsn: c.startLsn.toString(),
        entries: c.entries,
      })),
  };
}

function fromJson(parsed: Record<string, unknown>, fail: Fail): Manifest {
  const { partitions, checkpoints } = parsed;
  if (typeof partitions !== 'number' || !Array.isArray(checkpoints))
    fail('partitions or checkpoints missing');
  const records = checkpoints.map((value: unknown, i): CheckpointRecord => {
    if (!isRecord(value)) fail(`checkpoint ${i} is not an object`);
    const { partition, file, startLsn, entries } = value;
    if (typeof partition !== 'number' || typeof file !== 'string' || typeof entries !== 'number') {
      fail(`checkpoint ${i} has fields of the wrong type`);
    }
    if (typeof startLsn !== 'string' || !decimalU64Pattern.test(startLsn)) {
      fail(`checkpoint ${i} start LSN is not a decimal u64`);
    }
    return { partition, file, startLsn: BigInt(startLsn), entries };
  });
  const manifest: Manifest = { partitions, checkpoints: records };
  checkManifest(manifest, fail);
  return manifest;
}

function checkManifest(manifest: Manifest, fail: Fail): void {
  if (!isRecord(manifest) || !Array.isArray(manifest.checkpoints)) fail('not a manifest');
  const { partitions } = manifest;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > u32Max)
    fail(`partitions ${partitions}`);
  const seen = new Set<number>();
  for (const record of manifest.checkpoints) {
    checkRecord(record, fail);
    if (record.partition >= partitions) fail(`checkpoint of partition ${record.partition} of ${partitions}`);
    if (seen.has(record.partition)) fail(`two checkpoints for partition ${record.partition}`);
    seen.add(record.partition);
  }
}

/**
 * A record's file must be a checkpoint name carrying the record's start LSN, relative and inside the
 * directory: cleanup deletes files by these names, so a damaged manifest must not reach elsewhere.
 */
function checkRecord(record: CheckpointRecord, fail: Fail): void {
  const { partition, file, startLsn, entries } = record;
  if (!Number.isInteger(partition) || partition < 0 || partition > u32Max) fail(`partition ${partition}`);
  if (typeof startLsn !== 'bigint' || startLsn < 0n || startLsn > lsnMax)
    fail(`start LSN ${String(startLsn)}`);
  if (!Number.isSafeInteger(entries) || entries < 0) fail(`entry count ${entries}`);
  const parsed = typeof file === 'string' ? parseCheckpointFileName(basename(file)) : null;
  if (
    parsed === null ||
    parsed.temporary ||
    parsed.startLsn !== startLsn ||
    isAbsolute(file) ||
    file.split(/[\\/]/).includes('..')
  ) {
    fail(`file ${JSON.stringify(file)} is not a relative checkpoint name for start LSN ${startLsn}`);
  }
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Runs manifest updates for one directory one after another: two overlapping read-modify-writes
 * would otherwise lose one partition's update, and they would share one temporary file.
 */
function serialized<T>(dir: string, task: () => Promise<T>): Promise<T> {
  const key = resolve(dir);
  // The queued promise never rejects (see `settled`), so each task runs whatever the previous one did.
  const run = (queues.get(key) ?? Promise.resolve()).then(task);
  const settled = run.catch(() => undefined);
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return run;
}
