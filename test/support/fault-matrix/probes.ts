/**
 * What the fault matrix asks of a damaged database: open() and a read of every key against the
 * model, `verify` in this process (the CLI's own inspection, exit code and report), and `repair --yes`.
 */
import { isLightningError } from '../../../src/index.js';
import {
  allFindings,
  DatabaseMissingError,
  exitCodeFor,
  exitCorruption,
  exitDatabaseMissing,
  exitFailure,
  inspectDatabase,
  locateDatabase,
} from '../../../src/main/cli/database-inspection.js';
import { runRepair } from '../../../src/main/cli/repair-command.js';
import { renderVerifyText } from '../../../src/main/cli/verify-command.js';
import type { Model, Open } from './fixture.js';

/** How the database read back against the model. */
export interface ReadBack {
  /** Keys absent that the model holds (a key that was never written reads as absent too). */
  readonly missing: number;
  /** Keys holding an earlier value of theirs, or present though deleted: an older state. */
  readonly stale: number;
  /** Keys holding a value they never had: invented data. */
  readonly wrong: number;
  /** Keys the model never had. */
  readonly extra: number;
}

export type OpenResult =
  | { readonly opened: true; readonly readBack: ReadBack }
  | { readonly opened: false; readonly code: string; readonly message: string };

export const isExact = (r: ReadBack) => r.missing + r.stale + r.wrong + r.extra === 0;

export function describeReadBack(r: ReadBack): string {
  if (isExact(r)) return 'all keys';
  return `missing ${r.missing}, stale ${r.stale}, wrong ${r.wrong}, extra ${r.extra}`;
}

/**
 * Opens the database at `directory` and reads every key the model ever had. One owner worker, where
 * two built it: the worker count may change between opens (recovery then reads both owners' logs),
 * and a second thread per open costs the matrix half as much time again.
 */
export async function openAndRead(open: Open, directory: string, model: Model): Promise<OpenResult> {
  let db: Awaited<ReturnType<Open>>;
  try {
    db = await open(directory, { workers: 1, durability: 'sync' });
  } catch (error) {
    // The bundled engine has its own LightningError class: its errors are known by their code.
    const code = (error as { code?: unknown }).code;
    return {
      opened: false,
      code: typeof code === 'string' ? code : 'thrown',
      message: error instanceof Error ? error.message : String(error),
    };
  }
  try {
    return { opened: true, readBack: readBack(db, model) };
  } finally {
    await db.close();
  }
}

function readBack(db: Awaited<ReturnType<Open>>, model: Model): ReadBack {
  let missing = 0;
  let stale = 0;
  let wrong = 0;
  let extra = 0;
  for (const [key, values] of model.history) {
    const actual = db.getString(key);
    if (actual === model.contents.get(key)) continue;
    if (actual === undefined) missing++;
    else if (!values.has(actual)) wrong++;
    else stale++;
  }
  for (const [key] of db.range()) if (!model.history.has(key.toString())) extra++;
  return { missing, stale, wrong, extra };
}

export interface VerifyResult {
  readonly exitCode: number;
  /** What `verify` prints: its report, or the one line of a failure before the report. */
  readonly text: string;
}

const silentProgress = { step: () => undefined, done: () => undefined };

/**
 * `lightning-cli verify <directory>` without its process: the same inspection, exit code and report
 * (runVerify prints to stdout, which cells running side by side cannot share).
 */
export async function verifyInProcess(directory: string): Promise<VerifyResult> {
  try {
    const target = await locateDatabase(directory);
    const inspection = await inspectDatabase(target, silentProgress);
    const exitCode = exitCodeFor(allFindings(inspection));
    return { exitCode, text: renderVerifyText(inspection, exitCode) };
  } catch (error) {
    const exitCode = exitCodeOfFailure(error);
    return { exitCode, text: `lightning-cli: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** A failed command's exit code, as lightning-cli.ts maps a failure to it. */
function exitCodeOfFailure(error: unknown): number {
  if (error instanceof DatabaseMissingError) return exitDatabaseMissing;
  return isLightningError(error, 'ERR_CORRUPTION') ? exitCorruption : exitFailure;
}

export interface RepairResult {
  readonly exitCode: number;
  /** What repair said it dropped (or why it stopped), in one line. */
  readonly said: string;
  /** Whether it named a partition that loses records. */
  readonly reportedLoss: boolean;
  /** Open and read-back after a repair that exited 0. */
  readonly after: OpenResult | null;
}

interface RepairJson {
  totals: { files: number; bytes: number; records: number; partitions: number };
  /** Partitions whose records a cut dropped. */
  lost: { partition: number; fromLsn: number }[];
  /** Partitions whose logs end before the LSN their manifests say was durable: a loss it accepted. */
  lostDurable?: { partition: number; lastLsn: number; promised: number }[];
  notRepaired: { message: string }[];
}

/** Repairs print their report to stdout, which one repair at a time may borrow. */
let repairTurn: Promise<unknown> = Promise.resolve();

/** `lightning-cli repair <directory> --yes --json`, then open() and a read-back if it succeeded. */
export async function repairAndReopen(open: Open, directory: string, model: Model): Promise<RepairResult> {
  const turn = repairTurn.then(() => repairCapturingOutput(directory));
  repairTurn = turn.catch(() => undefined);
  const { exitCode, output } = await turn;
  let said: string;
  let reportedLoss = false;
  try {
    const json = JSON.parse(output) as RepairJson;
    const lostDurable = json.lostDurable ?? [];
    reportedLoss = json.lost.length + lostDurable.length > 0;
    const lost = [
      ...json.lost.map((l) => `p${l.partition} from LSN ${l.fromLsn}`),
      ...lostDurable.map((l) => `p${l.partition} LSNs ${l.lastLsn + 1}..${l.promised} (durable)`),
    ].join(', ');
    said =
      `dropped ${json.totals.records} record(s), ${json.totals.bytes} bytes in ${json.totals.files} file(s)` +
      (lost === '' ? '' : `; lost: ${lost}`) +
      (json.notRepaired.length === 0 ? '' : `; not repaired: ${json.notRepaired[0]!.message}`);
  } catch {
    said = output.trim().split('\n')[0] ?? '';
  }
  const after = exitCode === 0 ? await openAndRead(open, directory, model) : null;
  return { exitCode, said, reportedLoss, after };
}

async function repairCapturingOutput(directory: string): Promise<{ exitCode: number; output: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stdout.write;
  try {
    const exitCode = await runRepair(directory, { yes: true, json: true, quiet: true });
    return { exitCode, output: chunks.join('') };
  } catch (error) {
    const exitCode = exitCodeOfFailure(error);
    return { exitCode, output: `refused: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    process.stdout.write = write;
  }
}
