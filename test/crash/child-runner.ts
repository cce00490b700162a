/**
 * Runs crash-child.ts in its own process and SIGKILLs it at a chosen point, collecting every report
 * line it wrote. A child that exits on its own, reports a failure, or never reaches its kill point is
 * an error (with its stderr), never a silent pass.
 */
import { fileURLToPath } from 'node:url';
import { runUntilKilled } from './kill-harness.js';

const childPath = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

export interface ChildOptions {
  readonly dir: string;
  readonly seed: number;
  readonly mode: 'sync' | 'relaxed' | 'none';
  readonly workers: number;
  readonly gen: number;
  readonly profile: 'mixed' | 'huge';
}

/** When to kill: counted from the child's "ready", from its "opening", or from issuing a large put. */
export type KillPlan =
  | { readonly kind: 'after-ready'; readonly delayMs: number }
  | { readonly kind: 'during-open'; readonly delayMs: number }
  | { readonly kind: 'after-large-put'; readonly minLength: number; readonly delayMs: number };

export interface ChildOutcome {
  readonly lines: string[];
  /** Whether the child reported "ready" (recovery finished) before it was killed. */
  readonly ready: boolean;
  /** Milliseconds from spawn to "ready", and from spawn to the kill. */
  readonly readyMs: number | null;
  readonly killedAtMs: number;
  readonly stderr: string;
}

/** Longest a child may take to reach its kill point: startup plus recovery of a large log. */
const reachKillPointMs = 90_000;

export function describePlan(plan: KillPlan): string {
  switch (plan.kind) {
    case 'after-ready':
      return `kill ${plan.delayMs} ms after ready`;
    case 'during-open':
      return `kill ${plan.delayMs} ms after 'opening' (during recovery)`;
    case 'after-large-put':
      return `kill ${plan.delayMs} ms after issuing a put of >= ${plan.minLength} B`;
  }
}

export function runChildUntilKilled(options: ChildOptions, plan: KillPlan): Promise<ChildOutcome> {
  let readyMs: number | null = null;
  return runUntilKilled({
    script: childPath,
    args: [
      options.dir,
      String(options.seed),
      options.mode,
      String(options.workers),
      String(options.gen),
      options.profile,
    ],
    reachKillPointMs,
    planText: describePlan(plan),
    onLine: (line, control) => {
      const tag = line[0];
      if (tag === 'O' && plan.kind === 'during-open') control.killAfter(plan.delayMs);
      if (tag === 'R') {
        readyMs = control.elapsedMs();
        if (plan.kind === 'after-ready') control.killAfter(plan.delayMs);
      }
      if (tag === 'I' && plan.kind === 'after-large-put') {
        const lengths = line.split(' ')[3]?.split(',') ?? [];
        if (lengths.some((entry) => Number(entry.split('.')[1]) >= plan.minLength)) {
          control.killAfter(plan.delayMs);
        }
      }
    },
    // Every plan here is a kill sent by the parent: a child that ended before it is a failure.
    judgeExit: (code, signal, killedAtMs) =>
      killedAtMs === null || signal !== 'SIGKILL'
        ? `the child exited on its own (code ${code}, signal ${signal}) before the kill`
        : null,
  }).then((run) => ({
    lines: run.lines,
    ready: readyMs !== null,
    readyMs,
    killedAtMs: run.killedAtMs ?? 0,
    stderr: run.output,
  }));
}
