/**
 * The parent's side of every kill test: spawns a child script under tsx with a report pipe on file
 * descriptor 3, hands each complete report line to the caller (who decides when to SIGKILL), and
 * settles once the process is gone and every pipe is drained. A child that reports a failure ("F ..."),
 * cannot start, or never reaches its kill point is an error carrying the tail of its output, so a
 * broken run never passes silently. What counts as the right way to die is the caller's to judge.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The package root: `--import tsx` resolves tsx from the working directory. */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The last bytes of the child's stdout and stderr kept for an error message. */
const outputTailBytes = 8192;

/** What a report line may do to its child. */
export interface KillControl {
  /** SIGKILLs the child `delayMs` from now; later calls, or calls after the kill, do nothing. */
  killAfter(delayMs: number): void;
  /** Milliseconds since the spawn. */
  elapsedMs(): number;
}

export interface KillHarnessOptions {
  /** The child script, run as `node --import tsx <script> ...args`. */
  readonly script: string;
  readonly args: readonly string[];
  /** The child's environment, if not this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Longest the child may take to reach its kill point before it is killed and the run fails. */
  readonly reachKillPointMs: number;
  /** The kill point, for the message when it is not reached. */
  readonly planText: string;
  /** Called for every complete report line, after an "F" line has been recorded as the failure. */
  readonly onLine: (line: string, control: KillControl) => void;
  /**
   * Judges how the process ended, given the milliseconds from spawn to the parent's kill (null if the
   * parent never sent one): a failure message, or null when it died as planned.
   */
  readonly judgeExit: (
    code: number | null,
    signal: NodeJS.Signals | null,
    killedAtMs: number | null,
  ) => string | null;
}

export interface KilledChild {
  /** Every complete report line, in order; a last line the kill cut in half is dropped. */
  readonly lines: string[];
  /** Milliseconds from spawn to the parent's SIGKILL, null if the child killed itself. */
  readonly killedAtMs: number | null;
  /** Milliseconds from spawn to the end of the process and its pipes. */
  readonly closedAtMs: number;
  /** The tail of the child's stdout and stderr, interleaved as they arrived. */
  readonly output: string;
}

export function runUntilKilled(options: KillHarnessOptions): Promise<KilledChild> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', options.script, ...options.args], {
    cwd: packageRoot,
    ...(options.env === undefined ? {} : { env: options.env }),
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const reports = child.stdio[3] as Readable;
  const lines: string[] = [];
  let partial = '';
  let output = '';
  let killedAtMs: number | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  let failure: string | null = null;

  const kill = (): void => {
    if (killedAtMs !== null) return;
    killedAtMs = performance.now() - started;
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  };
  const control: KillControl = {
    killAfter: (delayMs) => {
      if (killTimer === null && killedAtMs === null) killTimer = setTimeout(kill, delayMs);
    },
    elapsedMs: () => performance.now() - started,
  };
  const giveUp = setTimeout(() => {
    failure ??= `the child did not reach its kill point (${options.planText}) within ${options.reachKillPointMs} ms`;
    kill();
  }, options.reachKillPointMs);

  reports.setEncoding('utf8');
  reports.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      if (line.length === 0) continue;
      lines.push(line);
      if (line[0] === 'F') failure ??= `the child failed: ${line.slice(2)}`;
      options.onLine(line, control);
    }
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      output = `${output}${chunk}`.slice(-outputTailBytes);
    });
  }

  return new Promise<KilledChild>((resolve, reject) => {
    child.on('error', (error) => {
      failure ??= `could not run the child: ${String(error)}`;
    });
    // 'close' comes after the process exited and every pipe delivered its last bytes. A partial last
    // line is a report the kill cut in half: ignore it (the parent treats what it describes as never
    // issued, which is safe: the child writes the whole line before the call it announces).
    child.on('close', (code, signal) => {
      clearTimeout(giveUp);
      if (killTimer !== null) clearTimeout(killTimer);
      failure ??= options.judgeExit(code, signal, killedAtMs);
      if (failure !== null) {
        reject(new Error(`${failure}\n--- child output (tail) ---\n${output}`));
        return;
      }
      resolve({ lines, killedAtMs, closedAtMs: performance.now() - started, output });
    });
  });
}
