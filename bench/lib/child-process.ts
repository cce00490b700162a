/**
 * Runs one benchmark child process (`node <args>`) and collects the JSON lines it prints on stdout:
 * progress lines, then one result line. The child's stderr goes straight to ours.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ChildOutcome<R> {
  result: R | undefined;
  problem: string | undefined;
}

/** After its result line a child has this long to exit: close() must let the process end. */
export const exitGraceMs = 30_000;

/**
 * The node arguments that run benchmark `script` as a child with a collectable heap. TypeScript source
 * needs tsx's loader; the compiled file (the real benchmark) runs on plain node.
 */
export function childScriptArgs(script: string): string[] {
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return [...loader, '--expose-gc', script];
}

export interface ChildProcessOptions<L, R> {
  args: string[];
  cwd: string;
  /** A child still running after this long (a write that never settles) is killed. */
  timeoutMs: number;
  /** The problem reported when the child is killed for running past `timeoutMs`; by default how long that was. */
  timeoutProblem?: string;
  /** The problem reported when the child is killed for not exiting within `exitGraceMs` of its result. */
  exitGraceProblem?: string;
  /** Shown before a stdout line that is not JSON (a store printing to stdout). */
  label: string;
  /** Called with every JSON line: returns the result if this line is it, undefined for a progress line. */
  onLine: (line: L) => R | undefined;
}

export function runJsonChild<L, R>(options: ChildProcessOptions<L, R>): Promise<ChildOutcome<R>> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, options.args, {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let result: R | undefined;
    let killedBecause: string | undefined;
    const killAfter = (ms: number, reason: string): NodeJS.Timeout =>
      setTimeout(() => {
        killedBecause = reason;
        child.kill('SIGKILL');
      }, ms);
    let timer = killAfter(
      options.timeoutMs,
      options.timeoutProblem ?? `killed after ${options.timeoutMs / 1000} s without finishing`,
    );
    createInterface({ input: child.stdout }).on('line', (line) => {
      let parsed: L;
      try {
        parsed = JSON.parse(line) as L;
      } catch {
        // Not ours (a store printing to stdout): show it rather than lose it.
        console.log(`    [${options.label}] ${line}`);
        return;
      }
      const lineResult = options.onLine(parsed);
      if (lineResult === undefined) return;
      result = lineResult;
      clearTimeout(timer);
      timer = killAfter(
        exitGraceMs,
        options.exitGraceProblem ??
          `printed its result but did not exit within ${exitGraceMs / 1000} s after close()`,
      );
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ result: undefined, problem: `could not start: ${error.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let problem: string | undefined;
      if (killedBecause !== undefined) problem = killedBecause;
      else if (code !== 0) problem = `exited with ${code ?? signal}`;
      else if (result === undefined) problem = 'exited without printing a result';
      resolve({ result, problem });
    });
  });
}
