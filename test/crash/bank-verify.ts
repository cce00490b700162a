/**
 * The parent's side of a bank kill: reopen the directory, check the bank (exact total, every balance
 * explained by the transfer records present), check the child's reports against it (every
 * acknowledged transfer's record is there with what its promise resolved; a transfer in flight is all
 * there or all absent; a fail-point kill after the decision kept its transfer, one before the decision
 * lost it; records of earlier runs are exactly as the last check left them), then run transfers on the
 * recovered database, touching the accounts of the transfers in flight (an intent left behind would
 * block them), and close.
 */
import { open } from '../../src/index.js';
import { within } from '../support/async.js';
import {
  accountCount,
  type BankState,
  checkBank,
  encodeXfer,
  planTransfer,
  xferKey,
} from '../support/bank.js';
import { runTransfers } from '../support/bank-driver.js';
import { bankPartitions, parseBankLine } from './bank-protocol.js';
import type { BankKillPlan } from './bank-runner.js';

export interface BankRoundResult {
  readonly problems: string[];
  readonly issued: number;
  readonly acked: number;
  readonly rejected: number;
  /** Issued, neither acknowledged nor rejected when the child died; how many of them were applied. */
  readonly inFlight: number;
  readonly inFlightApplied: number;
  /** For a fail-point kill: the transfer the fail-point hit, and whether recovery kept it. */
  readonly failpointTransfer: { n: number; applied: boolean } | null;
  readonly records: number;
  readonly openMs: number;
  readonly parentTransfers: number;
}

export interface BankVerifyOptions {
  readonly dir: string;
  readonly gen: number;
  readonly plan: BankKillPlan;
  readonly workers: number;
  readonly random: () => number;
  /** Transfer records present after the previous check (key -> encoded value); updated on success. */
  readonly known: Map<string, string>;
}

const openTimeoutMs = 60_000;
const parentTransfersCount = 24;

export async function verifyBankAfterKill(
  lines: readonly string[],
  options: BankVerifyOptions,
): Promise<BankRoundResult> {
  const { gen, plan, known } = options;
  const thread = `g${gen}`;
  const problems: string[] = [];
  const issued = new Map<number, { from: number; to: number; amount: number }>();
  const acked = new Map<number, number>();
  const rejected = new Map<number, string>();
  for (const line of lines) {
    const parsed = parseBankLine(line);
    if (parsed === null) problems.push(`a malformed report line: ${JSON.stringify(line)}`);
    else if (parsed.kind === 'I') issued.set(parsed.n, parsed);
    else if (parsed.kind === 'A') acked.set(parsed.n, parsed.moved);
    else if (parsed.kind === 'X') rejected.set(parsed.n, parsed.error);
  }
  for (const [n, error] of rejected) problems.push(`transfer ${n} was rejected: ${error}`);

  const opened = performance.now();
  const db = await within(
    open(options.dir, { partitions: bankPartitions, workers: options.workers }),
    openTimeoutMs,
    'open() of the killed bank',
  );
  const openMs = performance.now() - opened;
  let closed = false;
  try {
    const state = checkBank(db, 'after recovery', true);
    problems.push(...state.problems);
    const snapshot = db.snapshot();
    problems.push(...checkBank(snapshot, 'a snapshot after recovery', true).problems);
    snapshot.release();

    let inFlight = 0;
    let inFlightApplied = 0;
    const inFlightAccounts: number[] = [];
    for (const [n, transfer] of issued) {
      const record = state.records.get(xferKey(thread, n));
      const moved = acked.get(n);
      if (moved !== undefined) {
        const expected = encodeXfer(transfer.from, transfer.to, moved);
        if (record === undefined) problems.push(`acknowledged transfer ${n} (${expected}) is lost`);
        else if (encodeXfer(record.from, record.to, record.moved) !== expected) {
          problems.push(
            `acknowledged transfer ${n} resolved ${expected}, its record holds ${encodeXfer(record.from, record.to, record.moved)}`,
          );
        }
        continue;
      }
      if (rejected.has(n)) {
        if (record !== undefined) problems.push(`rejected transfer ${n} left its record`);
        continue;
      }
      inFlight++;
      inFlightAccounts.push(transfer.from, transfer.to);
      if (record === undefined) continue;
      inFlightApplied++;
      const sameAccounts = record.from === transfer.from && record.to === transfer.to;
      if (!sameAccounts || (record.moved !== 0 && record.moved !== transfer.amount)) {
        problems.push(
          `in-flight transfer ${n} (${transfer.from}>${transfer.to} of ${transfer.amount}) left the record ${encodeXfer(record.from, record.to, record.moved)}`,
        );
      }
    }
    problems.push(...checkRecordOrigins(state, thread, issued, known));

    let failpointTransfer: BankRoundResult['failpointTransfer'] = null;
    if (plan.kind === 'failpoint') {
      const pending = [...issued.keys()].filter((n) => !acked.has(n) && !rejected.has(n));
      const n = pending[0];
      if (pending.length !== 1 || n === undefined) {
        problems.push(
          `the fail-point kill left ${pending.length} transfers in flight (${pending.join(', ')}), expected one`,
        );
      } else {
        const applied = state.records.has(xferKey(thread, n));
        failpointTransfer = { n, applied };
        // crash-after:N stops the N-th cross-partition commit (n = N - 1), or the one after it.
        if (n !== plan.after - 1 && n !== plan.after) {
          problems.push(
            `${plan.failpoint} crash-after:${plan.after} stopped transfer ${n}, after ${acked.size} commits`,
          );
        }
        if (plan.failpoint === 'tx.after-decision' && !applied) {
          problems.push(
            `transfer ${n} was decided (killed after its decision record), but recovery dropped it`,
          );
        }
        if (plan.failpoint === 'tx.after-prepare' && applied) {
          problems.push(
            `transfer ${n} was only prepared (killed before its decision), but recovery applied it`,
          );
        }
      }
    }
    // The counts a failed and a passed round report alike; the record count and the parent's transfers
    // differ, since the transfers after recovery run only when recovery passed.
    const counts = {
      issued: issued.size,
      acked: acked.size,
      rejected: rejected.size,
      inFlight,
      inFlightApplied,
      failpointTransfer,
      openMs,
    };
    if (problems.length > 0) {
      return { problems, ...counts, records: state.records.size, parentTransfers: 0 };
    }

    // The recovered bank takes transfers, half of them on the accounts of the transfers in flight.
    const hot = inFlightAccounts.length > 0 ? inFlightAccounts : [0];
    const run = await within(
      runTransfers({
        db,
        thread: `p${gen}`,
        transfers: parentTransfersCount,
        concurrency: 8,
        random: options.random,
        plan: (random) => {
          const p = planTransfer(random);
          if (random() % 2 === 1) return p;
          const from = hot[random() % hot.length]!;
          return { ...p, from, to: p.to === from ? (from + 1) % accountCount : p.to };
        },
      }),
      30_000,
      'transfers on the recovered bank',
    );
    for (const outcome of run.outcomes) {
      if (outcome.error !== null) problems.push(`a transfer after recovery failed: ${outcome.error}`);
    }
    const after = checkBank(db, 'after the transfers on the recovered bank', true);
    problems.push(...after.problems);
    if (after.records.size !== state.records.size + run.committed) {
      problems.push(
        `${after.records.size} records after ${run.committed} more transfers on ${state.records.size}`,
      );
    }
    closed = true;
    await within(db.close(), 30_000, 'close() of the recovered bank');
    if (problems.length === 0) {
      known.clear();
      for (const [key, record] of after.records)
        known.set(key, encodeXfer(record.from, record.to, record.moved));
    }
    return { problems, ...counts, records: after.records.size, parentTransfers: run.committed };
  } finally {
    if (!closed) await within(db.close(), 30_000, 'close() of the recovered bank');
  }
}

/** Records of this run come from transfers it issued; records of earlier runs are exactly as known. */
function checkRecordOrigins(
  state: BankState,
  thread: string,
  issued: Map<number, unknown>,
  known: Map<string, string>,
): string[] {
  const problems: string[] = [];
  for (const [key, record] of state.records) {
    if (key.startsWith(`xfer:${thread}:`)) {
      if (!issued.has(Number(key.slice(`xfer:${thread}:`.length))))
        problems.push(`record ${key} of a transfer never issued`);
      continue;
    }
    const before = known.get(key);
    const now = encodeXfer(record.from, record.to, record.moved);
    if (before === undefined) problems.push(`record ${key} (${now}) appeared from nowhere`);
    else if (before !== now) problems.push(`record ${key} changed from ${before} to ${now}`);
  }
  for (const key of known.keys())
    if (!state.records.has(key)) problems.push(`record ${key} of an earlier run is gone`);
  return problems.slice(0, 30);
}
