import type { Command } from 'commander';
import { formatTable, jsonText, lsnRange } from './cli-format.js';
import {
  allFindings,
  type DatabaseInspection,
  exitCodeFor,
  exitCorruption,
  exitOk,
  type Finding,
  inspectDatabase,
  locateDatabase,
  type PartitionInspection,
  partitionName,
  type Totals,
  totalsOf,
} from './database-inspection.js';
import { withProgress } from './progress.js';

/**
 * `lightning-cli verify <directory>`: reads every file of a database and reports what it found,
 * changing nothing. The inspection here is also the first half of `repair`, which acts on it.
 */

function checkpointCell(partition: PartitionInspection): string {
  const { checkpoint } = partition;
  if (checkpoint.manifest === 'damaged') return 'MANIFEST DAMAGED';
  if (checkpoint.file === null) return 'none';
  if (!checkpoint.verified) return 'DAMAGED';
  // A page file's entries are counted only by walking its tree: its size says more.
  if (checkpoint.entries === null)
    return `from LSN ${checkpoint.startLsn}, page file of ${checkpoint.bytes} bytes`;
  return `from LSN ${checkpoint.startLsn}, ${checkpoint.entries} entries`;
}

function statusCell(inspection: DatabaseInspection, partition: PartitionInspection): string {
  const findings = [
    ...partition.findings,
    ...inspection.walFindings.filter((finding) => finding.partition === partition.partition),
  ];
  if (findings.some((finding) => finding.code === 'ERR_CORRUPTION')) return 'CORRUPT';
  if (findings.length > 0) return 'OTHER FORMAT';
  return 'ok';
}

function partitionTable(inspection: DatabaseInspection): string[] {
  const rows: (string | number)[][] = [
    ['partition', 'records', 'log bytes', 'LSNs', 'checkpoint', 'status'],
    ...inspection.partitions.map((partition) => [
      partitionName(partition.partition),
      partition.wal?.records ?? 0,
      partition.wal?.bytes ?? 0,
      lsnRange(partition.wal?.firstLsn ?? null, partition.wal?.lastLsn ?? null),
      checkpointCell(partition),
      statusCell(inspection, partition),
    ]),
  ];
  return formatTable(rows);
}

function logTable(inspection: DatabaseInspection, totals: Totals): string[] {
  const rows: (string | number)[][] = [
    ['log (run/worker)', 'segments', 'records', 'bytes', 'status'],
    ...inspection.wal.logs.map((log) => [
      `${log.log.epoch}/${log.log.worker}`,
      log.segments.length,
      log.records,
      log.bytes,
      logStatus(
        inspection,
        log.segments.map((segment) => segment.file),
        log.tornTail !== null,
      ),
    ]),
    ['total', totals.segments, totals.records, totals.bytes, ''],
  ];
  return formatTable(rows);
}

function logStatus(inspection: DatabaseInspection, files: readonly string[], torn: boolean): string {
  const findings = inspection.walFindings.filter((finding) => files.includes(finding.file));
  if (findings.some((finding) => finding.code === 'ERR_CORRUPTION')) return 'CORRUPT';
  if (findings.length > 0) return 'OTHER FORMAT';
  return torn ? 'ok (torn tail)' : 'ok';
}

function tornTailNotes(inspection: DatabaseInspection): string[] {
  return inspection.wal.tornTails.map(
    (torn) =>
      `note: a log ends in a torn tail: ${torn.file} at byte ${torn.offset}, ` +
      `${torn.bytesDropped} bytes. A crash during a write leaves this (that write was never acknowledged); ` +
      'the next open cuts it. Not an error.',
  );
}

function skippedDamageNotes(inspection: DatabaseInspection): string[] {
  return inspection.wal.skippedDamage.map(
    (skipped) =>
      `note: damage below every checkpoint: ${skipped.file} at byte ${skipped.offset}: ${skipped.reason}. ` +
      'No partition needs these records (each checkpoint holds them); opening skips them. Not an error.',
  );
}

function pastRecordedEndNotes(inspection: DatabaseInspection): string[] {
  return inspection.partitions.flatMap(({ partition, checkpoint }) => {
    const past = checkpoint.pastRecordedEnd;
    if (past === null) return [];
    const nonZero =
      past.nonZeroPages === 0 ? 'all zero' : `${past.nonZeroPages} whole page(s) of them not zero-filled`;
    return [
      `note: partition ${partitionName(partition)}: ${checkpoint.file} holds ${past.bytes} bytes (${nonZero}) ` +
        `from byte ${past.offset}, past the ${past.pagesAllocated} pages its page set counts. Open never reads ` +
        'them: a crash while the file grew leaves zero pages there, and later page sets write over them. Not an error.',
    ];
  });
}

function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((finding) => {
    const where = finding.partition === null ? 'log' : `partition ${partitionName(finding.partition)}`;
    const what = finding.code === 'ERR_CORRUPTION' ? 'CORRUPTION' : 'OTHER FORMAT';
    return `${what} (${where}, ${finding.source}): ${finding.message}`;
  });
}

function verdictLine(inspection: DatabaseInspection, exitCode: number): string {
  const findings = allFindings(inspection);
  if (exitCode === exitCorruption) {
    return (
      `CORRUPTION FOUND: ${findings.length} problem(s). ` +
      `"lightning-cli repair ${inspection.target.path}" shows what a repair would drop.`
    );
  }
  if (exitCode !== exitOk)
    return 'NOT VERIFIED: files of a format this build does not read; the findings say what to do.';
  return `OK: ${inspection.wal.logs.length} log(s) and ${inspection.partitions.length} partition(s) verified, no corruption.`;
}

export function renderVerifyText(inspection: DatabaseInspection, exitCode: number): string {
  const { path, metadata } = inspection.target;
  const lines = [
    `database ${path}: ${metadata.partitions} partitions, created ${metadata.createdAt}`,
    '',
    ...logTable(inspection, totalsOf(inspection)),
    '',
    ...partitionTable(inspection),
  ];
  const notes = [
    ...findingLines(allFindings(inspection)),
    ...tornTailNotes(inspection),
    ...skippedDamageNotes(inspection),
    ...pastRecordedEndNotes(inspection),
  ];
  if (notes.length > 0) lines.push('', ...notes);
  lines.push('', verdictLine(inspection, exitCode));
  return `${lines.join('\n')}\n`;
}

/** The JSON shape of `verify --json`; LSNs of checkpoints are u64, so they are decimal strings. */
export function verifyJson(inspection: DatabaseInspection, exitCode: number) {
  const { path, metadata } = inspection.target;
  return {
    command: 'verify',
    database: path,
    createdAt: metadata.createdAt,
    ok: exitCode === exitOk,
    exitCode,
    totals: totalsOf(inspection),
    findings: allFindings(inspection),
    skippedDamage: inspection.wal.skippedDamage,
    logs: inspection.wal.logs,
    partitions: inspection.partitions.map(({ partition, wal, checkpoint }) => ({
      partition,
      records: wal?.records ?? 0,
      bytes: wal?.bytes ?? 0,
      firstLsn: wal?.firstLsn ?? null,
      lastLsn: wal?.lastLsn ?? null,
      checkpoint: { ...checkpoint, startLsn: checkpoint.startLsn?.toString() ?? null },
    })),
  };
}

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

export async function runVerify(directory: string, flags: OutputFlags): Promise<number> {
  const target = await locateDatabase(directory);
  const inspection = await withProgress(
    'verify',
    target.metadata.partitions,
    flags.quiet === true,
    (progress) => inspectDatabase(target, progress),
  );
  const exitCode = exitCodeFor(allFindings(inspection));
  const output =
    flags.json === true ? jsonText(verifyJson(inspection, exitCode)) : renderVerifyText(inspection, exitCode);
  process.stdout.write(output);
  return exitCode;
}

const verifyHelp = `
Reads every write-ahead log segment in <directory>/wal (one log per owner worker per run: headers,
record checksums, each log's segment sequence) and checks each partition's LSN sequence across the
logs from where its checkpoint's replay starts; reads each partition's MANIFEST.json and the whole
checkpoint it names. Changes nothing. Prints segments, records and bytes per log and in total, and
records, log bytes, LSNs and checkpoint per partition, then each problem with its file and byte offset.

A torn tail (a log's newest segment ends in a partial record) is what a crash during a write leaves:
that write was never acknowledged, and the next open cuts it. verify reports it as a note and still exits 0.
Damage in log records that every partition's checkpoint already holds is noted too, and skipped by
open: no partition needs those records. So are bytes of a page file past the pages its page set
counts (zero pages a crash left while the file grew): open never reads them.

Every file is accounted for: LIGHTNING.json (the database's id, which each partition's MANIFEST.json
repeats), each partition's directory and manifest, the checkpoint each manifest names, and each
partition's log records up to the last LSN its manifest records as durable. A missing or truncated
log is found that way: its records end before that LSN.

Exit codes:
  0  no corruption (torn tails are noted, not counted)
  1  another failure: an I/O error, or files of a format this build does not read
  2  bad arguments
  3  no database at <directory>
  4  corruption found
`;

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('check every file of a database without changing anything')
    .argument('<directory>', 'the database directory')
    .option('--json', 'print the report as JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', verifyHelp)
    .action(async (directory: string, flags: OutputFlags) => {
      process.exitCode = await runVerify(directory, flags);
    });
}
