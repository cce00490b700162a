/** bench:tx's tables: medians over the rounds per store and phase, ratios, and the checks. */
import { formatCount, formatFixed, formatRatio, formatTable } from '../lib/format.js';
import { median, spreadPercent } from '../lib/stats.js';
import type { ResultLine } from './child.js';
import { ackShort, type StoreName, storeLabels } from './stores.js';
import { type PhaseName, phaseNames } from './workload.js';

export interface PhaseSummary {
  perSecond: number;
  spreadPercent: number;
  cores: number;
  committed: number;
  failed: number;
  retries: number | null;
}

export interface StoreSummary {
  store: StoreName;
  rounds: number;
  first: ResultLine;
  phases: Record<PhaseName, PhaseSummary>;
}

export function summarize(results: ResultLine[], stores: readonly StoreName[]): StoreSummary[] {
  const summaries: StoreSummary[] = [];
  for (const store of stores) {
    const mine = results.filter((result) => result.store === store);
    if (mine.length === 0) continue;
    const phases = {} as Record<PhaseName, PhaseSummary>;
    for (const phase of phaseNames) {
      const runs = mine.map((result) => result.phases[phase]);
      const rates = runs.map((run) => run.perSecond);
      const counters = runs.map((run) => run.counters);
      phases[phase] = {
        perSecond: median(rates),
        spreadPercent: spreadPercent(rates),
        cores: median(runs.map((run) => run.cpuSeconds / run.seconds)),
        committed: runs.reduce((sum, run) => sum + run.committed, 0),
        failed: runs.reduce((sum, run) => sum + run.failed, 0),
        retries: counters.every((c) => c !== null)
          ? counters.reduce((sum, c) => sum + (c?.retries ?? 0), 0)
          : null,
      };
    }
    summaries.push({ store, rounds: mine.length, first: mine[0]!, phases });
  }
  return summaries;
}

export function printThroughput(summaries: StoreSummary[], rounds: number): void {
  console.log(`transactions per second (median of ${rounds} round(s); spread = (max - min) / median)`);
  const rows = summaries.map((s) => [
    storeLabels[s.store],
    ackShort[s.store],
    String(s.first.concurrency),
    ...phaseNames.flatMap((phase) => [
      formatCount(s.phases[phase].perSecond),
      `${formatFixed(s.phases[phase].spreadPercent, 0)}%`,
    ]),
  ]);
  console.log(
    formatTable(
      ['store', 'acknowledged when', 'outstanding', 'local tx/s', '±', 'cross tx/s', '±', 'rmw tx/s', '±'],
      rows,
      'llrrrrrrr',
    ),
  );
}

/** Ratios of each lightning-db store to each other store, per phase (above 1: lightning-db is faster). */
export function printRatios(summaries: StoreSummary[]): void {
  const lightning = summaries.filter((s) => s.store.startsWith('lightning'));
  const others = summaries.filter((s) => !s.store.startsWith('lightning'));
  if (lightning.length === 0 || others.length === 0) return;
  console.log('\nratios: lightning-db tx/s / the other store tx/s');
  const rows: string[][] = [];
  for (const ours of lightning) {
    for (const theirs of others) {
      rows.push([
        `${storeLabels[ours.store]} / ${storeLabels[theirs.store]}`,
        ...phaseNames.map((phase) =>
          formatRatio(ours.phases[phase].perSecond / theirs.phases[phase].perSecond),
        ),
      ]);
    }
  }
  console.log(formatTable(['pair', 'local', 'cross', 'rmw'], rows, 'lrrr'));
}

export function printDetails(summaries: StoreSummary[]): void {
  console.log(
    '\nper phase, over all rounds: committed, failed, retries (lightning-db), CPU cores busy (median)',
  );
  const rows = summaries.flatMap((s) =>
    phaseNames.map((phase) => {
      const p = s.phases[phase];
      return [
        storeLabels[s.store],
        phase,
        formatCount(p.committed),
        formatCount(p.failed),
        p.retries === null ? '-' : formatCount(p.retries),
        formatFixed(p.cores, 2),
      ];
    }),
  );
  console.log(formatTable(['store', 'phase', 'committed', 'failed', 'retries', 'cores'], rows, 'llrrrr'));
  console.log('\nhow each store ran');
  for (const { first } of summaries) {
    console.log(`  ${storeLabels[first.store]}: ${first.setup}`);
    console.log(`    ${first.method}`);
    console.log(`    ${first.durability}`);
    console.log(
      `    load of ${formatCount(first.accounts)} accounts: ${formatFixed(first.loadSeconds, 2)} s`,
    );
  }
}

/** What makes a run untrustworthy: a wrong answer found by a store's own checks. */
export function collectProblems(results: ResultLine[]): string[] {
  return results.flatMap((result) =>
    result.problems.map((problem) => `${storeLabels[result.store]} (round ${result.round}): ${problem}`),
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
        `  ${storeLabels[result.store]} (round ${result.round}) ${phase}: ${formatCount(p.failed)} of ` +
          `${formatCount(p.failed + p.committed)} transactions failed; first: ${p.firstError}`,
      );
    }
  }
  if (lines.length === 0) return;
  console.log('\nfailed transactions (not counted in tx/s):');
  for (const line of lines) console.log(line);
}
