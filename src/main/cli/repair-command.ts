import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import { isLightningError, LightningError } from '../../shared-memory/index.js';
import { resetDurableMark } from '../../storage/checkpoint/index.js';
import { createIdentity, identityFromManifests } from '../../storage/database-files.js';
import { metadataFileName } from '../../storage/database-metadata.js';
import { partitionDirectory, walDirectory } from '../../storage/layout.js';
import { acquireLock } from '../../storage/lock-file.js';
import {
  planWalRepair,
  repairWal,
  type WalDroppedRange,
  type WalRepairPlan,
} from '../../storage/wal/index.js';
import { formatTable, jsonText, lsnRange } from './cli-format.js';
import {
  allFindings,
  type DatabaseInspection,
  type DatabaseTarget,
  exitCodeFor,
  exitUsage,
  type Finding,
  inspectDatabase,
  locateDatabase,
  partitionName,
  type UnreachedMark,
  unreachedMarks,
} from './database-inspection.js';
import { withProgress } from './progress.js';
import type { OutputFlags } from './verify-command.js';

/**
 * `lightning-cli repair <directory> [--yes]`: cuts each damaged write-ahead log at the end of its
 * valid prefix, which is the only repair that never invents data: everything after the first damage
 * goes, even records that verified, because replaying them past a gap would apply later writes
 * without earlier ones. The logs are shared by partitions and a partition's sequence runs on in later
 * logs, so a cut that drops a partition's records also cuts every later log at that partition's
 * first record past them. The operator must see exactly what goes, so the command first prints it
 * and changes nothing unless told --yes.
 */

interface RepairFlags extends OutputFlags {
  yes?: boolean;
}

/**
 * A segment of another format is not damage: cutting it would destroy data a build that reads it
 * could use. Refuses the whole repair before anything changes, so no log is left half repaired.
 */
function refuseOtherFormats(inspection: DatabaseInspection): void {
  const other = allFindings(inspection).find((finding) => finding.code === 'ERR_FORMAT_VERSION');
  if (other !== undefined) {
    throw new LightningError('ERR_FORMAT_VERSION', `${other.message}; nothing was changed`);
  }
}

/** Findings a log cut does not remove: damaged checkpoints and manifests are never rewritten here. */
function unrepairable(inspection: DatabaseInspection): Finding[] {
  return allFindings(inspection).filter((finding) => finding.source !== 'wal');
}

/**
 * What is wrong after the repair: the whole database verified again from its files (the cuts must
 * leave logs that verify); a torn tail left behind means the repair did not finish.
 */
function findingsAfterRepair(after: DatabaseInspection): Finding[] {
  const findings = allFindings(after);
  for (const torn of after.wal.tornTails) {
    const message = `${torn.file}: still needs a cut at byte ${torn.offset} after the repair`;
    findings.push({
      partition: null,
      source: 'wal',
      code: 'ERR_CORRUPTION',
      file: torn.file,
      offset: torn.offset,
      message,
    });
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
      : `${range.records} verified record(s): ${range.partitions
          .map(
            (dropped) =>
              `partition ${partitionName(dropped.partition)} LSNs ${lsnRange(dropped.firstLsn, dropped.lastLsn)}`,
          )
          .join(', ')}`;
  return [`  ${range.file}`, span, `${bytes} bytes`, records];
}

function renderRepairs(plan: WalRepairPlan): string[] {
  const lines = plan.logs.flatMap((log) => [
    `log of run ${log.log.epoch}, worker ${log.log.worker}:`,
    ...formatTable(log.dropped.map(describeRange)),
  ]);
  for (const { partition, fromLsn } of plan.lost)
    lines.push(
      `partition ${partitionName(partition)}: loses LSNs from ${fromLsn} on; its log continues at LSN ${fromLsn}`,
    );
  if (plan.lost.length === 0)
    lines.push('no partition loses a record it needs (only torn or damaged writes go)');
  return lines;
}

function totalsOfRepairs(plan: WalRepairPlan) {
  const ranges = plan.logs.flatMap((log) => log.dropped);
  return {
    logs: plan.logs.length,
    partitions: plan.lost.length,
    files: ranges.length,
    filesDeleted: ranges.filter((range) => range.fileDeleted).length,
    bytes: ranges.reduce((sum, range) => sum + range.toOffset - range.fromOffset, 0),
    records: ranges.reduce((sum, range) => sum + range.records, 0),
  };
}

function totalsLine(plan: WalRepairPlan): string {
  const t = totalsOfRepairs(plan);
  return (
    `total: ${t.bytes} bytes in ${t.files} file(s) of ${t.logs} log(s), ${t.filesDeleted} file(s) deleted, ` +
    `${t.records} record(s) that verified (damaged records have no readable LSN and are not counted), ` +
    `${t.partitions} partition(s) lose records`
  );
}

function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((finding) => `NOT REPAIRED (${finding.source}): ${finding.message}`);
}

interface RepairOutcome {
  readonly applied: boolean;
  readonly plan: WalRepairPlan;
  /** Partitions whose durable records are gone from the logs: the loss a repair accepts. */
  readonly lostDurable: readonly UnreachedMark[];
  readonly remaining: readonly Finding[];
  readonly exitCode: number;
  /** Set when the logs changed between the plan and the repair: something else writes them. */
  readonly changedSincePlan: boolean;
}

function afterword(outcome: RepairOutcome): string {
  if (!outcome.applied) return 'Nothing was changed. Run again with --yes to drop exactly this.';
  if (outcome.plan.logs.length === 0) return 'Repaired. The database opens with what the logs still hold.';
  if (outcome.remaining.length > 0) return 'The logs were cut, but the damage listed below remains.';
  return 'Repaired. The database opens with the records before each cut.';
}

function lostDurableLines(outcome: RepairOutcome): string[] {
  return outcome.lostDurable.map(
    (lost) =>
      `partition ${partitionName(lost.partition)}: LSNs ${lsnRange(lost.lastLsn + 1, lost.promised)} were durable and are gone from the logs (${lost.file}); ` +
      (outcome.applied
        ? 'the loss was accepted: it opens with LSNs up to '
        : 'accepting the loss opens it with LSNs up to ') +
      String(lost.lastLsn),
  );
}

function renderRepairText(target: DatabaseTarget, outcome: RepairOutcome): string {
  const { applied, plan, remaining } = outcome;
  const lines: string[] = [];
  if (outcome.lostDurable.length > 0) {
    lines.push(...lostDurableLines(outcome));
    if (plan.logs.length === 0) lines.push(afterword(outcome));
  }
  if (plan.logs.length === 0) {
    if (outcome.lostDurable.length === 0)
      lines.push(`database ${target.path}: no write-ahead log needs a cut.`);
  } else {
    lines.push(applied ? 'Dropped:' : 'A repair would drop:', ...renderRepairs(plan), totalsLine(plan));
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
    totals: totalsOfRepairs(outcome.plan),
    logs: outcome.plan.logs,
    lost: outcome.plan.lost,
    lostDurable: outcome.lostDurable,
    notRepaired: outcome.remaining,
  };
}

async function decide(
  target: DatabaseTarget,
  inspection: DatabaseInspection,
  flags: RepairFlags,
): Promise<RepairOutcome> {
  refuseOtherFormats(inspection);
  const options = { replayStarts: inspection.replayStarts };
  const plan = await planWalRepair(walDirectory(target.path), options);
  const left = unrepairable(inspection);
  const lostBefore = unreachedOf(target, inspection);
  const unchanged = { plan, changedSincePlan: false, lostDurable: lostBefore };
  if (plan.logs.length === 0 && lostBefore.length === 0)
    return { ...unchanged, applied: false, remaining: left, exitCode: exitCodeFor(left) };
  if (flags.yes !== true) return { ...unchanged, applied: false, remaining: left, exitCode: exitUsage };
  const applied = plan.logs.length === 0 ? plan : await repairWal(walDirectory(target.path), options);
  const verifyAgain = () =>
    withProgress('repair: verify again', target.metadata.partitions, flags.quiet === true, (p) =>
      inspectDatabase(target, p),
    );
  // The cuts may have dropped more durable records: every loss is accepted, and said, at once.
  const cut = await verifyAgain();
  const lostDurable = unreachedOf(target, cut);
  for (const lost of lostDurable) {
    await resetDurableMark(partitionDirectory(target.path, lost.partition), {
      lsn: BigInt(lost.lastLsn),
      log: null,
    });
  }
  const after = lostDurable.length === 0 ? cut : await verifyAgain();
  const remaining = findingsAfterRepair(after);
  const changedSincePlan = !isDeepStrictEqual(plan.logs, applied.logs);
  return {
    applied: true,
    plan: applied,
    lostDurable,
    remaining,
    exitCode: exitCodeFor(remaining),
    changedSincePlan,
  };
}

function unreachedOf(target: DatabaseTarget, inspection: DatabaseInspection): UnreachedMark[] {
  return unreachedMarks(target.path, inspection.wal, inspection.replayStarts, inspection.durableMarks);
}

/**
 * Without LIGHTNING.json, a directory holding a database's data is rebuilt from the partitions'
 * manifests, which repeat its id and partition count (with --yes; else only said).
 */
async function locateOrRebuild(directory: string, flags: RepairFlags): Promise<DatabaseTarget | number> {
  try {
    return await locateDatabase(directory);
  } catch (error) {
    if (!isLightningError(error, 'ERR_CORRUPTION') || !error.message.includes(metadataFileName)) throw error;
    const path = resolve(directory);
    const identity = await identityFromManifests(path);
    const file = join(path, metadataFileName);
    const state = (await stat(file).then(
      () => true,
      () => false,
    ))
      ? 'is damaged'
      : 'is missing';
    const rebuild = `from the partitions' manifests (database ${identity.databaseId}, ${identity.partitions} partitions)`;
    // With --json, stdout carries only the JSON of the log repair that follows.
    const say = (text: string) => (flags.json === true ? process.stderr : process.stdout).write(text);
    if (flags.yes !== true) {
      say(
        `${file} ${state}: a repair would rebuild it ${rebuild}.\nNothing was changed. Run again with --yes.\n`,
      );
      return exitUsage;
    }
    await createIdentity(path, identity.partitions, identity.databaseId, identity.hash);
    say(`Repaired: ${file} ${state}; rebuilt it ${rebuild}.\n`);
    return locateDatabase(path);
  }
}

export async function runRepair(directory: string, flags: RepairFlags): Promise<number> {
  const target = await locateOrRebuild(directory, flags);
  if (typeof target === 'number') return target;
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
segment of that log is deleted. Records after the damage are dropped even if they verified, because
replaying them past a gap would apply later writes without earlier ones; for the same reason a later
log is also cut at the first record of a partition that lost records before it.

Without --yes nothing changes: it prints exactly what it would drop (files, byte ranges, LSN ranges)
and exits 2. With --yes it drops that and prints what it dropped. Byte ranges run from the first
byte dropped to the file's end. A database open in a live process is refused (exit 5): close it first.

A log segment deleted or cut short (a partition's records end before the durable mark its
MANIFEST.json records) is listed with the LSNs that are gone; --yes accepts that loss by moving the
mark back, and the database then opens with what the logs still hold. A missing LIGHTNING.json is
rebuilt from the partitions' manifests, which repeat the database id and partition count.

Checkpoints and each partition's MANIFEST.json are verified but never rewritten from the logs: damage
there, or a missing partition directory, is reported as NOT REPAIRED (restore from a backup). Records below a partition's checkpoint start are not needed, so losing
them cuts nothing further. Files of a format this build does not read (which is not damage) make
the repair refuse and change nothing.

Exit codes:
  0  nothing needed a cut, or the cut was made and the logs now verify
  1  another failure: an I/O error, or files of another format (nothing changed)
  2  bad arguments, or a cut is needed and --yes was not given (nothing changed)
  3  no database at <directory>
  4  damage a cut does not fix remains (a checkpoint, a manifest)
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
