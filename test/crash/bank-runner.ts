/**
 * Runs bank-child.ts in its own process until it dies by SIGKILL: sent from here at a chosen moment,
 * or sent by the child to itself at a transaction fail-point. Collects every report line. A child that
 * exits any other way, reports a failure, or never reaches its kill point is an error (with its
 * output), never a silent pass.
 */
import { fileURLToPath } from 'node:url';
import type { BankFailpoint } from './bank-protocol.js';
import { runUntilKilled } from './kill-harness.js';

const childPath = fileURLToPath(new URL('./bank-child.ts', import.meta.url));

export interface BankChildOptions {
  readonly dir: string;
  readonly seed: number;
  /** The run's generation: its transfer records are xfer:g<gen>:<n>. */
  readonly gen: number;
  readonly workers: number;
  readonly concurrency: number;
}

export type BankKillPlan =
  | { readonly kind: 'after-ready'; readonly delayMs: number }
  | { readonly kind: 'during-open'; readonly delayMs: number }
  | { readonly kind: 'failpoint'; readonly failpoint: BankFailpoint; readonly after: number };

export interface BankChildOutcome {
  readonly lines: string[];
  readonly ready: boolean;
  readonly killedAtMs: number;
  readonly stderr: string;
}

/** Longest a child may take to reach its kill point: start-up, recovery, and N slow commits. */
const reachKillPointMs = 60_000;

export function describeBankPlan(plan: BankKillPlan): string {
  switch (plan.kind) {
    case 'after-ready':
      return `kill ${plan.delayMs} ms after ready`;
    case 'during-open':
      return `kill ${plan.delayMs} ms after 'opening' (during recovery)`;
    case 'failpoint':
      return `fail-point ${plan.failpoint} crash-after:${plan.after}`;
  }
}

export function runBankChild(options: BankChildOptions, plan: BankKillPlan): Promise<BankChildOutcome> {
  let ready = false;
  return runUntilKilled({
    script: childPath,
    args: [
      options.dir,
      String(options.seed),
      String(options.gen),
      String(options.workers),
      String(options.concurrency),
      ...(plan.kind === 'failpoint' ? [plan.failpoint, String(plan.after)] : []),
    ],
    reachKillPointMs,
    planText: describeBankPlan(plan),
    onLine: (line, control) => {
      const tag = line[0];
      if (tag === 'O' && plan.kind === 'during-open') control.killAfter(plan.delayMs);
      if (tag === 'R') {
        ready = true;
        if (plan.kind === 'after-ready') control.killAfter(plan.delayMs);
      }
    },
    // Every death must be a SIGKILL; under a fail-point the child sends it, so a kill from here (the
    // give-up timer) means the fail-point never fired.
    judgeExit: (code, signal, killedAtMs) => {
      if (signal !== 'SIGKILL') return `the child exited on its own (code ${code}, signal ${signal})`;
      if (plan.kind === 'failpoint' && killedAtMs !== null) return 'the fail-point never killed the child';
      return null;
    },
  }).then((run) => ({
    lines: run.lines,
    ready,
    killedAtMs: run.killedAtMs ?? run.closedAtMs,
    stderr: run.output,
  }));
}
