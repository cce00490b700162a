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
  return `from LSN ${checkpoint.startLsn}, ${checkpoint.entries} entries`;
}

function statusCell(partition: PartitionInspection): string {
  if (partition.findings.some((finding) => finding.code === 'ERR_CORRUPTION')) return 'CORRUPT';
  if (partition.findings.length > 0) return 'NEWER FORMAT';
  return partition.wal.tornTail === null ? 'ok' : 'ok (torn tail)';
}

function summaryTable(inspection: DatabaseInspection, totals: Totals): string[] {
  const rows: (string | number)[][] = [
    ['partition', 'segments', 'records', 'bytes', 'LSNs', 'checkpoint', 'status'],
    ...inspection.partitions.map((partition) => [
      partitionName(partition.partition),
      partition.wal.segments.length,
      partition.wal.records,
      partition.wal.bytes,
      lsnRange(partition.wal.firstLsn, partition.wal.lastLsn),
      checkpointCell(partition),
      statusCell(partition),
    ]),
    ['total', totals.segments, totals.records, totals.bytes, '', '', ''],
  ];
  return formatTable(rows);
}

function tornTailNotes(inspection: DatabaseInspection): string[] {
  return inspection.partitions.flatMap(({ partition, wal }) => {
    const torn = wal.tornTail;
    if (torn === null) return [];
    return [
      `note: partition ${partitionName(partition)} ends in a torn tail: ${torn.file} at byte ${torn.offset}, ` +
        `${torn.bytesDropped} bytes. A crash during a write leaves this (that write was never acknowledged); ` +
        'the next open cuts it. Not an error.',
    ];
  });
}

function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((finding) => {
    const where = `partition ${partitionName(finding.partition)}`;
    const what = finding.code === 'ERR_CORRUPTION' ? 'CORRUPTION' : 'NEWER FORMAT';
    return `${what} (${where}, ${finding.source}): ${finding.message}`;
  });
}

function verdictLine(inspection: DatabaseInspection, exitCode: number): string {
  const findings = allFindings(inspection);
  const partitions = new Set(findings.map((finding) => finding.partition)).size;
  if (exitCode === exitCorruption) {
    return (
      `CORRUPTION FOUND: ${findings.length} problem(s) in ${partitions} partition(s). ` +
      `"lightning-cli repair ${inspection.target.path}" shows what a repair would drop.`
    );
  }
  if (exitCode !== exitOk)
    return 'NOT VERIFIED: files of a newer format than this build reads; use a newer lightning-cli.';
  return `OK: ${inspection.partitions.length} partition(s) verified, no corruption.`;
}

export function renderVerifyText(inspection: DatabaseInspection, exitCode: number): string {
  const { path, metadata } = inspection.target;
  const lines = [
    `database ${path}: ${metadata.partitions} partitions, created ${metadata.createdAt}`,
    '',
    ...summaryTable(inspection, totalsOf(inspection)),
  ];
  const notes = [...findingLines(allFindings(inspection)), ...tornTailNotes(inspection)];
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
    partitions: inspection.partitions.map(({ partition, wal, checkpoint }) => ({
      partition,
      segments: wal.segments,
      records: wal.records,
      bytes: wal.bytes,
      firstLsn: wal.firstLsn,
      lastLsn: wal.lastLsn,
      tornTail: wal.tornTail,
      cut: wal.cut,
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
Reads every write-ahead log segment (headers, record checksums, LSN continuity) and, for each
partition, its MANIFEST.json and the whole checkpoint it names, and changes nothing. Prints segments, records and bytes per
partition and in total, then each problem with its file and byte offset.

A torn tail (the newest segment ends in a partial record) is what a crash during a write leaves: that
write was never acknowledged, and the next open cuts it. verify reports it as a note and still exits 0.

Exit codes:
  0  no corruption (torn tails are noted, not counted)
  1  another failure: an I/O error, or files of a newer format than this build reads
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
