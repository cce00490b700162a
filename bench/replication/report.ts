/** bench:replication's tables, goals and checks, from the records of every round. */
import { formatCount, formatFixed, formatRatio, formatTable, perCpuSecond } from '../lib/format.js';
import { median, spreadPercent } from '../lib/stats.js';
import type { FailoverRecord } from './failover.js';
import type { PutMode } from './lines.js';
import type { PutRecord } from './put-runs.js';
import { concurrencies } from './workload.js';

export const goals = { putsPerSecond64: 20_000, followerLagMsP50: 15 };

const modeLabels: Record<PutMode, string> = {
  replicated: "'replicated' (leader + follower)",
  sync: "'sync' (plain open())",
};

function perSecond(record: PutRecord): number {
  return record.result.puts / record.result.seconds;
}

/** Of a cell's rounds, the one with the median puts/s (the lower middle for an even count). */
export function medianRecord(
  records: PutRecord[],
  mode: PutMode,
  concurrency: number,
): PutRecord | undefined {
  const cell = records
    .filter((record) => record.mode === mode && record.concurrency === concurrency)
    .sort((a, b) => perSecond(a) - perSecond(b));
  return cell[(cell.length - 1) >> 1];
}

function percentileOf(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] ?? Number.NaN
  );
}

/** (max - min) / median of a cell's puts/s over its rounds; '-' for a single round. */
function spreadOf(records: PutRecord[], mode: PutMode, concurrency: number): string {
  const rates = records
    .filter((record) => record.mode === mode && record.concurrency === concurrency)
    .map(perSecond);
  return rates.length < 2 ? '-' : `${spreadPercent(rates).toFixed(0)}%`;
}

export function printPutTable(records: PutRecord[], rounds: number): void {
  console.log(
    `puts: each cell is the round with the median puts/s of ${rounds}; latency is one put's, from its call to its ` +
      'resolution; CPU is over the timed window: the leader process (every thread), the three NATS servers, ' +
      'and the bench process holding the follower',
  );
  const rows: string[][] = [];
  for (const concurrency of concurrencies) {
    for (const mode of ['sync', 'replicated'] as const) {
      const record = medianRecord(records, mode, concurrency);
      if (record === undefined) continue;
      const { result } = record;
      const replicated = mode === 'replicated';
      rows.push([
        modeLabels[mode],
        String(concurrency),
        formatCount(result.puts),
        formatCount(perSecond(record)),
        spreadOf(records, mode, concurrency),
        formatFixed(result.latencyMs.p50, 2),
        formatFixed(result.latencyMs.p99, 2),
        formatCount(perCpuSecond(result.puts, result.cpuSeconds)),
        formatFixed(result.cpuSeconds / result.seconds, 2),
        replicated ? formatFixed(record.natsCpuSeconds / result.seconds, 2) : '-',
        replicated && record.follower ? formatFixed(record.follower.cpuSeconds / result.seconds, 2) : '-',
        replicated
          ? formatCount(
              perCpuSecond(
                result.puts,
                result.cpuSeconds + record.natsCpuSeconds + (record.follower?.cpuSeconds ?? 0),
              ),
            )
          : '-',
        formatFixed(result.ownerOperations / Math.max(1, result.ownerBatches), 1),
        replicated && result.messagesPublished ? formatFixed(result.puts / result.messagesPublished, 1) : '-',
        replicated && result.messagesPublished && result.batchesPublished !== null
          ? formatFixed(result.batchesPublished / result.messagesPublished, 2)
          : '-',
        replicated && result.messagesPublished
          ? formatFixed((result.seconds * 1000) / result.messagesPublished, 2)
          : '-',
      ]);
    }
  }
  console.log(
    formatTable(
      [
        'durability',
        'outstanding',
        'puts',
        'puts/s',
        'spread',
        'p50 ms',
        'p99 ms',
        'puts/CPU-s',
        'leader cores',
        'NATS cores',
        'follower cores',
        'puts/CPU-s all',
        'puts/owner batch',
        'puts/message',
        'batches/message',
        'ms/message',
      ],
      rows,
      'lrrrrrrrrrrrrrrr',
    ),
  );
  console.log(
    '  puts/CPU-s: per CPU-second of the leader process, like for like with the plain database; ' +
      'puts/CPU-s all: per CPU-second of leader, NATS servers and follower together',
  );
  console.log('  spread: (max - min) / median of puts/s over the rounds');
  console.log(
    '  puts/owner batch: puts per owner pass (one log write and fdatasync); batches/message: owner batches ' +
      'per stream message; ms/message: wall time per message (the leader has one publish in flight at a time)',
  );
}

export interface Ratio {
  concurrency: number;
  putsPerSecond: number;
  putsPerCpuSecond: number;
  latencyP50: number;
}

export function ratios(records: PutRecord[]): Ratio[] {
  const out: Ratio[] = [];
  for (const concurrency of concurrencies) {
    const replicated = medianRecord(records, 'replicated', concurrency);
    const sync = medianRecord(records, 'sync', concurrency);
    if (replicated === undefined || sync === undefined) continue;
    out.push({
      concurrency,
      putsPerSecond: perSecond(replicated) / perSecond(sync),
      putsPerCpuSecond:
        perCpuSecond(replicated.result.puts, replicated.result.cpuSeconds) /
        perCpuSecond(sync.result.puts, sync.result.cpuSeconds),
      latencyP50: replicated.result.latencyMs.p50 / sync.result.latencyMs.p50,
    });
  }
  return out;
}

export function printRatios(list: Ratio[]): void {
  console.log("\n'replicated' ÷ 'sync', same run, same partitions, workers, keys and values");
  console.log(
    formatTable(
      ['outstanding', 'puts/s', 'puts/CPU-s (leader)', 'p50 latency'],
      list.map((ratio) => [
        String(ratio.concurrency),
        formatRatio(ratio.putsPerSecond),
        formatRatio(ratio.putsPerCpuSecond),
        formatRatio(ratio.latencyP50),
      ]),
      'rrrr',
    ),
  );
}

export interface LagSummary {
  concurrency: number;
  statsP50: number;
  statsP99: number;
  probes: number;
  probeP50: number;
  probeP99: number;
}

export function lagSummaries(records: PutRecord[]): LagSummary[] {
  const out: LagSummary[] = [];
  for (const concurrency of concurrencies) {
    const record = medianRecord(records, 'replicated', concurrency);
    const follower = record?.follower;
    if (follower === undefined || follower === null) continue;
    out.push({
      concurrency,
      statsP50: follower.statsLagMsP50,
      statsP99: follower.statsLagMsP99,
      probes: follower.probeLagMs.length,
      probeP50: percentileOf(follower.probeLagMs, 0.5),
      probeP99: percentileOf(follower.probeLagMs, 0.99),
    });
  }
  return out;
}

export function printLag(list: LagSummary[]): void {
  console.log('\nfollower lag, ms (the run with the median puts/s)');
  console.log(
    "  stats: the follower's stats().replication lagMsP50/P99 after the run: from the stream storing a " +
      'message to it being visible on the follower, over its latest 1,024 messages',
  );
  console.log(
    "  probe: from a put resolving on the leader to the follower's waitForPosition(leader.position() " +
      "then) resolving, every 16th put, seen across the child's stdout pipe (an upper bound)",
  );
  console.log(
    formatTable(
      ['outstanding', 'stats p50', 'stats p99', 'probes', 'probe p50', 'probe p99'],
      list.map((lag) => [
        String(lag.concurrency),
        formatFixed(lag.statsP50, 1),
        formatFixed(lag.statsP99, 1),
        formatCount(lag.probes),
        formatFixed(lag.probeP50, 1),
        formatFixed(lag.probeP99, 1),
      ]),
      'rrrrrr',
    ),
  );
}

export function printFailover(records: FailoverRecord[], leaseTtlMs: number): void {
  if (records.length === 0) return;
  console.log(
    `\nfailover: leader (leaseTtlMs ${formatCount(leaseTtlMs)}) SIGKILLed in a child while writing; ` +
      'a follower here waits in promote({ wait: true })',
  );
  const rows = records.map((record) => [
    String(record.round),
    formatCount(record.killToPromotedMs),
    formatCount(record.killToFirstPutMs),
    formatCount(record.acked),
    formatCount(record.present),
    formatCount(record.missingCount),
    formatCount(record.beyondAcked),
  ]);
  rows.push([
    'median',
    formatCount(median(records.map((record) => record.killToPromotedMs))),
    formatCount(median(records.map((record) => record.killToFirstPutMs))),
    '',
    '',
    '',
    '',
  ]);
  console.log(
    formatTable(
      [
        'round',
        'kill → promoted ms',
        'kill → first put ms',
        'acked by child',
        'on new leader',
        'missing',
        'unacked also there',
      ],
      rows,
      'lrrrrrr',
    ),
  );
}

export function goalLines(records: PutRecord[], lags: LagSummary[]): string[] {
  const lines: string[] = [];
  const concurrent = medianRecord(records, 'replicated', 64);
  if (concurrent !== undefined) {
    const rate = perSecond(concurrent);
    lines.push(
      `64 outstanding replicated puts/s ≥ ${formatCount(goals.putsPerSecond64)}: ${formatCount(rate)} — ` +
        `${rate >= goals.putsPerSecond64 ? 'met' : 'MISSED'}`,
    );
  }
  const lag = lags.find((summary) => summary.concurrency === 64);
  if (lag !== undefined) {
    const met = (value: number): string => (value <= goals.followerLagMsP50 ? 'met' : 'MISSED');
    lines.push(
      `follower lag p50 ≤ ${goals.followerLagMsP50} ms at 64 outstanding: stats ${formatFixed(lag.statsP50, 1)} ms — ` +
        `${met(lag.statsP50)}; probe ${formatFixed(lag.probeP50, 1)} ms — ${met(lag.probeP50)}`,
    );
  }
  return lines;
}

/** What makes a run untrustworthy: a store that lost or changed data, or a follower that differs. */
export function putProblems(records: PutRecord[], warmup: number): string[] {
  const problems: string[] = [];
  for (const record of records) {
    const where = `${record.mode} ${record.concurrency} outstanding (round ${record.round})`;
    const { result } = record;
    const expected = warmup + result.puts;
    if (result.entries !== expected)
      problems.push(`${where}: the leader holds ${result.entries} entries, expected ${expected}`);
    if (result.spotMismatches > 0)
      problems.push(`${where}: ${result.spotMismatches} sampled keys wrong on the leader`);
    const follower = record.follower;
    if (record.mode === 'replicated') {
      if (follower === null) problems.push(`${where}: no follower figures`);
      else {
        if (follower.entries !== result.entries) {
          problems.push(
            `${where}: the follower holds ${follower.entries} entries, the leader ${result.entries}`,
          );
        }
        if (follower.mismatches > 0)
          problems.push(`${where}: ${follower.mismatches} sampled keys wrong on the follower`);
      }
    }
  }
  return problems;
}
