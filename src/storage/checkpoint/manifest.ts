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
import { pageFileName } from '../page-file/page-file-format.js';
import { readPageFileRedoLsn } from '../page-file/page-file-reader.js';
import { isPartitionHash, legacyPartitionHash, type PartitionHash } from '../partition-hash.js';
import { removeSupersededCheckpoints } from './checkpoint-files.js';
import { lsnMax, parseCheckpointFileName, u32Max } from './checkpoint-format.js';
import { readCheckpointHeader } from './checkpoint-reader.js';

/**
 * The manifest names each partition's current checkpoint. Recovery loads that checkpoint and replays
 * the partition's WAL from its start LSN, so the manifest is what makes a checkpoint count: a file
 * the manifest does not name is garbage, however complete. Each partition has a `MANIFEST.json` in its
 * own directory, written when the database is created and replaced atomically (temporary file,
 * fsync, rename, fsync directory), so a crash leaves the old or the new.
 *
 * It also accounts for the partition's files: the database it belongs to (the id LIGHTNING.json
 * holds), and the partition's last LSN known to be durable in the logs, so that recovery can tell a
 * log that ends early (deleted, truncated) from one that was never longer.
 */
export const manifestFileName = 'MANIFEST.json';
export const manifestFormat = 'lightning-db-manifest';
/**
 * Version 2 added databaseId, durable and each checkpoint's coversLog; version 3 the partition hash
 * (so that a lost LIGHTNING.json can be rebuilt with it). Versions 1 and 2 are read (their hash is
 * 'xxh64') and written as version 3 at the next update.
 */
export const manifestFormatVersion = 3;
/**
 * Version 4 is version 3 whose records may name a partition's page file (`pages.lpg`) as its
 * checkpoint. It is written only by manifests that do, so that a build that cannot read a page file
 * says ERR_FORMAT_VERSION for them, and every other manifest stays readable by earlier builds.
 */
export const manifestPagedFormatVersion = 4;

/** A place in an owner's log: a segment (by file name) and a byte offset in it. */
export interface LogPosition {
  /** The segment's file name (it names the run, the worker and the ordinal). */
  file: string;
  offset: number;
}

export interface CheckpointRecord {
  partition: number;
  /** Path of the checkpoint file relative to the manifest's directory. */
  file: string;
  /** The WAL position from which replay must begin; stored as a decimal string (u64). */
  startLsn: bigint;
  entries: number;
  /**
   * Where the owner's log stood when the checkpoint began: every record of this partition before it
   * (in that log, and in every log of earlier runs) is below startLsn. Null when that is not known
   * (a transaction's records were still needed): damage in the logs is then never skippable here.
   */
  coversLog?: LogPosition | null;
}

/** The partition's highest LSN known to be on disk in the logs, and the log segment it is in. */
export interface DurableMark {
  lsn: bigint;
  /** The segment's file name, or null before the partition's first durable record. */
  log: string | null;
}

export interface Manifest {
  /** The database's id, as in LIGHTNING.json; null in a version 1 manifest. */
  databaseId?: string | null;
  partitions: number;
  /** The database's partition hash, as in LIGHTNING.json; 'xxh64' when absent (versions 1 and 2). */
  hash?: PartitionHash;
  /** At most one record per partition; a partition without one has never been checkpointed. */
  checkpoints: CheckpointRecord[];
  /** Recovery must find the partition's records up to this LSN (unless its checkpoint covers it). */
  durable?: DurableMark;
}

const manifestKind: ChecksummedJsonKind = {
  format: manifestFormat,
  formatVersion: manifestFormatVersion,
  description: 'a lightning-db manifest',
  versionName: 'manifest format',
};
/** The versions read, newest first. */
const manifestKinds: ChecksummedJsonKind[] = [
  { ...manifestKind, formatVersion: manifestPagedFormatVersion },
  manifestKind,
  { ...manifestKind, formatVersion: 2 },
  { ...manifestKind, formatVersion: 1 },
];

/** Reads `dir/MANIFEST.json`: null if absent, ERR_CORRUPTION if damaged, ERR_FORMAT_VERSION if newer. */
export async function readManifest(dir: string): Promise<Manifest | null> {
  const file = join(dir, manifestFileName);
  let read: Awaited<ReturnType<typeof readChecksummedJson>> = null;
  let version = manifestFormatVersion;
  let newest: unknown = null;
  for (const kind of manifestKinds) {
    try {
      read = await readChecksummedJson(file, kind);
      version = kind.formatVersion;
      newest = null;
      break;
    } catch (error) {
      // An older manifest is read as it was written; any other failure, or no version matching,
      // reports what the newest version's read said.
      if (!(error instanceof LightningError) || error.code !== 'ERR_FORMAT_VERSION') throw error;
      newest ??= error;
    }
  }
  if (newest !== null) throw newest;
  if (read === null) return null;
  const { fields, fail } = read;
  const manifest = fromJson(fields, fail, version);
  if (fields.checksum !== (await checksumOf(canonicalObject(manifest, version)))) fail('checksum mismatch');
  return manifest;
}

/** Replaces the manifest in `dir` atomically and durably. Validates it first (ERR_BAD_ARGUMENT). */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  checkManifest(manifest, (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `writeManifest: ${why}`);
  });
  if (typeof manifest.databaseId !== 'string') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'writeManifest: a manifest names its database (databaseId)');
  }
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
  accounting: { coversLog: LogPosition | null; durable: DurableMark | null } = {
    coversLog: null,
    durable: null,
  },
): Promise<RecordCheckpointResult> {
  const record: CheckpointRecord = { partition, file, startLsn, entries };
  if (accounting.coversLog !== null) record.coversLog = accounting.coversLog;
  checkRecord(record, (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `recordCheckpoint: ${why}`);
  });
  return serialized(dir, () => recordUnserialized(dir, record, accounting.durable));
}

/**
 * Makes a written page set current for its partition: the manifest's record names the page file,
 * with the set's redo LSN as the start of the log's replay, so that log segments below it can go.
 * The page file must hold that set already (its page 0 says so), and the manifest is written only
 * after it: the page file's redo LSN is never below the manifest's. A checkpoint file the record
 * replaces is removed once the manifest is durable.
 */
export async function recordPageSet(
  dir: string,
  partition: number,
  redoLsn: bigint,
  accounting: { coversLog: LogPosition | null; durable: DurableMark | null },
): Promise<RecordCheckpointResult> {
  const record: CheckpointRecord = { partition, file: pageFileName, startLsn: redoLsn, entries: 0 };
  if (accounting.coversLog !== null) record.coversLog = accounting.coversLog;
  checkRecord(record, (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `recordPageSet: ${why}`);
  });
  return serialized(dir, async () => {
    const inFile = await readPageFileRedoLsn(dir);
    if (inFile === null || BigInt(inFile) < redoLsn) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `recordPageSet: ${join(dir, pageFileName)} holds no page set at redo LSN ${redoLsn} (it has ${String(inFile)})`,
      );
    }
    return replaceRecord(dir, record, accounting.durable, 'recordPageSet');
  });
}

/**
 * Records that the partition's records up to `mark.lsn` are durable in the logs (in segment
 * `mark.log`), if that is past what the manifest says: recovery then refuses logs that end before it.
 * Serialized with the manifest's other updates; a no-op when the mark does not move forward.
 */
export async function recordDurableMark(dir: string, mark: DurableMark): Promise<boolean> {
  return serialized(dir, async () => {
    const current = await readManifest(dir);
    if (current === null) {
      throw new LightningError('ERR_CORRUPTION', `${join(dir, manifestFileName)} is missing`);
    }
    if (mark.lsn <= (current.durable?.lsn ?? 0n)) return false;
    await writeUnserialized(dir, { ...current, durable: mark });
    return true;
  });
}

/**
 * Sets the partition's durable mark, also backwards: how a repair accepts that records the mark
 * promised are lost (their log is gone). Nothing else may move a mark back.
 */
export async function resetDurableMark(dir: string, mark: DurableMark): Promise<void> {
  return serialized(dir, async () => {
    const current = await readManifest(dir);
    if (current === null) {
      throw new LightningError('ERR_CORRUPTION', `${join(dir, manifestFileName)} is missing`);
    }
    await writeUnserialized(dir, { ...current, durable: mark });
  });
}

async function recordUnserialized(
  dir: string,
  record: CheckpointRecord,
  durable: DurableMark | null,
): Promise<RecordCheckpointResult> {
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
  return replaceRecord(dir, record, durable, 'recordCheckpoint');
}

/** Writes the manifest with `record` as its partition's, then removes the files it supersedes. */
async function replaceRecord(
  dir: string,
  record: CheckpointRecord,
  durable: DurableMark | null,
  caller: string,
): Promise<RecordCheckpointResult> {
  const bad: Fail = (why) => {
    throw new LightningError('ERR_BAD_ARGUMENT', `${caller}: ${why}`);
  };
  const current = await readManifest(dir);
  if (current === null) {
    throw new LightningError('ERR_CORRUPTION', `${join(dir, manifestFileName)} is missing`);
  }
  if (record.partition >= current.partitions) bad(`partition ${record.partition} of ${current.partitions}`);
  const previous = current.checkpoints.find((c) => c.partition === record.partition) ?? null;
  if (previous !== null && record.startLsn < previous.startLsn) {
    bad(`start LSN ${record.startLsn} is older than the recorded checkpoint's ${previous.startLsn}`);
  }
  const previousDurable = current.durable ?? { lsn: 0n, log: null };
  const manifest: Manifest = {
    databaseId: current.databaseId ?? null,
    partitions: current.partitions,
    hash: current.hash ?? legacyPartitionHash,
    checkpoints: [...current.checkpoints.filter((c) => c.partition !== record.partition), record].sort(
      (a, b) => a.partition - b.partition,
    ),
    durable: durable !== null && durable.lsn > previousDurable.lsn ? durable : previousDurable,
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
  const names = manifest.checkpoints.some((record) => record.file === pageFileName);
  await writeChecksummedJson(
    join(dir, manifestFileName),
    canonicalObject(manifest, names ? manifestPagedFormatVersion : manifestFormatVersion),
  );
}

/**
 * The manifest as stored, with a fixed key order and records sorted by partition: its JSON is the
 * canonical text the checksum covers, so equal manifests always have equal checksums.
 */
function canonicalObject(manifest: Manifest, version = manifestFormatVersion) {
  const checkpoints = [...manifest.checkpoints].sort((a, b) => a.partition - b.partition);
  if (version === 1) {
    return {
      format: manifestFormat,
      formatVersion: 1,
      partitions: manifest.partitions,
      checkpoints: checkpoints.map((c) => ({
        partition: c.partition,
        file: c.file,
        startLsn: c.startLsn.toString(),
        entries: c.entries,
      })),
    };
  }
  const durable = manifest.durable ?? { lsn: 0n, log: null };
  // Version 3 adds the hash after the partition count; version 2 is otherwise the same.
  const hash = version >= 3 ? { hash: manifest.hash ?? legacyPartitionHash } : {};
  return {
    format: manifestFormat,
    formatVersion: version,
    databaseId: manifest.databaseId ?? null,
    partitions: manifest.partitions,
    ...hash,
    durable: { lsn: durable.lsn.toString(), log: durable.log },
    checkpoints: checkpoints.map((c) => ({
      partition: c.partition,
      file: c.file,
      startLsn: c.startLsn.toString(),
      entries: c.entries,
      coversLog: c.coversLog ?? null,
    })),
  };
}

function fromJson(parsed: Record<string, unknown>, fail: Fail, version: number): Manifest {
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
    const coversLog = version === 1 ? null : logPositionFromJson(value.coversLog, fail);
    const record: CheckpointRecord = { partition, file, startLsn: BigInt(startLsn), entries };
    if (coversLog !== null) record.coversLog = coversLog;
    return record;
  });
  if (version < manifestPagedFormatVersion && records.some((record) => record.file === pageFileName))
    fail(`names ${pageFileName}, which only version ${manifestPagedFormatVersion} may`);
  const manifest: Manifest = { partitions, checkpoints: records };
  if (version !== 1) {
    const { databaseId, durable } = parsed;
    if (typeof databaseId !== 'string' || !/^[0-9a-f]{32}$/.test(databaseId)) fail('database id missing');
    if (!isRecord(durable) || typeof durable.lsn !== 'string' || !decimalU64Pattern.test(durable.lsn))
      fail('durable LSN missing');
    if (durable.log !== null && typeof durable.log !== 'string') fail('durable log is not a name');
    manifest.databaseId = databaseId;
    manifest.durable = { lsn: BigInt(durable.lsn), log: durable.log };
  }
  if (version >= 3 && !isPartitionHash(parsed.hash)) fail(`partition hash ${String(parsed.hash)}`);
  manifest.hash = version >= 3 ? (parsed.hash as PartitionHash) : legacyPartitionHash;
  checkManifest(manifest, fail);
  return manifest;
}

function logPositionFromJson(value: unknown, fail: Fail): LogPosition | null {
  if (value === null || value === undefined) return null;
  if (!isRecord(value) || typeof value.file !== 'string' || !Number.isSafeInteger(value.offset))
    fail("a checkpoint's log position is malformed");
  return { file: value.file, offset: value.offset as number };
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
  // A partition over a page file: its pages are the checkpoint, at the page set's redo LSN.
  if (file === pageFileName) return;
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
