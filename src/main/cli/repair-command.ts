import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import { LightningError } from '../../shared-memory/index.js';
import { walDirectory } from '../../storage/layout.js';
import { acquireLock } from '../../storage/lock-file.js';
import { repairWal, type WalDroppedRange, type WalVerifyReport } from '../../storage/wal/index.js';
import { formatTable, jsonText, lsnRange } from './cli-format.js';
import {
  allFindings,
  type DatabaseInspection,
  type DatabaseTarget,
  exitCodeFor,
  exitUsage,
  type Finding,
  inspectDatabase,
  inspectPartition,
  locateDatabase,
  partitionName,
} from './database-inspection.js';
import { type Progress, withProgress } from './progress.js';
import type { OutputFlags } from './verify-command.js';

/**
 * `lightning-cli repair <directory> [--yes]`: cuts each damaged write-ahead log at the end of its
 * valid prefix, which is the only repair that never invents data: everything after the first damage
 * goes, even records that verified, because replaying them past a gap would apply later writes
 * without earlier ones. The operator must see exactly what goes, so the command first prints it and
 * changes nothing unless told --yes.
 */

/** What one partition's cut drops, and where its log continues. */
export interface PartitionRepair {
  readonly partition: number;
  readonly dropped: readonly WalDroppedRange[];
  readonly nextLsn: number | null;
}

interface RepairFlags extends OutputFlags {
  yes?: boolean;
}

/**
 * What `repairWal` will drop for this report, computed the same way it does (the cut segment from
 * the cut offset, then every later segment whole), so the dry run shows exactly what --yes removes.
 */
export function plannedDrops(report: WalVerifyReport): WalDroppedRange[] {
  const cut = report.cut;
  if (cut === null) return [];
  const cutSegment = report.segments[cut.segmentIndex]!;
  const first: WalDroppedRange = {
    file: cut.file,
    fromOffset: cut.offset,
    toOffset: Math.max(0, cutSegment.bytes),
    fileDeleted: cut.offset === 0,
    records: cut.records,
    firstLsn: cut.firstLsn,
    lastLsn: cut.lastLsn,
  };
  const later = report.segments.slice(cut.segmentIndex + 1).map(
    (segment): WalDroppedRange => ({
      file: segment.file,
      fromOffset: 0,
      toOffset: Math.max(0, segment.bytes),
      fileDeleted: true,
      records: segment.records,
      firstLsn: segment.firstLsn,
      lastLsn: segment.lastLsn,
    }),
  );
  return [first, ...later];
}

function planRepair(inspection: DatabaseInspection): PartitionRepair[] {
  return inspection.partitions
    .filter(({ wal }) => wal.cut !== null)
    .map(({ partition, wal }) => ({ partition, dropped: plannedDrops(wal), nextLsn: wal.cut!.nextLsn }));
}

/**
 * A segment of a newer format is not damage: cutting it would destroy data a newer build can read.
 * Refuses the whole repair before anything changes, so no partition is left half repaired.
 */
function refuseNewerFormats(inspection: DatabaseInspection): void {
  const newer = allFindings(inspection).find((finding) => finding.code === 'ERR_FORMAT_VERSION');
  if (newer !== undefined) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `${newer.message}; nothing was changed (use a newer lightning-cli)`,
    );
  }
}

/**
 * A cut below a checkpoint's start LSN would let new writes reuse LSNs that the checkpoint claims to
 * hold, and recovery (checkpoint, then replay from its start LSN) would skip them. Refused before
 * anything changes; the operator must decide about such a partition.
 */
function refuseCutsBelowCheckpoints(inspection: DatabaseInspection): void {
  for (const { partition, wal, checkpoint } of inspection.partitions) {
    const nextLsn = wal.cut?.nextLsn ?? null;
    if (nextLsn === null || checkpoint.startLsn === null || BigInt(nextLsn) >= checkpoint.startLsn) continue;
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${partitionName(partition)}: the cut would restart its log at LSN ${nextLsn}, below the ` +
        `start LSN ${checkpoint.startLsn} of its checkpoint ${checkpoint.file}, which already holds those ` +
        'records; a repair never cuts below a checkpoint, so nothing was changed',
    );
  }
}

/** Findings a log cut does not remove: damaged checkpoints and manifests are never rewritten here. */
function unrepairable(inspection: DatabaseInspection): Finding[] {
  return allFindings(inspection).filter((finding) => finding.source !== 'wal');
}

async function applyRepairs(
  target: DatabaseTarget,
  plan: readonly PartitionRepair[],
  progress: Progress,
): Promise<PartitionRepair[]> {
  const done: PartitionRepair[] = [];
  for (const { partition } of plan) {
    progress.step(`partition ${partitionName(partition)}`);
    const result = await repairWal(walDirectory(target.path, partition), partition);
    done.push({ partition, dropped: result.dropped, nextLsn: result.nextLsn });
  }
  return done;
}

/**
 * What is wrong after the repair: repaired partitions are verified again from their files (the cut
 * must leave a log that verifies), the others keep what the first pass found (no log damage there,
 * or they would have been cut).
 */
async function findingsAfterRepair(
  inspection: DatabaseInspection,
  repaired: readonly PartitionRepair[],
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const wasRepaired = new Set(repaired.map((repair) => repair.partition));
  for (const before of inspection.partitions) {
    if (!wasRepaired.has(before.partition)) {
      findings.push(...before.findings);
      continue;
    }
    const after = await inspectPartition(inspection.target, before.partition);
    findings.push(...after.findings);
    const cut = after.wal.cut;
    if (cut !== null && after.wal.problems.length === 0) {
      // A torn tail is not a problem for verify, but a repair that leaves one did not finish.
      const message = `${cut.file}: still needs a cut at byte ${cut.offset} after the repair`;
      findings.push({
        partition: before.partition,
        source: 'wal',
        code: 'ERR_CORRUPTION',
        file: cut.file,
        offset: cut.offset,
        message,
      });
    }
  }
  return findings;
}

function describeRange(range: WalDroppedRange): (string | number)[] {
  const bytes = range.toOffset - range.fromOffset;
  const span = range.fileDeleted
    ? `whole file deleted, bytes 0 to ${range.toOffset}`
    : `truncated: bytes ${range.fromOffset} to ${range.toOffset}`;
  const records =
    range.records === 0
      ? 'no record that verified'
      : `${range.records} verified record(s), LSNs ${lsnRange(range.firstLsn, range.lastLsn)}`;
  return [`  ${range.file}`, span, `${bytes} bytes`, records];
}

/** The LSNs a partition loses: from where its log continues to the last verified record dropped. */
function lostLsns(repair: PartitionRepair): string {
  const lastLsns = repair.dropped.map((range) => range.lastLsn).filter((lsn): lsn is number => lsn !== null);
  if (repair.nextLsn === null) return 'drops LSNs that no readable segment header names';
  const continues = `the log continues at LSN ${repair.nextLsn}`;
  if (lastLsns.length === 0)
    return `drops only a torn or damaged write, no record that verified; ${continues}`;
  return `drops LSNs ${lsnRange(repair.nextLsn, Math.max(...lastLsns))}; ${continues}`;
}

function renderRepairs(repairs: readonly PartitionRepair[]): string[] {
  return repairs.flatMap((repair) => [
    `partition ${partitionName(repair.partition)}: ${lostLsns(repair)}`,
    ...formatTable(repair.dropped.map(describeRange)),
  ]);
}

function totalsOfRepairs(repairs: readonly PartitionRepair[]) {
  const ranges = repairs.flatMap((repair) => repair.dropped);
  return {
    partitions: repairs.length,
    files: ranges.length,
    filesDeleted: ranges.filter((range) => range.fileDeleted).length,
    bytes: ranges.reduce((sum, range) => sum + range.toOffset - range.fromOffset, 0),
    records: ranges.reduce((sum, range) => sum + range.records, 0),
  };
}

function totalsLine(repairs: readonly PartitionRepair[]): string {
  const t = totalsOfRepairs(repairs);
  return (
    `total: ${t.bytes} bytes in ${t.files} file(s) of ${t.partitions} partition(s), ${t.filesDeleted} file(s) deleted, ` +
    `${t.records} record(s) that verified (damaged records have no readable LSN and are not counted)`
  );
}

function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((finding) => `NOT REPAIRED (${finding.source}): ${finding.message}`);
}

interface RepairOutcome {
  readonly applied: boolean;
  readonly repairs: readonly PartitionRepair[];
  readonly remaining: readonly Finding[];
  readonly exitCode: number;
  /** Set when the logs changed between the plan and the repair: something else writes them. */
  readonly changedSincePlan: boolean;
}

function afterword(outcome: RepairOutcome): string {
  if (!outcome.applied) return 'Nothing was changed. Run again with --yes to drop exactly this.';
  if (outcome.remaining.length > 0) return 'The logs were cut, but the damage listed below remains.';
  return 'Repaired. The database opens with the records before each cut.';
}

function renderRepairText(target: DatabaseTarget, outcome: RepairOutcome): string {
  const { applied, repairs, remaining } = outcome;
  const lines: string[] = [];
  if (repairs.length === 0) lines.push(`database ${target.path}: no write-ahead log needs a cut.`);
  else {
    lines.push(applied ? 'Dropped:' : 'A repair would drop:', ...renderRepairs(repairs), totalsLine(repairs));
    if (outcome.changedSincePlan)
      lines.push('WARNING: the logs changed while repairing: is the database open?');
    lines.push(afterword(outcome));
  }
  if (remaining.length > 0) lines.push('', ...findingLines(remaining));
  return `${lines.join('\n')}\n`;
}

function repairJson(target: DatabaseTarget, outcome: RepairOutcome) {
  return {
    command: 'repair',
    database: target.path,
    applied: outcome.applied,
    exitCode: outcome.exitCode,
    changedSincePlan: outcome.changedSincePlan,
    totals: totalsOfRepairs(outcome.repairs),
    partitions: outcome.repairs,
    notRepaired: outcome.remaining,
  };
}

async function decide(
  target: DatabaseTarget,
  inspection: DatabaseInspection,
  flags: RepairFlags,
): Promise<RepairOutcome> {
  refuseNewerFormats(inspection);
  refuseCutsBelowCheckpoints(inspection);
  const plan = planRepair(inspection);
  const left = unrepairable(inspection);
  const unchanged = { repairs: plan, changedSincePlan: false };
  if (plan.length === 0)
    return { ...unchanged, applied: false, remaining: left, exitCode: exitCodeFor(left) };
  if (flags.yes !== true) return { ...unchanged, applied: false, remaining: left, exitCode: exitUsage };
  const repairs = await withProgress('repair', plan.length, flags.quiet === true, (progress) =>
    applyRepairs(target, plan, progress),
  );
  const remaining = await findingsAfterRepair(inspection, repairs);
  const changedSincePlan = !isDeepStrictEqual(plan, repairs);
  return { applied: true, repairs, remaining, exitCode: exitCodeFor(remaining), changedSincePlan };
}

export async function runRepair(directory: string, flags: RepairFlags): Promise<number> {
  const target = await locateDatabase(directory);
  // Cutting a log under a live owner would lose its next writes: hold the database's lock throughout.
  const releaseLock = await acquireLock(target.path);
  try {
    return await repairLocked(target, flags);
  } finally {
    await releaseLock();
  }
}

async function repairLocked(target: DatabaseTarget, flags: RepairFlags): Promise<number> {
  const inspection = await withProgress(
    'repair: verify',
    target.metadata.partitions,
    flags.quiet === true,
    (p) => inspectDatabase(target, p),
  );
  const outcome = await decide(target, inspection, flags);
  process.stdout.write(
    flags.json === true ? jsonText(repairJson(target, outcome)) : renderRepairText(target, outcome),
  );
  return outcome.exitCode;
}

const repairHelp = `
Verifies the database like "verify", then cuts each write-ahead log that needs it at the end of its
valid prefix: the segment holding the first damage (or torn tail) is truncated there, and every later
segment of that partition is deleted. Records after the damage are dropped even if they verified,
because replaying them past a gap would apply later writes without earlier ones.

Without --yes nothing changes: it prints exactly what it would drop (files, byte ranges, LSN ranges)
and exits 2. With --yes it drops that and prints what it dropped. Byte ranges run from the first
byte dropped to the file's end. A database open in a live process is refused (exit 5): close it first.

Checkpoints and each partition's MANIFEST.json are verified but never changed: damage there is
reported as NOT REPAIRED. A cut that would restart a log below its checkpoint's start LSN, and a
segment of a newer format (which is not damage), make the repair refuse and change nothing.

Exit codes:
  0  nothing needed a cut, or the cut was made and the logs now verify
  1  another failure: an I/O error, or files of a newer format (nothing changed)
  2  bad arguments, or a cut is needed and --yes was not given (nothing changed)
  3  no database at <directory>
  4  damage a cut does not fix remains (a checkpoint, a manifest), or a cut below a checkpoint
     was refused (nothing changed then)
  5  the database is open in a live process (nothing changed)
`;

export function registerRepairCommand(program: Command): void {
  program
    .command('repair')
    .description('cut damaged write-ahead logs at their last valid record (asks for --yes)')
    .argument('<directory>', 'the database directory')
    .option('--yes', 'drop what the repair lists; without it nothing changes')
    .option('--json', 'print what was (or would be) dropped as JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', repairHelp)
    .action(async (directory: string, flags: RepairFlags) => {
      process.exitCode = await runRepair(directory, flags);
    });
}
