/** Turns the children's results into the tables bench:durability prints, and the checks. */
import type { DiskUsage } from '../lib/environment.js';
import { formatCount, formatFixed, formatRatio, formatTable, perCpuSecond } from '../lib/format.js';
import { median, spreadPercent } from '../lib/stats.js';
import type { PutResult, RecoveryLoadResult, RecoveryOpenResult } from './child.js';
import { ackIsSynced, ackShort, type StoreName, storeLabels } from './stores.js';
import { type PutPhase, putPhases, putWindow } from './workload.js';

/** A put child's result with what the parent measured after it exited. */
export interface PutRecord extends PutResult {
  disk: DiskUsage;
}

/** One recovery round: the load child, the open child, and the log on disk between them. */
export interface RecoveryRecord {
  round: number;
  load: RecoveryLoadResult;
  open: RecoveryOpenResult | undefined;
  wal: DiskUsage;
  database: DiskUsage;
}

/** The targets this benchmark exists to judge (see bench/README.md). */
export const syncRatioTarget = 2;
export const recoveryTargetSeconds = 2;
export const recoveryTargetRecords = 1_000_000;

export interface PutSummary {
  store: StoreName;
  phase: PutPhase;
  rounds: number;
  /** Medians over the rounds. */
  perSecond: number;
  /** Median over the rounds of puts per CPU-second of the process (every thread) over the timed phase. */
  perCpuSecond: number;
  coresBusy: number;
  windowMedianMs: number;
  windowP99Ms: number;
  settleSeconds: number | null;
  openSeconds: number;
  closeSeconds: number;
  /** (max − min) / median of the ops/s over the rounds, in percent. */
  spreadPercent: number;
  /** lightning-db: writes per owner batch (one log write, and with 'sync' one fdatasync, per batch). */
  writesPerBatch: number | null;
  diskAllocatedBytes: number;
  first: PutRecord;
}

export interface RecoverySummary {
  rounds: number;
  records: number;
  openSeconds: number;
  spreadPercent: number;
  recordsPerSecond: number;
  coresBusy: number;
  openEmptySeconds: number;
  loadSeconds: number;
  walBytes: number;
  walFiles: number;
  databaseBytes: number;
}

export function summarizePuts(records: PutRecord[], stores: StoreName[]): PutSummary[] {
  return putPhases.flatMap((phase) =>
    stores.flatMap((store) => {
      const mine = records.filter((record) => record.store === store && record.phase === phase);
      const first = mine[0];
      if (first === undefined) return [];
      const rates = mine.map((record) => record.perSecond);
      const settles = mine.flatMap((record) => (record.settleSeconds === null ? [] : [record.settleSeconds]));
      const batched = mine.flatMap((record) =>
        record.batches === null || record.batches.batches === 0
          ? []
          : [record.batches.operations / record.batches.batches],
      );
      return [
        {
          store,
          phase,
          rounds: mine.length,
          perSecond: median(rates),
          perCpuSecond: median(
            mine.map((record) => perCpuSecond(record.perSecond * record.seconds, record.cpuSeconds)),
          ),
          coresBusy: median(mine.map((record) => record.cpuSeconds / record.seconds)),
          windowMedianMs: median(mine.map((record) => record.window.medianMs)),
          windowP99Ms: median(mine.map((record) => record.window.p99Ms)),
          settleSeconds: settles.length === 0 ? null : median(settles),
          openSeconds: median(mine.map((record) => record.openSeconds)),
          closeSeconds: median(mine.map((record) => record.closeSeconds)),
          spreadPercent: spreadPercent(rates),
          writesPerBatch: batched.length === 0 ? null : median(batched),
          diskAllocatedBytes: median(mine.map((record) => record.disk.allocatedBytes)),
          first,
        },
      ];
    }),
  );
}

export function summarizeRecovery(rounds: RecoveryRecord[]): RecoverySummary | undefined {
  const opened = rounds.flatMap((round) => (round.open === undefined ? [] : [round.open]));
  const first = rounds[0];
  if (first === undefined || opened.length === 0) return undefined;
  const openSeconds = median(opened.map((open) => open.seconds));
  return {
    rounds: opened.length,
    records: first.load.records,
    openSeconds,
    spreadPercent: spreadPercent(opened.map((open) => open.seconds)),
    recordsPerSecond: first.load.records / openSeconds,
    coresBusy: median(opened.map((open) => open.cpuSeconds / open.seconds)),
    openEmptySeconds: median(rounds.map((round) => round.load.openEmptySeconds)),
    loadSeconds: median(rounds.map((round) => round.load.loadSeconds)),
    walBytes: median(rounds.map((round) => round.wal.bytes)),
    walFiles: median(rounds.map((round) => round.wal.files)),
    databaseBytes: median(rounds.map((round) => round.database.bytes)),
  };
}

function find(summaries: PutSummary[], store: StoreName, phase: PutPhase): PutSummary | undefined {
  return summaries.find((summary) => summary.store === store && summary.phase === phase);
}

function mebibytes(bytes: number): string {
  return `${formatFixed(bytes / 2 ** 20, 1)} MiB`;
}

function storesIn(summaries: PutSummary[]): StoreName[] {
  return [...new Set(summaries.map((summary) => summary.store))];
}

export function printPutTable(summaries: PutSummary[], rounds: number): void {
  console.log(
    `put throughput: ${rounds === 1 ? 'one round' : `median of ${rounds} rounds`} per store; callers issue ` +
      `${formatCount(putWindow)} puts, await them all, repeat (spread = (max - min) / median)`,
  );
  const cell = (summary: PutSummary | undefined, text: (s: PutSummary) => string): string =>
    summary === undefined ? '-' : text(summary);
  const rows = storesIn(summaries).map((store) => {
    const sequential = find(summaries, store, 'sequential');
    const random = find(summaries, store, 'random');
    const window = (s: PutSummary): string =>
      `${formatFixed(s.windowMedianMs, 1)} / ${formatFixed(s.windowP99Ms, 1)}`;
    return [
      storeLabels[store],
      ackShort[store],
      ackIsSynced[store] ? 'yes' : 'no',
      cell(sequential, (s) => formatCount(s.perSecond)),
      cell(sequential, (s) => formatCount(s.perCpuSecond)),
      cell(sequential, (s) => `${s.spreadPercent.toFixed(0)}%`),
      cell(random, (s) => formatCount(s.perSecond)),
      cell(random, (s) => formatCount(s.perCpuSecond)),
      cell(random, (s) => `${s.spreadPercent.toFixed(0)}%`),
      cell(sequential, window),
      cell(random, window),
    ];
  });
  console.log(
    formatTable(
      [
        'store',
        'a put is acknowledged when',
        'synced ack',
        'seq put ops/s',
        '/CPU-s',
        'spread',
        'random put ops/s',
        '/CPU-s',
        'spread',
        'seq window p50/p99 ms',
        'random window p50/p99 ms',
      ],
      rows,
      'lllrrrrrrrr',
    ),
  );
  console.log('/CPU-s = puts per CPU-second of the process (all threads) over the timed phase');
}

/**
 * The pairs compared: lightning-db 'sync' with every store whose acknowledgement is synced (and with
 * lmdb-js's default, the target's baseline), lightning-db 'none' with the stores that never sync.
 */
const ratioPairs: [StoreName, StoreName][] = [
  ['lightning-sync', 'lmdb-sync'],
  ['lightning-sync', 'lmdb-flushed'],
  ['lightning-sync', 'lmdb'],
  ['lightning-sync', 'level-sync'],
  ['lightning-sync', 'level-batch-sync'],
  ['lightning-none', 'lmdb-nosync'],
  ['lightning-none', 'level'],
  ['lightning-none', 'level-batch'],
];

export function printRatios(summaries: PutSummary[]): void {
  const present = storesIn(summaries);
  const rows = ratioPairs.flatMap(([ours, baseline]) => {
    if (!present.includes(baseline) || !present.includes(ours)) return [];
    const ratio = (phase: PutPhase, pick: (s: PutSummary) => number): string => {
      const mine = find(summaries, ours, phase);
      const theirs = find(summaries, baseline, phase);
      return mine === undefined || theirs === undefined ? '-' : formatRatio(pick(mine) / pick(theirs));
    };
    const rate = (s: PutSummary): number => s.perSecond;
    const perCpu = (s: PutSummary): number => s.perCpuSecond;
    return [
      [
        `${storeLabels[ours]} / ${storeLabels[baseline]}`,
        ratio('sequential', rate),
        ratio('sequential', perCpu),
        ratio('random', rate),
        ratio('random', perCpu),
      ],
    ];
  });
  if (rows.length === 0) return;
  console.log('\nratios (above 1.00x: lightning-db is ahead), in ops/s and in ops per CPU-second');
  console.log(formatTable(['', 'seq put', '/CPU-s', 'random put', '/CPU-s'], rows, 'lrrrr'));
}

export interface TargetLine {
  target: string;
  measured: string;
  met: boolean | null;
}

export function targets(summaries: PutSummary[], recovery: RecoverySummary | undefined): TargetLine[] {
  const lines: TargetLine[] = [];
  for (const phase of putPhases) {
    const mine = find(summaries, 'lightning-sync', phase);
    const lmdb = find(summaries, 'lmdb', phase);
    if (mine === undefined || lmdb === undefined) continue;
    const ratio = mine.perSecond / lmdb.perSecond;
    lines.push({
      target: `${phase} put: lightning-db 'sync' >= ${syncRatioTarget}x lmdb-js default put() (windows of ${formatCount(putWindow)})`,
      measured: formatRatio(ratio),
      met: ratio >= syncRatioTarget,
    });
  }
  if (recovery !== undefined) {
    const atTarget = recovery.records === recoveryTargetRecords;
    const scaled = (recoveryTargetRecords / recovery.records) * recovery.openSeconds;
    lines.push({
      target: `open() replaying ${formatCount(recoveryTargetRecords)} x 100-byte records < ${recoveryTargetSeconds} s`,
      measured: atTarget
        ? `${formatFixed(recovery.openSeconds, 2)} s`
        : `${formatFixed(recovery.openSeconds, 2)} s for ${formatCount(recovery.records)} (x${formatFixed(recoveryTargetRecords / recovery.records, 0)} = ${formatFixed(scaled, 2)} s, linear guess)`,
      met: atTarget ? recovery.openSeconds < recoveryTargetSeconds : null,
    });
  }
  return lines;
}

export function printTargets(lines: TargetLine[]): void {
  if (lines.length === 0) return;
  console.log('\ntargets');
  console.log(
    formatTable(
      ['target', 'measured', ''],
      lines.map((line) => [
        line.target,
        line.measured,
        line.met === null ? 'n/a at this N' : line.met ? 'MET' : 'NOT MET',
      ]),
      'lll',
    ),
  );
}

export function printRecovery(recovery: RecoverySummary | undefined, rounds: number): void {
  if (recovery === undefined) return;
  console.log(
    `\nrecovery: open() of a lightning-db directory holding ${formatCount(recovery.records)} records ` +
      `(written with durability 'none', closed; opened in a fresh process), ${rounds === 1 ? 'one round' : `median of ${recovery.rounds} rounds`}`,
  );
  console.log(
    formatTable(
      [
        'records',
        'WAL on disk',
        'WAL files',
        'WAL bytes/record',
        'open() s',
        'spread',
        'records/s',
        'cores',
        'open() empty dir s',
        'load s',
      ],
      [
        [
          formatCount(recovery.records),
          mebibytes(recovery.walBytes),
          formatCount(recovery.walFiles),
          formatFixed(recovery.walBytes / recovery.records, 1),
          formatFixed(recovery.openSeconds, 2),
          `${recovery.spreadPercent.toFixed(0)}%`,
          formatCount(recovery.recordsPerSecond),
          formatFixed(recovery.coresBusy, 2),
          formatFixed(recovery.openEmptySeconds, 2),
          formatFixed(recovery.loadSeconds, 2),
        ],
      ],
      'rrrrrrrrrr',
    ),
  );
}

export function printDetails(summaries: PutSummary[]): void {
  console.log(
    '\nper store and phase (medians): cores = process CPU time / wall time; settle = wait after the',
  );
  console.log('last acknowledged put until the store reported everything flushed (not in ops/s)');
  const rows = summaries.map((s) => [
    storeLabels[s.store],
    s.phase,
    formatFixed(s.coresBusy, 2),
    s.writesPerBatch === null ? '-' : formatFixed(s.writesPerBatch, 1),
    s.settleSeconds === null ? '-' : formatFixed(s.settleSeconds, 3),
    formatFixed(s.openSeconds, 3),
    formatFixed(s.closeSeconds, 3),
    mebibytes(s.diskAllocatedBytes),
    formatCount(s.first.count),
    `${s.first.spot.sampled - s.first.spot.missing - s.first.spot.mismatched}/${s.first.spot.sampled}`,
  ]);
  console.log(
    formatTable(
      [
        'store',
        'phase',
        'cores',
        'writes/log batch',
        'settle s',
        'open s',
        'close s',
        'on disk (du)',
        'count',
        'spot check ok',
      ],
      rows,
      'llrrrrrrrr',
    ),
  );
}

/** Everything that makes the numbers untrustworthy: wrong counts, failed read-backs, disagreeing bytes. */
export function checkResults(puts: PutRecord[], recovery: RecoveryRecord[]): string[] {
  const problems: string[] = [];
  for (const result of puts) {
    const where = `${storeLabels[result.store]} ${result.phase} (round ${result.round})`;
    if (result.count !== result.records) {
      problems.push(`${where}: count ${result.count}, expected ${result.records}`);
    }
    if (result.spot.missing > 0 || result.spot.mismatched > 0) {
      problems.push(
        `${where}: spot check of ${result.spot.sampled} keys: ${result.spot.missing} missing, ${result.spot.mismatched} wrong values`,
      );
    }
  }
  for (const phase of putPhases) {
    const checksums = new Set(puts.filter((p) => p.phase === phase).map((p) => p.spot.checksum));
    if (checksums.size > 1)
      problems.push(`${phase}: spot-check checksums differ: ${[...checksums].join(', ')}`);
  }
  for (const round of recovery) {
    const open = round.open;
    if (open === undefined) continue;
    const where = `recovery (round ${round.round})`;
    if (open.count !== round.load.records) {
      problems.push(`${where}: count after open ${open.count}, expected ${round.load.records}`);
    }
    if (open.spot.missing > 0 || open.spot.mismatched > 0) {
      problems.push(
        `${where}: spot check of ${open.spot.sampled} keys: ${open.spot.missing} missing, ${open.spot.mismatched} wrong values`,
      );
    }
  }
  return problems;
}
