/** bench:tx's tables: medians over the rounds per store and phase, ratios, and the checks. */
import { formatCount, formatFixed, formatRatio, formatTable, perCpuSecond } from '../lib/format.js';
import { median, spreadPercent } from '../lib/stats.js';
import { durabilityClassText } from '../stores/peer.js';
import type { ResultLine } from './child.js';
import { storeConcurrent, storeLabels } from './stores.js';
import { type Variant, variantLabel, variantOf, variantParts } from './variants.js';
import { type PhaseName, phaseNames } from './workload.js';

export interface PhaseSummary {
  perSecond: number;
  /** Median over the rounds of committed transactions per CPU-second of the process. */
  perCpuSecond: number;
  spreadPercent: number;
  cores: number;
  committed: number;
  failed: number;
  retries: number | null;
}

export interface StoreSummary {
  variant: Variant;
  rounds: number;
  first: ResultLine;
  phases: Record<PhaseName, PhaseSummary>;
}

function variantOfResult(result: ResultLine): Variant {
  return variantOf(result.store, result.durabilityClass, result.concurrency);
}

export function summarize(results: ResultLine[], variants: readonly Variant[]): StoreSummary[] {
  const summaries: StoreSummary[] = [];
  for (const variant of variants) {
    const mine = results.filter((result) => variantOfResult(result) === variant);
    if (mine.length === 0) continue;
    const phases = {} as Record<PhaseName, PhaseSummary>;
    for (const phase of phaseNames) {
      const runs = mine.map((result) => result.phases[phase]);
      const rates = runs.map((run) => run.perSecond);
      const counters = runs.map((run) => run.counters);
      phases[phase] = {
        perSecond: median(rates),
        perCpuSecond: median(runs.map((run) => perCpuSecond(run.committed, run.cpuSeconds))),
        spreadPercent: spreadPercent(rates),
        cores: median(runs.map((run) => run.cpuSeconds / run.seconds)),
        committed: runs.reduce((sum, run) => sum + run.committed, 0),
        failed: runs.reduce((sum, run) => sum + run.failed, 0),
        retries: counters.every((c) => c !== null)
          ? counters.reduce((sum, c) => sum + (c?.retries ?? 0), 0)
          : null,
      };
    }
    summaries.push({ variant, rounds: mine.length, first: mine[0]!, phases });
  }
  return summaries;
}

export function printThroughput(summaries: StoreSummary[], rounds: number): void {
  console.log(
    `transactions per second and per CPU-second of the process (median of ${rounds} round(s); ` +
      'spread = (max - min) / median of tx/s; cores = CPU seconds / wall seconds)',
  );
  for (const [durability, text] of Object.entries(durabilityClassText)) {
    if (summaries.some((s) => s.first.durabilityClass === durability))
      console.log(`  ${durability}: ${text}`);
  }
  const rows = summaries.map((s) => {
    const { store } = variantParts(s.variant);
    return [
      storeLabels[store],
      s.first.durabilityClass,
      String(s.first.concurrency),
      ...phaseNames.flatMap((phase) => {
        const p = s.phases[phase];
        return [
          formatCount(p.perSecond),
          formatCount(p.perCpuSecond),
          formatFixed(p.cores, 2),
          `${formatFixed(p.spreadPercent, 0)}%`,
        ];
      }),
    ];
  });
  console.log(
    formatTable(
      [
        'store',
        'durability',
        'outstanding',
        ...phaseNames.flatMap((phase) => [`${phase} tx/s`, 'tx/CPU-s', 'cores', '±']),
      ],
      rows,
      'lllrrrrrrrrrrrr',
    ),
  );
}

/**
 * lightning-db ÷ each other store in the same row (same durability class, same transactions
 * outstanding), per phase, for tx/s and for tx per CPU-second (above 1: lightning-db is ahead). A store
 * that runs one transaction at a time is also set against lightning-db's concurrent rows, marked so.
 */
export function printRatios(summaries: StoreSummary[]): void {
  const lightning = summaries.filter((s) => s.first.store === 'lightning');
  const others = summaries.filter((s) => s.first.store !== 'lightning');
  if (lightning.length === 0 || others.length === 0) return;
  console.log('\nratios: lightning-db / the other store, in tx/s and in tx per CPU-second');
  const rows: string[][] = [];
  for (const ours of lightning) {
    for (const theirs of others) {
      if (ours.first.durabilityClass !== theirs.first.durabilityClass) continue;
      const sameRow = ours.first.concurrency === theirs.first.concurrency;
      const serialAgainstConcurrent =
        !storeConcurrent[theirs.first.store] && theirs.first.concurrency === 1 && ours.first.concurrency > 1;
      if (!sameRow && !serialAgainstConcurrent) continue;
      rows.push([
        `${variantLabel(ours.variant)} / ${variantLabel(theirs.variant)}${sameRow ? '' : ' (its only mode)'}`,
        ...phaseNames.flatMap((phase) => [
          formatRatio(ours.phases[phase].perSecond / theirs.phases[phase].perSecond),
          formatRatio(ours.phases[phase].perCpuSecond / theirs.phases[phase].perCpuSecond),
        ]),
      ]);
    }
  }
  console.log(
    formatTable(['pair', ...phaseNames.flatMap((phase) => [`${phase} tx/s`, 'tx/CPU-s'])], rows, 'lrrrrrr'),
  );
}

export function printDetails(summaries: StoreSummary[]): void {
  console.log('\nper phase, over all rounds: committed, failed, retries (lightning-db)');
  const rows = summaries.flatMap((s) =>
    phaseNames.map((phase) => {
      const p = s.phases[phase];
      return [
        variantLabel(s.variant),
        phase,
        formatCount(p.committed),
        formatCount(p.failed),
        p.retries === null ? '-' : formatCount(p.retries),
      ];
    }),
  );
  console.log(formatTable(['store', 'phase', 'committed', 'failed', 'retries'], rows, 'llrrr'));
  console.log('\nhow each store ran');
  for (const { variant, first } of summaries) {
    console.log(`  ${variantLabel(variant)}: ${first.setup}`);
    console.log(`    ${first.method}; ${first.concurrency} outstanding`);
    console.log(`    ${first.durability}`);
    console.log(
      `    load of ${formatCount(first.accounts)} accounts: ${formatFixed(first.loadSeconds, 2)} s`,
    );
  }
}

/** What makes a run untrustworthy: a wrong answer found by a store's own checks. */
export function collectProblems(results: ResultLine[]): string[] {
  return results.flatMap((result) =>
    result.problems.map(
      (problem) => `${variantLabel(variantOfResult(result))} (round ${result.round}): ${problem}`,
    ),
  );
}

/**
 * Transactions that failed (lightning-db: conflicts beyond the default 16 retries, which hot zipfian
 * keys under many outstanding transactions can cause). Not a wrong answer: the checks count only
 * committed transactions. Printed so that the count is never hidden.
 */
export function printFailures(results: ResultLine[]): void {
  const lines: string[] = [];
  for (const result of results) {
    for (const phase of phaseNames) {
      const p = result.phases[phase];
      if (p.failed === 0) continue;
      lines.push(
        `  ${variantLabel(variantOfResult(result))} (round ${result.round}) ${phase}: ${formatCount(p.failed)} of ` +
          `${formatCount(p.failed + p.committed)} transactions failed; first: ${p.firstError}`,
      );
    }
  }
  if (lines.length === 0) return;
  console.log('\nfailed transactions (not counted in tx/s):');
  for (const line of lines) console.log(line);
}
