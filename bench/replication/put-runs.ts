/**
 * The parent's side of one put run. A replicated run gets a fresh stream and a follower opened here,
 * in the bench process, before the leader's child starts: the child's CPU is then the leader's
 * alone, as the 'sync' child's is its database's. While the child writes, this process times the
 * follower reaching each probed position, and samples the NATS servers' CPU and its own over the
 * child's timed window; after it, the follower must hold exactly what the leader acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Database } from '../../src/index.js';
import { spotCheckIndices } from '../durability/workload.js';
import { childScriptArgs, runJsonChild } from '../lib/child-process.js';
import type { ProbeLine, PutChildLine, PutMode, PutResult } from './lines.js';
import { processesCpuSeconds } from './process-cpu.js';
import { type PutCounts, putWorkload, shape, timedPuts, userRows } from './workload.js';

export interface PutRunContext {
  script: string;
  repoRoot: string;
  dataRoot: string;
  servers: string[];
  /** The NATS servers' pids, whose CPU is sampled over the timed window. */
  serverPids: () => number[];
  counts: PutCounts;
  seed: number;
}

export interface FollowerFigures {
  /** The follower's own figures (stats().replication) once it caught up after the run. */
  statsLagMsP50: number;
  statsLagMsP99: number;
  /** Put resolved on the leader -> follower applied the leader's position then, in ms, per probe. */
  probeLagMs: number[];
  /** The bench process (the follower, and this harness) over the timed window. */
  cpuSeconds: number;
  envelopesApplied: number;
  entries: number;
  /** Workload keys read on the follower whose value differs from the one written, or is missing. */
  mismatches: number;
}

export interface PutRecord {
  round: number;
  mode: PutMode;
  concurrency: number;
  result: PutResult;
  /** The three NATS servers over the timed window (replicated runs; ~0 for 'sync', measured anyway). */
  natsCpuSeconds: number;
  follower: FollowerFigures | null;
}

/** Generous, so only a hang trips it: 50 ms per put and two minutes for opening and closing. */
function childTimeoutMs(puts: number): number {
  return 120_000 + puts * 50;
}

function childArgs(context: PutRunContext, mode: PutMode, concurrency: number, dir: string, stream: string) {
  return [
    ...childScriptArgs(context.script),
    '--child',
    'put',
    '--mode',
    mode,
    '--concurrency',
    String(concurrency),
    '--puts',
    String(timedPuts(context.counts, concurrency)),
    '--warmup',
    String(context.counts.warmup),
    '--seed',
    String(context.seed),
    '--dir',
    dir,
    '--servers',
    context.servers.join(','),
    '--stream',
    stream,
  ];
}

interface WindowSample {
  natsCpu: number;
  ownCpu: NodeJS.CpuUsage;
}

function sample(context: PutRunContext): WindowSample {
  return { natsCpu: processesCpuSeconds(context.serverPids()), ownCpu: process.cpuUsage() };
}

/** Resolves with how long after `line.atMs` the follower had applied `line.position`. */
async function followerLag(follower: Database, line: ProbeLine): Promise<number> {
  await follower.replication!.waitForPosition(line.position, 120_000);
  return performance.timeOrigin + performance.now() - line.atMs;
}

/** The follower holds what the leader wrote: its entry count, and the sampled keys' values. */
function checkFollower(follower: Database, context: PutRunContext, total: number): number {
  const { keys, values } = putWorkload(total, context.seed);
  let mismatches = 0;
  for (const index of spotCheckIndices(total)) {
    const value = follower.get(keys[index]!);
    if (value === undefined || Buffer.compare(value, values[index]!) !== 0) mismatches++;
  }
  return mismatches;
}

/**
 * One run in a fresh child with a fresh directory (and, replicated, a fresh stream and follower).
 * Returns the record, or a problem when the child failed.
 */
export async function runPutRun(
  context: PutRunContext,
  mode: PutMode,
  concurrency: number,
  round: number,
): Promise<{ record: PutRecord | undefined; problem: string | undefined }> {
  const tempDir = mkdtempSync(path.join(context.dataRoot, `lightning-replication-${mode}-`));
  const stream = `PUTS-r${round}-c${concurrency}`;
  let follower: Database | undefined;
  try {
    if (mode === 'replicated') {
      const { openReplica } = await import('../../src/index.js');
      follower = await openReplica(path.join(tempDir, 'follower'), {
        ...shape(),
        replication: { servers: context.servers, stream, name: 'bench-follower' },
      });
    }
    const probes: Promise<number>[] = [];
    let start: WindowSample | undefined;
    let end: WindowSample | undefined;
    const outcome = await runJsonChild<PutChildLine, PutResult>({
      args: childArgs(context, mode, concurrency, path.join(tempDir, 'leader'), stream),
      cwd: context.repoRoot,
      timeoutMs: childTimeoutMs(timedPuts(context.counts, concurrency) + context.counts.warmup),
      label: `${mode} ${concurrency}`,
      onLine: (line) => {
        if (line.kind === 'start') start = sample(context);
        else if (line.kind === 'probe' && follower !== undefined) probes.push(followerLag(follower, line));
        else if (line.kind === 'result') {
          end = sample(context);
          return line;
        }
        return undefined;
      },
    });
    const result = outcome.result;
    if (result === undefined || start === undefined || end === undefined) {
      return { record: undefined, problem: outcome.problem ?? 'printed no start line' };
    }
    const record: PutRecord = {
      round,
      mode,
      concurrency,
      result,
      natsCpuSeconds: end.natsCpu - start.natsCpu,
      follower: null,
    };
    if (follower !== undefined) {
      const probeLagMs = await Promise.all(probes);
      await follower.replication!.waitForPosition(result.position ?? 0, 120_000);
      const stats = follower.stats().replication!;
      record.follower = {
        statsLagMsP50: stats.lagMsP50,
        statsLagMsP99: stats.lagMsP99,
        probeLagMs,
        // The window ended at the result line: what the follower did after it is not in the figure.
        cpuSeconds: (end.ownCpu.user + end.ownCpu.system - start.ownCpu.user - start.ownCpu.system) / 1e6,
        envelopesApplied: stats.envelopesApplied,
        entries: userRows(follower),
        mismatches: checkFollower(follower, context, context.counts.warmup + result.puts),
      };
    }
    return { record, problem: outcome.problem };
  } finally {
    await follower?.close();
    rmSync(tempDir, { recursive: true, force: true });
  }
}
