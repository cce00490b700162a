/**
 * The parent's side of a failover round. A follower opened here calls promote({ wait: true }) in the
 * background as soon as the leader in the child is writing; once the child has reported `killAfter`
 * acknowledged puts it gets SIGKILL. Measured from the kill: until promote() resolved, and until the
 * first put on the new leader resolved (was accepted: published and acknowledged by the stream).
 * Then every key the child reported acknowledged must be on the new leader with its value.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { type Database, isLightningError } from '../../src/index.js';
import { childScriptArgs } from '../lib/child-process.js';
import type { FailoverChildLine } from './lines.js';
import { failoverKeys, failoverLeaseTtlMs, putWorkload, shape } from './workload.js';

export interface FailoverContext {
  script: string;
  repoRoot: string;
  dataRoot: string;
  servers: string[];
  killAfter: number;
  seed: number;
}

export interface FailoverRecord {
  round: number;
  killToPromotedMs: number;
  killToFirstPutMs: number;
  /** Puts on the new leader refused (ERR_NOT_LEADER ...) before the first was accepted. */
  refusedBeforeFirst: number;
  /** Puts the child reported acknowledged, and how many of them the new leader holds with their value. */
  acked: number;
  present: number;
  /** The first few acknowledged key indexes missing (or wrong) on the new leader. */
  missing: number[];
  missingCount: number;
  /** Keys the new leader holds that the child never reported: in flight at the kill, not acknowledged. */
  beyondAcked: number;
  /** How the child ended: SIGKILL expected. */
  childEnd: string;
}

/** A round whose child never reaches `killAfter` (or never starts) is given up after this long. */
const roundTimeoutMs = 180_000;

function childArgs(context: FailoverContext, dir: string, stream: string): string[] {
  return [
    ...childScriptArgs(context.script),
    '--child',
    'failover',
    '--dir',
    dir,
    '--servers',
    context.servers.join(','),
    '--stream',
    stream,
    '--lease-ttl',
    String(failoverLeaseTtlMs),
    '--kill-after',
    String(context.killAfter),
    '--seed',
    String(context.seed),
  ];
}

/** Puts until one is accepted; counts the refusals (a promoted leader should refuse none). */
async function firstAcceptedPut(db: Database): Promise<number> {
  let refused = 0;
  for (;;) {
    try {
      await db.put('failover-first-put', 'accepted');
      return refused;
    } catch (error) {
      if (!isLightningError(error) || refused >= 1_000) throw error;
      refused++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

function checkNewLeader(
  db: Database,
  acked: Set<number>,
  context: FailoverContext,
): Pick<FailoverRecord, 'present' | 'missing' | 'missingCount' | 'beyondAcked'> {
  const { keys, values } = putWorkload(failoverKeys(context.killAfter), context.seed);
  let present = 0;
  let beyondAcked = 0;
  const missing: number[] = [];
  let missingCount = 0;
  for (let i = 0; i < keys.length; i++) {
    const value = db.get(keys[i]!);
    const right = value !== undefined && Buffer.compare(value, values[i]!) === 0;
    if (acked.has(i)) {
      if (right) present++;
      else {
        missingCount++;
        if (missing.length < 10) missing.push(i);
      }
    } else if (value !== undefined) beyondAcked++;
  }
  return { present, missing, missingCount, beyondAcked };
}

export async function runFailoverRound(
  context: FailoverContext,
  round: number,
): Promise<{ record: FailoverRecord | undefined; problem: string | undefined }> {
  const tempDir = mkdtempSync(path.join(context.dataRoot, 'lightning-failover-'));
  const stream = `FAILOVER-r${round}`;
  const { openReplica } = await import('../../src/index.js');
  const follower = await openReplica(path.join(tempDir, 'follower'), {
    ...shape(),
    replication: {
      servers: context.servers,
      stream,
      name: 'failover-follower',
      leaseTtlMs: failoverLeaseTtlMs,
    },
  });
  try {
    const child = spawn(process.execPath, childArgs(context, path.join(tempDir, 'leader'), stream), {
      cwd: context.repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ended = new Promise<string>((resolve) => {
      child.on('close', (code, signal) => resolve(signal ?? `exit ${code}`));
      child.on('error', (error) => resolve(`could not start: ${error.message}`));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), roundTimeoutMs);
    const acked = new Set<number>();
    let killedAt: number | undefined;
    let promoting: Promise<number> | undefined;
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: FailoverChildLine;
      try {
        line = JSON.parse(text) as FailoverChildLine;
      } catch {
        console.log(`    [failover leader] ${text}`);
        return;
      }
      if (line.kind === 'ready') {
        // Waits for the lease the child holds: tries every eighth of its TTL, and at once if released.
        promoting = follower.replication!.promote({ wait: true }).then(() => performance.now());
        // A rejection is read below; this keeps it from being unhandled before then.
        promoting.catch(() => {});
      } else if (line.kind === 'acked') {
        acked.add(line.i);
        if (acked.size >= context.killAfter && killedAt === undefined) {
          killedAt = performance.now();
          child.kill('SIGKILL');
        }
      }
    });
    const childEnd = await ended;
    clearTimeout(timer);
    if (killedAt === undefined || promoting === undefined) {
      return {
        record: undefined,
        problem: `the leader child ended (${childEnd}) after ${acked.size} acknowledged puts, before the kill`,
      };
    }
    const promotedAt = await promoting;
    const refusedBeforeFirst = await firstAcceptedPut(follower);
    const firstPutAt = performance.now();
    const record: FailoverRecord = {
      round,
      killToPromotedMs: promotedAt - killedAt,
      killToFirstPutMs: firstPutAt - killedAt,
      refusedBeforeFirst,
      acked: acked.size,
      ...checkNewLeader(follower, acked, context),
      childEnd,
    };
    const problems: string[] = [];
    if (follower.replication!.role !== 'leader')
      problems.push(`the new leader's role is ${follower.replication!.role}`);
    if (record.missingCount > 0) {
      problems.push(
        `${record.missingCount} of ${record.acked} acknowledged puts missing or wrong on the new leader ` +
          `(key indexes ${record.missing.join(', ')}${record.missingCount > record.missing.length ? ', ...' : ''})`,
      );
    }
    if (childEnd !== 'SIGKILL') problems.push(`the leader child ended by ${childEnd}, not SIGKILL`);
    return { record, problem: problems.length > 0 ? problems.join('; ') : undefined };
  } finally {
    await follower.close();
    rmSync(tempDir, { recursive: true, force: true });
  }
}
