/**
 * Runs crash-child.ts in its own process and SIGKILLs it at a chosen point, collecting every report
 * line it wrote. A child that exits on its own, reports a failure, or never reaches its kill point is
 * an error (with its stderr), never a silent pass.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const childPath = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
/** The package root: `--import tsx` resolves tsx from the working directory. */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

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
  const args = [
    '--import',
    'tsx',
    childPath,
    options.dir,
    String(options.seed),
    options.mode,
    String(options.workers),
    String(options.gen),
    options.profile,
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const reports = child.stdio[3] as Readable;
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let readyMs: number | null = null;
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
    failure ??= `the child did not reach its kill point (${describePlan(plan)}) within ${reachKillPointMs} ms`;
    kill();
  }, reachKillPointMs);

  const onLine = (line: string): void => {
    lines.push(line);
    const tag = line[0];
    if (tag === 'F') failure ??= `the child failed: ${line.slice(2)}`;
    if (tag === 'O' && plan.kind === 'during-open') killAfter(plan.delayMs);
    if (tag === 'R') {
      readyMs = performance.now() - started;
      if (plan.kind === 'after-ready') killAfter(plan.delayMs);
    }
    if (tag === 'I' && plan.kind === 'after-large-put' && killTimer === null) {
      const lengths = line.split(' ')[3]?.split(',') ?? [];
      if (lengths.some((entry) => Number(entry.split('.')[1]) >= plan.minLength)) killAfter(plan.delayMs);
    }
  };

  reports.setEncoding('utf8');
  reports.on('data', (chunk: string) => {
    const text = partial + chunk;
    const parts = text.split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (line.length > 0) onLine(line);
  });
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stderr = keepTail(`${stderr}${chunk}`);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = keepTail(`${stderr}${chunk}`);
  });

  return new Promise<ChildOutcome>((resolve, reject) => {
    child.on('error', (error) => {
      failure ??= `could not run the child: ${String(error)}`;
    });
    // 'close' comes after the process exited and every pipe delivered its last bytes.
    child.on('close', (code, signal) => {
      clearTimeout(giveUp);
      if (killTimer !== null) clearTimeout(killTimer);
      // A partial last line is a report the kill cut in half: ignore it (the parent treats what it
      // describes as never issued, which is safe: the child writes the whole line before the call).
      if (failure === null && (killedAtMs === null || signal !== 'SIGKILL')) {
        failure = `the child exited on its own (code ${code}, signal ${signal}) before the kill`;
      }
      if (failure !== null) {
        reject(new Error(`${failure}\n--- child output (tail) ---\n${stderr}`));
        return;
      }
      resolve({ lines, ready: readyMs !== null, readyMs, killedAtMs: killedAtMs ?? 0, stderr });
    });
  });
}

function keepTail(text: string): string {
  return text.length > 8192 ? text.slice(-8192) : text;
}
