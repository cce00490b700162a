/**
 * Runs bank transfers from one thread with a fixed number of transactions outstanding: each transfer
 * is planned (accounts, amount) before its transaction starts, so a retried body repeats exactly the
 * same transfer, and each settles as committed (with the amount moved) or rejected (with its error).
 */
import type { open } from '../../src/index.js';
import { planTransfer, type TransferPlan, transferBody, xferKey } from './bank.js';

type Database = Awaited<ReturnType<typeof open>>;

export interface TransferOutcome {
  readonly plan: TransferPlan;
  /** The amount moved, as the transaction's promise resolved it; null while pending or when rejected. */
  moved: number | null;
  /** The error code or message of a rejected transfer. */
  error: string | null;
  /** The attempt number of the body's last run (0: committed on the first try). */
  lastAttempt: number;
}

export interface DriverOptions {
  readonly db: Database;
  /** Names this thread's transfer records: xfer:<thread>:<n>. */
  readonly thread: string;
  readonly transfers: number;
  readonly concurrency: number;
  readonly random: () => number;
  /** Plans each transfer (default: planTransfer, two distinct random accounts). */
  readonly plan?: (random: () => number) => TransferPlan;
  /** Called right before transfer n's transaction is issued. */
  readonly beforeIssue?: (n: number, plan: TransferPlan) => void;
  /** Called in the promise's reaction when transfer n committed, before any later transfer is issued. */
  readonly onCommitted?: (n: number, outcome: TransferOutcome) => void;
  /** Called in the promise's reaction when transfer n was rejected. */
  readonly onRejected?: (n: number, outcome: TransferOutcome) => void;
}

export interface DriverResult {
  readonly outcomes: TransferOutcome[];
  readonly committed: number;
  readonly rejected: number;
  /** Sum over transfers of their last attempt number: the retries this thread's transfers took. */
  readonly retries: number;
  readonly elapsedMs: number;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : (error.stack ?? error.message);
  }
  return String(error);
}

export function runTransfers(options: DriverOptions): Promise<DriverResult> {
  const { db, thread, transfers, concurrency, random } = options;
  const outcomes: TransferOutcome[] = [];
  const started = performance.now();
  let issued = 0;
  let settled = 0;
  let committed = 0;
  let rejected = 0;
  return new Promise<DriverResult>((resolve) => {
    const finish = (): void => {
      let retries = 0;
      for (const outcome of outcomes) retries += outcome.lastAttempt;
      resolve({ outcomes, committed, rejected, retries, elapsedMs: performance.now() - started });
    };
    const issue = (): void => {
      const n = issued++;
      const plan = (options.plan ?? planTransfer)(random);
      const outcome: TransferOutcome = { plan, moved: null, error: null, lastAttempt: -1 };
      outcomes.push(outcome);
      options.beforeIssue?.(n, plan);
      db.transaction((tx) => {
        // Bookkeeping for the test only: which attempt ran last. The transfer itself has no effect
        // outside tx.
        outcome.lastAttempt = tx.attempt;
        return transferBody(tx, plan, xferKey(thread, n));
      }).then(
        (moved) => {
          outcome.moved = moved;
          committed++;
          options.onCommitted?.(n, outcome);
          settle();
        },
        (error: unknown) => {
          outcome.error = describeError(error);
          rejected++;
          options.onRejected?.(n, outcome);
          settle();
        },
      );
    };
    const settle = (): void => {
      settled++;
      if (issued < transfers) issue();
      else if (settled === transfers) finish();
    };
    if (transfers === 0) finish();
    for (let i = 0; i < Math.min(concurrency, transfers); i++) issue();
  });
}
