/**
 * One cell of the fault matrix: a fresh copy of a pristine database, one fault done to one of its
 * files, then open(), verify and (after a refusal) repair, judged against what the cell expects.
 */
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { formatTable } from '../../../src/main/cli/cli-format.js';
import type { BundledEngine } from './bundled-engine.js';
import { type FaultName, namesTarget, type Outcome, type PlannedFault, type Target } from './faults.js';
import type { Variant } from './fixture.js';
import {
  describeReadBack,
  isExact,
  type OpenResult,
  openAndRead,
  type RepairResult,
  repairAndReopen,
  type VerifyResult,
  verifyInProcess,
} from './probes.js';

export interface Cell {
  readonly variant: Variant;
  readonly target: Target;
  readonly fault: FaultName;
  readonly plan: PlannedFault;
  /** Also run `lightning-cli verify` in a child process and hold it to the in-process exit code. */
  readonly throughCli: boolean;
}

/** What open() did: (a) everything, (b) ERR_CORRUPTION naming the damage, (c) data lost or wrong. */
export type OpenOutcome = Outcome | 'c' | 'unnamed' | 'other-error' | 'hung';

export interface CellReport {
  readonly cell: Cell;
  readonly outcome: OpenOutcome | 'n/a';
  readonly open: OpenResult | null;
  readonly verify: VerifyResult | null;
  readonly cliExitCode: number | null;
  readonly repair: RepairResult | null;
  /** Why the cell fails; empty when it passes. */
  readonly problems: readonly string[];
}

function classify(target: Target, open: OpenResult): OpenOutcome {
  if (open.opened) return isExact(open.readBack) ? 'a' : 'c';
  if (open.code !== 'ERR_CORRUPTION') return 'other-error';
  return namesTarget(target, open.message) ? 'b' : 'unnamed';
}

/**
 * A cell that has not answered in this long is reported as hung, so that one hang still leaves the
 * table of every other cell; it is minutes, where a cell takes about a second on a loaded machine.
 */
const cellAnswerMsMax = 180_000;

export async function runCell(
  engine: BundledEngine,
  cell: Cell,
  workDirectory: string,
  index: number,
): Promise<CellReport> {
  const { variant, plan } = cell;
  const skipped = { cell, open: null, verify: null, cliExitCode: null, repair: null };
  if (plan.notApplicable !== null) return { ...skipped, outcome: 'n/a', problems: [] };
  const directory = join(workDirectory, `cell-${index}`);
  await cp(variant.directory, directory, { recursive: true });
  await plan.apply(directory);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), cellAnswerMsMax);
  });
  const report = await Promise.race([probeCell(engine, cell, directory), hung]);
  clearTimeout(timer);
  // A hung cell's directory stays: whatever hangs may still use it.
  if (report === 'hung')
    return { ...skipped, outcome: 'hung', problems: [`no answer within ${cellAnswerMsMax / 1000} s`] };
  await rm(directory, { recursive: true, force: true });
  return report;
}

async function probeCell(engine: BundledEngine, cell: Cell, directory: string): Promise<CellReport> {
  const { variant, target } = cell;
  // verify first: it changes nothing, while an open that accepts the damage may rewrite files.
  const verify = await verifyInProcess(directory);
  const cliExitCode = cell.throughCli ? (await engine.cli(['verify', directory, '--quiet'])).code : null;
  const opened = await openAndRead(engine.open, directory, variant.model);
  const outcome = classify(target, opened);
  const repair = opened.opened ? null : await repairAndReopen(engine.open, directory, variant.model);
  const problems = judge(cell, outcome, opened, verify, cliExitCode, repair);
  return { cell, outcome, open: opened, verify, cliExitCode, repair, problems };
}

function judge(
  cell: Cell,
  outcome: OpenOutcome,
  open: OpenResult,
  verify: VerifyResult,
  cliExitCode: number | null,
  repair: RepairResult | null,
): string[] {
  const problems: string[] = [];
  const expected = cell.plan.expected;
  if (outcome === 'c') problems.push(`SILENT LOSS: open() succeeded with ${describeOpen(open)}`);
  else if (!(expected as readonly string[]).includes(outcome))
    problems.push(`open() gave ${outcome} (${describeOpen(open)}), expected ${expected.join(' or ')}`);
  if (outcome === 'a' && verify.exitCode !== 0)
    problems.push(`verify exits ${verify.exitCode} where open() reads everything`);
  // Damage that open() may skip must still be reported: the operator should learn a disk flips bits.
  if (outcome === 'a' && cell.fault === 'flip-covered' && !namesTarget(cell.target, verify.text))
    problems.push(`verify does not report the skipped damage in ${cell.target.path}`);
  if (outcome === 'b' && verify.exitCode === 0) problems.push('verify exits 0 where open() refuses');
  if (outcome === 'b' && verify.exitCode !== 0 && !namesTarget(cell.target, verify.text))
    problems.push(`verify exits ${verify.exitCode} without naming ${cell.target.path}`);
  if (cliExitCode !== null && cliExitCode !== verify.exitCode)
    problems.push(`lightning-cli verify exits ${cliExitCode}, the in-process verify ${verify.exitCode}`);
  if (repair?.after != null) {
    const after = repair.after;
    if (!after.opened) problems.push(`repair exits 0 but open() then refuses: ${after.message}`);
    else if (after.readBack.wrong + after.readBack.extra > 0)
      problems.push(`after repair: ${describeReadBack(after.readBack)} (data it never had)`);
    else if (!isExact(after.readBack) && !repair.reportedLoss)
      problems.push(`after repair: ${describeReadBack(after.readBack)}, but repair reported no loss`);
  }
  return problems;
}

function describeOpen(open: OpenResult): string {
  return open.opened ? describeReadBack(open.readBack) : `${open.code}: ${oneLine(open.message)}`;
}

/** `text` on one line, at most `max` characters, with paths relative to the cell's database. */
const oneLine = (text: string, max = 200) => {
  const line = text
    .replace(/\S*\/cells\/cell-\d+(\/?)/g, (_, slash: string) => (slash === '' ? '<db>' : ''))
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

function repairCell(repair: RepairResult | null): string {
  if (repair === null) return '';
  if (repair.after === null) return `exit ${repair.exitCode}`;
  const after = repair.after;
  return `exit 0, then ${after.opened ? describeReadBack(after.readBack) : `refused (${after.code})`}`;
}

/** The matrix as one table, then a line per cell worth reading: every failure, and what verify warned. */
export function renderMatrix(reports: readonly CellReport[]): string {
  const rows: (string | number)[][] = [
    ['#', 'db', 'target', 'fault', 'expect', 'open', 'verify', 'repair', 'result'],
  ];
  const notes: string[] = [];
  reports.forEach((report, index) => {
    const { cell } = report;
    const verify = report.verify === null ? '' : `exit ${report.verify.exitCode}`;
    const cli = report.cliExitCode === null ? '' : ` (cli ${report.cliExitCode})`;
    const result = report.outcome === 'n/a' ? 'n/a' : report.problems.length === 0 ? 'pass' : 'FAIL';
    rows.push([
      index,
      cell.variant.name,
      cell.target.path,
      cell.fault,
      report.outcome === 'n/a' ? `n/a: ${cell.plan.notApplicable}` : cell.plan.expected.join('|'),
      report.outcome === 'n/a' ? '' : report.outcome,
      verify + cli,
      repairCell(report.repair),
      result,
    ]);
    for (const problem of report.problems) notes.push(`#${index} ${result}: ${problem}`);
    if (report.open !== null && !report.open.opened && report.problems.length > 0)
      notes.push(`#${index}   open(): ${oneLine(report.open.message)}`);
    if (report.verify !== null && report.verify.exitCode !== 0 && report.problems.length > 0)
      notes.push(`#${index}   verify: ${oneLine(findingsOf(report.verify.text))}`);
    const warned = /CORRUPTION|note:|[Ss]kipped|[Ww]arning/.test(report.verify?.text ?? '');
    if (report.outcome === 'a' && (cell.fault === 'flip-covered' || warned))
      notes.push(`#${index}   verify says: ${oneLine(findingsOf(report.verify!.text), 300)}`);
    if (report.repair !== null) notes.push(`#${index}   repair: ${oneLine(report.repair.said, 300)}`);
  });
  return [...formatTable(rows), '', ...notes].join('\n');
}

/** The lines of a verify report that say what is wrong, and its verdict, without its tables. */
function findingsOf(text: string): string {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const findings = lines.filter((line) =>
    /CORRUPTION|note:|NOT VERIFIED|lightning-cli:|[Ss]kipped|[Ww]arning/.test(line),
  );
  const verdict = lines.at(-1) ?? '';
  return [...findings.filter((line) => line !== verdict), verdict].join(' | ');
}
