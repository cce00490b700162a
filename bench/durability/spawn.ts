/** Runs one bench:durability child process and collects its single JSON result line. */
import { type ChildOutcome, exitGraceMs, runJsonChild } from '../lib/child-process.js';
import type { ChildResult } from './child.js';

/**
 * Spawns `node <args>` in `cwd`. A child that runs past `timeoutMs` (a write that never settles) or
 * does not exit within 30 s of printing its result is killed, and that is reported as a problem.
 */
export function runChildProcess(
  args: string[],
  cwd: string,
  timeoutMs: number,
  label: string,
): Promise<ChildOutcome<ChildResult>> {
  return runJsonChild<ChildResult, ChildResult>({
    args,
    cwd,
    timeoutMs,
    timeoutProblem: `killed after ${Math.round(timeoutMs / 1000)} s without finishing`,
    exitGraceProblem: `printed its result but did not exit within ${exitGraceMs / 1000} s`,
    label,
    onLine: (line) => line,
  });
}
