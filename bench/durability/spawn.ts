/** Runs one bench:durability child process and collects its single JSON result line. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ChildResult } from './child.js';

export interface ChildOutcome {
  result: ChildResult | undefined;
  problem: string | undefined;
}

/** After its result line a child has this long to exit: close() must let the process end. */
const exitGraceMs = 30_000;

/**
 * Spawns `node <args>` in `cwd`. A child that runs past `timeoutMs` (a write that never settles) or
 * does not exit within 30 s of printing its result is killed, and that is reported as a problem.
 */
export function runChildProcess(
  args: string[],
  cwd: string,
  timeoutMs: number,
  label: string,
): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    let result: ChildResult | undefined;
    let killedBecause: string | undefined;
    const killAfter = (ms: number, reason: string): NodeJS.Timeout =>
      setTimeout(() => {
        killedBecause = reason;
        child.kill('SIGKILL');
      }, ms);
    let timer = killAfter(timeoutMs, `killed after ${Math.round(timeoutMs / 1000)} s without finishing`);
    createInterface({ input: child.stdout }).on('line', (line) => {
      let parsed: ChildResult;
      try {
        parsed = JSON.parse(line) as ChildResult;
      } catch {
        // Not ours (a store printing to stdout): show it rather than lose it.
        console.log(`    [${label}] ${line}`);
        return;
      }
      result = parsed;
      clearTimeout(timer);
      timer = killAfter(exitGraceMs, `printed its result but did not exit within ${exitGraceMs / 1000} s`);
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
