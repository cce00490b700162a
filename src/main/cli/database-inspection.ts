import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { messageWithoutCode } from '../../shared-memory/errors.js';
import { isLightningError, LightningError } from '../../shared-memory/index.js';
import {
  type CheckpointRecord,
  type DurableMark,
  type LogPosition,
  type Manifest,
  manifestFileName,
  readManifest,
  verifyCheckpoint,
} from '../../storage/checkpoint/index.js';
import {
  dataWithoutIdentity,
  readPartitionManifest as readAccountedManifest,
} from '../../storage/database-files.js';
import { type DatabaseMetadata, metadataFileName, readMetadata } from '../../storage/database-metadata.js';
import { partitionDirectory, walDirectory } from '../../storage/layout.js';
import { checkPageFile, type PastRecordedEnd } from '../../storage/page-file/page-file-check.js';
import { pageFileName } from '../../storage/page-file/page-file-format.js';
import {
  LogCoverage,
  lsnFirst,
  refusePerPartitionLayout,
  verifyWal,
  type WalPartitionReport,
  type WalVerifyReport,
} from '../../storage/wal/index.js';
import type { Progress } from './progress.js';

/**
 * What `verify` finds and `repair` acts on: the database located on disk, every owner log, and every
 * partition's records in them, checkpoint and manifest checked, without changing anything.
 */

/** Exit codes of every command. Scripts branch on them, so they never change meaning. */
export const exitOk = 0;
export const exitFailure = 1;
export const exitUsage = 2;
export const exitDatabaseMissing = 3;
export const exitCorruption = 4;
export const exitLocked = 5;
/** `get` of a key that is not there: the command worked, the answer is "none". */
export const exitNotFound = 6;

/**
 * The directory given is not a database. A class of its own because the CLI answers it with its own
 * exit code; the code is ERR_BAD_ARGUMENT because for the library it is a bad path argument.
 */
export class DatabaseMissingError extends LightningError {
  constructor(message: string) {
    super('ERR_BAD_ARGUMENT', message);
    this.name = 'DatabaseMissingError';
  }
}

export interface DatabaseTarget {
  readonly path: string;
  readonly metadata: DatabaseMetadata;
}

/** One piece of damage (or of another format), with the file and, when known, the byte offset. */
export interface Finding {
  /** The partition it concerns, or null for damage in a log that is not about one partition. */
  readonly partition: number | null;
  readonly source: 'wal' | 'checkpoint' | 'manifest';
  readonly code: 'ERR_CORRUPTION' | 'ERR_FORMAT_VERSION';
  readonly file: string;
  readonly offset: number | null;
  /** A full sentence that names the file (and offset), fit to print alone. */
  readonly message: string;
}

export interface CheckpointCheck {
  /** The partition's MANIFEST.json: absent until its first checkpoint. */
  readonly manifest: 'absent' | 'ok' | 'damaged';
  /** The checkpoint the manifest names for this partition, or null if it names none. */
  readonly file: string | null;
  readonly startLsn: bigint | null;
  readonly entries: number | null;
  readonly bytes: number | null;
  /** True once the whole file was read and every check passed. */
  readonly verified: boolean;
  /** A page file's bytes past the pages its page set counts: never read, so noted, not damage. */
  readonly pastRecordedEnd: PastRecordedEnd | null;
}

export interface PartitionInspection {
  readonly partition: number;
  /** Its records across the logs, or null if the logs hold none. */
  readonly wal: WalPartitionReport | null;
  readonly checkpoint: CheckpointCheck;
  /** Findings about its checkpoint and manifest. */
  readonly findings: readonly Finding[];
}

export interface DatabaseInspection {
  readonly target: DatabaseTarget;
  /** Every owner log of the database. */
  readonly wal: WalVerifyReport;
  /** Where each partition's replay starts, as its manifest says (1 without a checkpoint). */
  readonly replayStarts: ReadonlyMap<number, number>;
  /** Findings about the logs. */
  readonly walFindings: readonly Finding[];
  /** Each partition's durable mark, as its manifest records it. */
  readonly durableMarks: ReadonlyMap<number, DurableMark>;
  readonly partitions: readonly PartitionInspection[];
}

/** The name of a partition's directory, which is also how the CLI names the partition. */
export function partitionName(partition: number): string {
  return String(partition).padStart(4, '0');
}

/** Resolves `directory` and reads its metadata; DatabaseMissingError unless it holds a database. */
export async function locateDatabase(directory: string): Promise<DatabaseTarget> {
  // resolve('') is the working directory: an empty argument must not silently mean "here".
  if (directory.trim() === '')
    throw new LightningError('ERR_BAD_ARGUMENT', 'the directory must not be empty');
  const path = resolve(directory);
  const isDirectory = await stat(path).then(
    (stats) => stats.isDirectory(),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
      throw error;
    },
  );
  if (isDirectory === null) throw new DatabaseMissingError(`no database at ${path}: it does not exist`);
  if (!isDirectory) throw new DatabaseMissingError(`no database at ${path}: it is not a directory`);
  const metadata = await readMetadata(path);
  if (metadata === null) {
    // Its identity gone, a database's files must not pass for "no database here".
    const data = await dataWithoutIdentity(path);
    if (data.length > 0) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `${join(path, metadataFileName)} is missing, but ${path} holds a database's data (${data[0]}${data.length > 1 ? `, and ${data.length - 1} more` : ''}); "lightning-cli repair ${path}" can rebuild it from the partitions' manifests`,
      );
    }
    throw new DatabaseMissingError(`no database at ${path}: it has no ${metadataFileName}`);
  }
  return { path, metadata };
}

/**
 * Verifies every partition's checkpoint and manifest (one progress step each), then every log, each
 * partition's records checked from where its checkpoint's replay starts. Damage is collected, never
 * thrown, so one run shows all of it; I/O failures other than damage still throw. Reads each file
 * once; O(database bytes).
 */
export async function inspectDatabase(
  target: DatabaseTarget,
  progress: Progress,
): Promise<DatabaseInspection> {
  const { path } = target;
  const partitions: PartitionInspection[] = [];
  const replayStarts = new Map<number, number>();
  const coverage: (LogPosition | null)[] = [];
  const durableMarks = new Map<number, DurableMark>();
  for (let partition = 0; partition < target.metadata.partitions; partition++) {
    progress.step(`partition ${partitionName(partition)}`);
    const inspected = await inspectPartitionFiles(target, partition);
    partitions.push(inspected.partition);
    if (inspected.replayStart !== null) replayStarts.set(partition, inspected.replayStart);
    coverage.push(inspected.coversLog);
    if (inspected.durable !== null) durableMarks.set(partition, inspected.durable);
  }
  const walFindings: Finding[] = [];
  try {
    await refusePerPartitionLayout(path);
  } catch (error) {
    if (!isLightningError(error, 'ERR_FORMAT_VERSION')) throw error;
    const file = walDirectory(path);
    const message = messageWithoutCode(error);
    walFindings.push({
      partition: null,
      source: 'wal',
      code: 'ERR_FORMAT_VERSION',
      file,
      offset: null,
      message,
    });
  }
  const wal = await verifyWal(walDirectory(path), { replayStarts, coverage: new LogCoverage(coverage) });
  for (const unreached of unreachedMarks(path, wal, replayStarts, durableMarks)) {
    walFindings.push({
      partition: unreached.partition,
      source: 'wal',
      code: 'ERR_CORRUPTION',
      file: unreached.file,
      offset: null,
      message: `partition ${partitionName(unreached.partition)}: its records end at LSN ${unreached.lastLsn}, but LSN ${unreached.promised} was made durable in ${unreached.file}: that log segment (or one before it) is missing, truncated or damaged`,
    });
  }
  for (const problem of wal.problems) {
    walFindings.push({
      partition: problem.partition,
      source: 'wal',
      code: problem.code,
      file: problem.file,
      offset: problem.offset,
      message: `${problem.file} at byte ${problem.offset}: ${problem.message}`,
    });
  }
  const byPartition = new Map(wal.partitions.map((report) => [report.partition, report]));
  return {
    target,
    wal,
    replayStarts,
    walFindings,
    durableMarks,
    partitions: partitions.map((inspection) => ({
      ...inspection,
      wal: byPartition.get(inspection.partition) ?? null,
    })),
  };
}

/** A partition whose logs end before its manifest's durable mark. */
export interface UnreachedMark {
  readonly partition: number;
  /** Its last record in the logs (below its replay start: the checkpoint's last). */
  readonly lastLsn: number;
  /** The LSN the manifest says was durable. */
  readonly promised: number;
  /** The log segment the mark names (or the log directory if it names none). */
  readonly file: string;
}

/**
 * The partitions whose logs end before their manifests' durable marks: records that were on disk
 * are gone (a log segment deleted or cut short). Opening refuses these; a repair accepts the loss.
 */
export function unreachedMarks(
  path: string,
  wal: WalVerifyReport,
  replayStarts: ReadonlyMap<number, number>,
  durableMarks: ReadonlyMap<number, DurableMark>,
): UnreachedMark[] {
  const unreached: UnreachedMark[] = [];
  for (const [partition, mark] of durableMarks) {
    const promised = Number(mark.lsn);
    const replayStart = replayStarts.get(partition) ?? lsnFirst;
    const inLogs = wal.partitions.find((report) => report.partition === partition)?.lastLsn ?? 0;
    if (promised < replayStart || inLogs >= promised) continue;
    const file = mark.log === null ? walDirectory(path) : join(walDirectory(path), mark.log);
    unreached.push({ partition, lastLsn: Math.max(inLogs, replayStart - 1), promised, file });
  }
  return unreached;
}

/** A partition's manifest and checkpoint, and where its replay starts (null if the manifest is damaged). */
async function inspectPartitionFiles(
  target: DatabaseTarget,
  partition: number,
): Promise<{
  partition: PartitionInspection;
  replayStart: number | null;
  coversLog: LogPosition | null;
  durable: DurableMark | null;
}> {
  const { manifest, check, findings } = await readPartitionManifest(target, partition);
  const checkpoint =
    manifest === null ? { check, findings: [] } : await inspectCheckpoint(target.path, partition, manifest);
  const damaged = check.manifest === 'damaged';
  const replayStart = damaged
    ? null
    : checkpoint.check.startLsn === null
      ? lsnFirst
      : Number(checkpoint.check.startLsn);
  return {
    partition: {
      partition,
      wal: null,
      checkpoint: checkpoint.check,
      findings: [...findings, ...checkpoint.findings],
    },
    replayStart,
    coversLog: manifest?.checkpoints[0]?.coversLog ?? null,
    durable: manifest?.durable ?? null,
  };
}

export function allFindings(inspection: DatabaseInspection): Finding[] {
  return [...inspection.walFindings, ...inspection.partitions.flatMap((partition) => partition.findings)];
}

/** Corruption outranks a newer format: it needs an operator whatever build reads the files. */
export function exitCodeFor(findings: readonly Finding[]): number {
  if (findings.some((finding) => finding.code === 'ERR_CORRUPTION')) return exitCorruption;
  return findings.length > 0 ? exitFailure : exitOk;
}

/**
 * Reads the manifest in the partition's directory (each partition has its own, so that owners in
 * different threads never share one file). A damaged one is a finding, not a failure.
 */
async function readPartitionManifest(
  target: DatabaseTarget,
  partition: number,
): Promise<{ manifest: Manifest | null; check: CheckpointCheck; findings: Finding[] }> {
  const directory = partitionDirectory(target.path, partition);
  const file = join(directory, manifestFileName);
  const damaged = (code: Finding['code'], message: string) => ({
    manifest: null,
    check: { ...noCheckpoint, manifest: 'damaged' as const },
    findings: [{ partition, source: 'manifest' as const, code, file, offset: null, message }],
  });
  let manifest: Manifest | null;
  try {
    // A version 1 database (not opened since) has manifests only where it checkpointed.
    manifest =
      target.metadata.databaseId === null
        ? await readManifest(directory)
        : await readAccountedManifest(target.path, target.metadata, partition);
  } catch (error) {
    const code = findingCodeOf(error);
    if (code === null) throw error;
    return damaged(code, messageWithoutCode(error as LightningError));
  }
  if (manifest !== null && manifest.partitions !== target.metadata.partitions) {
    const expected = `${target.metadata.partitions} in ${metadataFileName}`;
    return damaged('ERR_CORRUPTION', `${file}: says ${manifest.partitions} partitions, not ${expected}`);
  }
  return { manifest, check: noCheckpoint, findings: [] };
}

const noCheckpoint: CheckpointCheck = {
  manifest: 'absent',
  file: null,
  startLsn: null,
  entries: null,
  bytes: null,
  verified: false,
  pastRecordedEnd: null,
};

/**
 * Checks the checkpoint the manifest names for `partition`: the whole file (header, every block,
 * footer) and that it is the file the manifest describes. The extension point for any further per-partition file: add its check here.
 */
async function inspectCheckpoint(
  path: string,
  partition: number,
  manifest: Manifest,
): Promise<{ check: CheckpointCheck; findings: Finding[] }> {
  const record = manifest.checkpoints.find((checkpoint) => checkpoint.partition === partition);
  const withManifest = { ...noCheckpoint, manifest: 'ok' as const };
  if (record === undefined) return { check: withManifest, findings: [] };
  if (record.file === pageFileName) return inspectPageFile(path, partition, record);
  // The manifest names its files relative to its own directory, the partition's.
  const file = join(partitionDirectory(path, partition), record.file);
  const finding = (code: Finding['code'], message: string, offset: number | null = null): Finding => ({
    partition,
    source: 'checkpoint',
    code,
    file,
    offset,
    message,
  });
  const named = { ...withManifest, file, startLsn: record.startLsn, entries: record.entries };
  try {
    const info = await verifyCheckpoint(file);
    const findings: Finding[] = [];
    if (
      info.partition !== partition ||
      info.startLsn !== record.startLsn ||
      info.entryCount !== record.entries
    ) {
      const holds = `partition ${info.partition}, start LSN ${info.startLsn}, ${info.entryCount} entries`;
      const says = `${partition}, ${record.startLsn}, ${record.entries}`;
      findings.push(finding('ERR_CORRUPTION', `${file}: holds ${holds}; the manifest says ${says}`));
    }
    // That the logs reach back to the checkpoint's start is checked with the logs (verifyWal's
    // replay starts): a partition's records past it must be gap-free.
    const check = {
      ...named,
      entries: info.entryCount,
      bytes: info.fileBytes,
      verified: findings.length === 0,
    };
    return { check, findings };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return {
        check: named,
        findings: [finding('ERR_CORRUPTION', `${file}: named by the manifest but missing`)],
      };
    }
    const code = findingCodeOf(error);
    if (code === null) throw error;
    return { check: named, findings: [finding(code, messageWithoutCode(error as LightningError))] };
  }
}

/**
 * Checks the page file a partition's manifest names as its checkpoint: every page (see checkPageFile;
 * pages a crash tore and the double-write file holds whole are repaired by the next open, so they are
 * not damage), and that the file holds a page set at the manifest's start LSN or later (a set is
 * written before the manifest names it).
 */
async function inspectPageFile(
  path: string,
  partition: number,
  record: CheckpointRecord,
): Promise<{ check: CheckpointCheck; findings: Finding[] }> {
  const checked = await checkPageFile(partitionDirectory(path, partition), { partition });
  const findings: Finding[] = checked.problems.map((problem) => ({
    partition,
    source: 'checkpoint',
    ...problem,
  }));
  const { state, file } = checked;
  // Only an unsound page 0 (or a missing file) leaves the page set unknown; other findings, a damaged
  // double-write file's among them, do not excuse a page set older than the manifest's.
  if (checked.headerSound && (state === null || state.redoLsn < record.startLsn)) {
    const holds = state === null ? 'no page set' : `a page set at redo LSN ${state.redoLsn}`;
    findings.push({
      partition,
      source: 'checkpoint',
      code: 'ERR_CORRUPTION',
      file,
      offset: 0,
      message: `${file}: holds ${holds}; the manifest names it as the checkpoint at LSN ${record.startLsn}`,
    });
  }
  const check: CheckpointCheck = {
    manifest: 'ok',
    file,
    startLsn: record.startLsn,
    entries: null,
    bytes: checked.bytes,
    verified: findings.length === 0,
    pastRecordedEnd: checked.pastRecordedEnd,
  };
  return { check, findings };
}

/** The finding an error stands for: damage or a newer format, which are found, not failures. */
function findingCodeOf(error: unknown): Finding['code'] | null {
  if (isLightningError(error, 'ERR_CORRUPTION')) return 'ERR_CORRUPTION';
  if (isLightningError(error, 'ERR_FORMAT_VERSION')) return 'ERR_FORMAT_VERSION';
  return null;
}

export interface Totals {
  partitions: number;
  logs: number;
  segments: number;
  records: number;
  bytes: number;
  tornTails: number;
  problems: number;
}

export function totalsOf(inspection: DatabaseInspection): Totals {
  const { wal } = inspection;
  return {
    partitions: inspection.partitions.length,
    logs: wal.logs.length,
    segments: wal.segments,
    records: wal.records,
    bytes: wal.bytes,
    tornTails: wal.tornTails.length,
    problems: allFindings(inspection).length,
  };
}
