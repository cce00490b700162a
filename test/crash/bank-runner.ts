/**
 * Runs bank-child.ts in its own process until it dies by SIGKILL: sent from here at a chosen moment,
 * or sent by the child to itself at a transaction fail-point. Collects every report line. A child that
 * exits any other way, reports a failure, or never reaches its kill point is an error (with its
 * output), never a silent pass.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { BankFailpoint } from './bank-protocol.js';

const childPath = fileURLToPath(new URL('./bank-child.ts', import.meta.url));
/** The package root: `--import tsx` resolves tsx from the working directory. */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

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
  const args = [
    '--import',
    'tsx',
    childPath,
    options.dir,
    String(options.seed),
    String(options.gen),
    String(options.workers),
    String(options.concurrency),
    ...(plan.kind === 'failpoint' ? [plan.failpoint, String(plan.after)] : []),
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const reports = child.stdio[3] as Readable;
  const lines: string[] = [];
  let partial = '';
  let output = '';
  let ready = false;
  let killedAtMs: number | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  let failure: string | null = null;

  const kill = (): void => {
    if (killedAtMs !== null) return;
    killedAtMs = performance.now() - started;
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  };
  const killAfter = (delayMs: number): void => {
    if (killTimer === null && killedAtMs === null) killTimer = setTimeout(kill, delayMs);
  };
  const giveUp = setTimeout(() => {
    failure ??= `the child did not reach its kill point (${describeBankPlan(plan)}) within ${reachKillPointMs} ms`;
    kill();
  }, reachKillPointMs);

  const onLine = (line: string): void => {
    lines.push(line);
    const tag = line[0];
    if (tag === 'F') failure ??= `the child failed: ${line.slice(2)}`;
    if (tag === 'O' && plan.kind === 'during-open') killAfter(plan.delayMs);
    if (tag === 'R') {
      ready = true;
      if (plan.kind === 'after-ready') killAfter(plan.delayMs);
    }
  };
  reports.setEncoding('utf8');
  reports.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (line.length > 0) onLine(line);
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      output = `${output}${chunk}`.slice(-8192);
    });
  }

  return new Promise<BankChildOutcome>((resolve, reject) => {
    child.on('error', (error) => {
      failure ??= `could not run the child: ${String(error)}`;
    });
    // 'close' comes after the process exited and every pipe delivered its last bytes. A partial last
    // line is a report the kill cut in half: it announced nothing the parent relies on.
    child.on('close', (code, signal) => {
      clearTimeout(giveUp);
      if (killTimer !== null) clearTimeout(killTimer);
      if (failure === null && signal !== 'SIGKILL') {
        failure = `the child exited on its own (code ${code}, signal ${signal})`;
      }
      if (failure === null && plan.kind === 'failpoint' && killedAtMs !== null) {
        failure = 'the fail-point never killed the child';
      }
      if (failure !== null) {
        reject(new Error(`${failure}\n--- child output (tail) ---\n${output}`));
        return;
      }
      resolve({ lines, ready, killedAtMs: killedAtMs ?? performance.now() - started, stderr: output });
    });
  });
}
