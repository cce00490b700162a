/**
 * Runs one child process of the suite in a fresh data directory under os.tmpdir(), echoing its progress
 * on stderr, and removes the directory afterwards, even when the child crashed or was killed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ChildOutcome, childScriptArgs, runJsonChild } from '../lib/child-process.js';
import { formatCount, formatFixed } from '../lib/format.js';

export interface SpawnTarget {
  /** The entry script (bench/ycsb.ts or dist/bench/ycsb.js) and the repository root to run it in. */
  script: string;
  repoRoot: string;
}

/** A generous limit, so a write that never settles fails the run instead of stalling it. */
export function childTimeoutMs(records: number, operations: number, workloads: number): number {
  const work = records + operations * workloads;
  return Math.max(300, (work / 1_000_000) * 900) * 1000;
}

/** Lines a child prints: progress of one finished stream, or anything else the caller understands. */
interface StreamProgress {
  kind: string;
  outcome?: {
    name: string;
    opsPerSecond: number;
    seconds: number;
    cpuSeconds: number;
    latency: { p99Us: number };
    pool?: { misses: number; readP50: string };
  };
}

export async function spawnChild<R>(
  target: SpawnTarget,
  label: string,
  childArgs: string[],
  timeoutMs: number,
  isResult: (line: StreamProgress) => R | undefined,
): Promise<ChildOutcome<R>> {
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'lightning-ycsb-'));
  const startMs = performance.now();
  try {
    return await runJsonChild<StreamProgress, R>({
      args: [...childScriptArgs(target.script), ...childArgs, '--dir', path.join(tempDir, 'db')],
      cwd: target.repoRoot,
      timeoutMs,
      label,
      onLine: (line) => {
        const outcome = line.outcome;
        if (line.kind === 'stream' && outcome !== undefined) {
          console.error(
            `  ${label.padEnd(22)} ${outcome.name.padEnd(4)} ${formatCount(outcome.opsPerSecond).padStart(11)} ops/s ` +
              `p99 ${formatFixed(outcome.latency.p99Us, 1).padStart(9)} us  ${formatFixed(outcome.seconds, 1).padStart(6)} s ` +
              `cpu ${formatFixed(outcome.cpuSeconds / outcome.seconds, 2)} cores  ` +
              (outcome.pool === undefined
                ? ''
                : `misses ${formatCount(outcome.pool.misses)}, page read p50 ${outcome.pool.readP50}  `) +
              `(${formatFixed((performance.now() - startMs) / 1000, 0)} s into this store)`,
          );
          return undefined;
        }
        return isResult(line);
      },
    });
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
}
