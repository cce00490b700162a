/** Turns the children's results into the tables bench:engine prints, and the agreement checks. */
import { formatCount, formatFixed, formatRatio, formatTable } from '../lib/format.js';
import { median, spreadPercent } from '../lib/stats.js';
import { type PhaseName, phaseNames, type ResultLine } from './child.js';
import { type StoreName, storeLabels } from './stores.js';

const phaseHeaders: Record<PhaseName, string> = {
  load: 'load ops/s',
  put: 'put ops/s',
  get: 'get ops/s',
  range: 'range rows/s',
};

/** The targets this benchmark exists to judge (see bench/README.md). */
const getRatioTarget = 1.5;
const putTargetW2 = 1_000_000;

export interface PhaseSummary {
  /** Median over the rounds. */
  perSecond: number;
  /** Median process CPU time ÷ wall time: about how many cores the phase kept busy. */
  coresBusy: number;
  /** (max − min) / median over the rounds, in percent: the run-to-run noise of this cell. */
  spreadPercent: number;
}

/** One store's rounds reduced to medians; `first` is its first round, for the detail tables. */
export interface StoreSummary {
  store: StoreName;
  rounds: number;
  phases: Record<PhaseName, PhaseSummary>;
  first: ResultLine;
}

function summarizePhase(mine: ResultLine[], phase: PhaseName): PhaseSummary {
  const rates = mine.map((result) => result.phases[phase].perSecond);
  return {
    perSecond: median(rates),
    coresBusy: median(mine.map((result) => result.phases[phase].cpuSeconds / result.phases[phase].seconds)),
    spreadPercent: spreadPercent(rates),
  };
}

export function summarize(results: ResultLine[], stores: StoreName[]): StoreSummary[] {
  return stores.flatMap((store) => {
    const mine = results.filter((result) => result.store === store);
    const first = mine[0];
    if (first === undefined) return [];
    return [
      {
        store,
        rounds: mine.length,
        phases: {
          load: summarizePhase(mine, 'load'),
          put: summarizePhase(mine, 'put'),
          get: summarizePhase(mine, 'get'),
          range: summarizePhase(mine, 'range'),
        },
        first,
      },
    ];
  });
}

function find(summaries: StoreSummary[], store: StoreName): StoreSummary | undefined {
  return summaries.find((summary) => summary.store === store);
}

export function printThroughput(summaries: StoreSummary[], rounds: number): void {
  console.log(
    rounds === 1
      ? 'one round per store'
      : `median of ${rounds} rounds per store (spread = (max - min) / median)`,
  );
  console.log(
    formatTable(
      ['store', ...phaseNames.map((phase) => phaseHeaders[phase])],
      summaries.map((summary) => [
        storeLabels[summary.store],
        ...phaseNames.map((phase) => formatCount(summary.phases[phase].perSecond)),
      ]),
      'lrrrr',
    ),
  );
  if (rounds > 1) {
    console.log('');
    console.log(
      formatTable(
        ['spread', ...phaseNames],
        summaries.map((summary) => [
          storeLabels[summary.store],
          ...phaseNames.map((phase) => `${formatFixed(summary.phases[phase].spreadPercent, 0)}%`),
        ]),
        'lrrrr',
      ),
    );
  }

  const lmdb = find(summaries, 'lmdb');
  const ours = (['lightning-w2', 'lightning-w1'] as const).flatMap((store) => find(summaries, store) ?? []);
  if (lmdb === undefined || ours.length === 0) return;
  console.log('\nratio lightning-db ÷ lmdb-js (> 1.00x: lightning-db is faster)');
  console.log(
    formatTable(
      ['ratio', ...phaseNames.map((phase) => phaseHeaders[phase])],
      ours.map((summary) => [
        `${storeLabels[summary.store]} ÷ lmdb-js`,
        ...phaseNames.map((phase) =>
          formatRatio(summary.phases[phase].perSecond / lmdb.phases[phase].perSecond),
        ),
      ]),
      'lrrrr',
    ),
  );
}

/** How many cores each phase kept busy: whether a store is CPU-bound, I/O-bound, or fighting for cores. */
export function printCpu(summaries: StoreSummary[]): void {
  console.log('\nprocess CPU time ÷ wall time per phase (all threads of the child; ≈ cores busy)');
  console.log(
    formatTable(
      ['store', ...phaseNames],
      summaries.map((summary) => [
        storeLabels[summary.store],
        ...phaseNames.map((phase) => formatFixed(summary.phases[phase].coresBusy, 2)),
      ]),
      'lrrrr',
    ),
  );
}

/** One line per target, with the measured value next to the bar, so met / not met needs no arithmetic. */
export function printTargets(summaries: StoreSummary[]): void {
  const lmdb = find(summaries, 'lmdb');
  const verdict = (met: boolean): string => (met ? 'MET' : 'NOT MET');
  console.log('\ntargets');
  if (lmdb !== undefined) {
    const cells = (['lightning-w1', 'lightning-w2'] as const).flatMap((store) => {
      const summary = find(summaries, store);
      if (summary === undefined) return [];
      const ratio = summary.phases.get.perSecond / lmdb.phases.get.perSecond;
      return [`${storeLabels[summary.store]} ${formatRatio(ratio)} ${verdict(ratio >= getRatioTarget)}`];
    });
    console.log(
      `  sync random get from the main thread ≥ ${formatFixed(getRatioTarget, 1)}x lmdb-js getBinary: ` +
        (cells.length > 0 ? cells.join(', ') : 'no lightning-db run'),
    );
  }
  const w2 = find(summaries, 'lightning-w2');
  const w1 = find(summaries, 'lightning-w1');
  console.log(
    `  batched random put ≥ ${formatCount(putTargetW2)} ops/s with W=2: ` +
      (w2 === undefined
        ? 'no W=2 run'
        : `${formatCount(w2.phases.put.perSecond)} ops/s ${verdict(w2.phases.put.perSecond >= putTargetW2)}`) +
      (w1 === undefined ? '' : ` (W=1: ${formatCount(w1.phases.put.perSecond)} ops/s)`),
  );
}

export function printBatchStats(summaries: StoreSummary[]): void {
  const rows: string[][] = [];
  for (const { first } of summaries) {
    for (const phase of first.batches ?? []) {
      for (const worker of phase.workers) {
        rows.push([
          storeLabels[first.store],
          phase.phase,
          String(worker.worker),
          String(worker.partitions),
          formatCount(worker.batches),
          formatCount(worker.operations),
          worker.batches === 0 ? '-' : formatFixed(worker.operations / worker.batches, 1),
          formatCount(worker.batchSizeMax),
        ]);
      }
    }
  }
  if (rows.length === 0) return;
  console.log(
    '\nlightning-db owner batches (db.stats().workerStats, counted per write phase, first round of each store)',
  );
  console.log(
    formatTable(
      ['store', 'phase', 'worker', 'partitions', 'batches', 'operations', 'ops/batch', 'max batch*'],
      rows,
      'llrrrrrr',
    ),
  );
  console.log('* max batch is the largest batch since open (the counter is a running maximum).');
}

export function printChecks(summaries: StoreSummary[]): void {
  console.log(
    '\nchecks (get checksum, range rows and range checksum must be identical for every store and round)',
  );
  console.log(
    formatTable(
      ['store', 'count', 'first key', 'get checksum', 'missing', 'range rows', 'range checksum'],
      summaries.map(({ first }) => [
        storeLabels[first.store],
        formatCount(first.count),
        first.spotCheckOk ? 'ok' : 'WRONG',
        first.getChecksum,
        String(first.getsMissing),
        formatCount(first.rangeRows),
        first.rangeChecksum,
      ]),
      'lrlrrrr',
    ),
  );
}

export function printTimings(summaries: StoreSummary[]): void {
  console.log('\nother timings, first round (not in the ops/s above)');
  console.log(
    formatTable(
      ['store', 'open s', 'close s', 'flush wait after load s', 'flush wait after put s'],
      summaries.map(({ first }) => [
        storeLabels[first.store],
        formatFixed(first.openSeconds, 3),
        formatFixed(first.closeSeconds, 3),
        first.settleSeconds.load === null ? '-' : formatFixed(first.settleSeconds.load, 3),
        first.settleSeconds.put === null ? '-' : formatFixed(first.settleSeconds.put, 3),
      ]),
      'lrrrr',
    ),
  );
  console.log(
    'flush wait: from the last acknowledged write of the phase until db.flushed resolved (lmdb-js);',
  );
  console.log("            '-' = not measured for lightning-db (durability 'none' never waits for a sync).");
}

/** Every problem is a wrong answer or a failed store, never a slow one. */
export function checkAgreement(results: ResultLine[], records: number): string[] {
  const problems: string[] = [];
  const label = (result: ResultLine): string => `${storeLabels[result.store]} (round ${result.round})`;
  for (const result of results) {
    if (result.count !== records)
      problems.push(`${label(result)}: count is ${result.count}, expected ${records}`);
    if (!result.spotCheckOk) problems.push(`${label(result)}: the first key did not read back as loaded`);
    if (result.getsMissing !== 0)
      problems.push(`${label(result)}: ${result.getsMissing} gets returned undefined`);
    if (result.rangeRows === 0) problems.push(`${label(result)}: the range scans returned no rows`);
  }
  const differing = (what: string, pick: (result: ResultLine) => string): void => {
    if (new Set(results.map(pick)).size > 1) {
      const listing = results.map((result) => `${label(result)}=${pick(result)}`).join(', ');
      problems.push(`${what} MISMATCH: ${listing}`);
    }
  };
  differing('get checksum', (result) => result.getChecksum);
  differing('range rows', (result) => String(result.rangeRows));
  differing('range checksum', (result) => result.rangeChecksum);
  return problems;
}
