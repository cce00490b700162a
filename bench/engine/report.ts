/** Turns the children's results into the tables bench:engine prints, and the agreement checks. */
import { formatCount, formatFixed, formatRatio, formatTable, perCpuSecond } from '../lib/format.js';
import { median, spreadPercent } from '../lib/stats.js';
import { durabilityClassText } from '../stores/peer.js';
import { type PhaseName, phaseNames, type ResultLine } from './child.js';
import { durabilityOf, isLightning, lmdbPeerOf, type StoreName, storeLabels } from './stores.js';

const phaseHeaders: Record<PhaseName, string> = {
  load: 'load',
  put: 'put',
  put1: 'put x1',
  get: 'get',
  range: 'range rows',
};

/** The targets this benchmark exists to judge (see bench/README.md). */
const getRatioTarget = 1.5;
const putTargetW2 = 1_000_000;

export interface PhaseSummary {
  /** Median over the rounds. */
  perSecond: number;
  /** Median over the rounds of operations per CPU-second of the process. */
  perCpuSecond: number;
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
  const timings = mine.map((result) => result.phases[phase]);
  const rates = timings.map((timing) => timing.perSecond);
  return {
    perSecond: median(rates),
    perCpuSecond: median(
      timings.map((timing) => perCpuSecond(timing.perSecond * timing.seconds, timing.cpuSeconds)),
    ),
    coresBusy: median(timings.map((timing) => timing.cpuSeconds / timing.seconds)),
    spreadPercent: spreadPercent(rates),
  };
}

export function summarize(results: ResultLine[], stores: StoreName[]): StoreSummary[] {
  return stores.flatMap((store) => {
    const mine = results.filter((result) => result.store === store);
    const first = mine[0];
    if (first === undefined) return [];
    const phases = {} as Record<PhaseName, PhaseSummary>;
    for (const phase of phaseNames) phases[phase] = summarizePhase(mine, phase);
    return [{ store, rounds: mine.length, phases, first }];
  });
}

function find(summaries: StoreSummary[], store: StoreName): StoreSummary | undefined {
  return summaries.find((summary) => summary.store === store);
}

/** ops/s, ops per CPU-second and cores per store and phase, one table per phase group. */
export function printThroughput(summaries: StoreSummary[], rounds: number): void {
  console.log(
    (rounds === 1 ? 'one round per store' : `median of ${rounds} rounds per store`) +
      '; per phase: ops/s (rows/s for range), ops per CPU-second of the process, cores = CPU s / wall s',
  );
  for (const durability of ['sync', 'nosync'] as const) {
    if (summaries.some((summary) => durabilityOf(summary.store) === durability)) {
      console.log(`  ${durability}: ${durabilityClassText[durability]}`);
    }
  }
  console.log(
    `  load and put: windows of put() promises outstanding; put x1: one put outstanding, each awaited`,
  );
  const rows = summaries.map((summary) => [
    storeLabels[summary.store],
    ...phaseNames.flatMap((phase) => {
      const p = summary.phases[phase];
      return [formatCount(p.perSecond), formatCount(p.perCpuSecond), formatFixed(p.coresBusy, 2)];
    }),
  ]);
  console.log(
    formatTable(
      ['store', ...phaseNames.flatMap((phase) => [`${phaseHeaders[phase]}/s`, '/CPU-s', 'cores'])],
      rows,
      'lrrrrrrrrrrrrrrr',
    ),
  );
  if (rounds > 1) {
    console.log('');
    console.log(
      formatTable(
        ['spread of ops/s', ...phaseNames],
        summaries.map((summary) => [
          storeLabels[summary.store],
          ...phaseNames.map((phase) => `${formatFixed(summary.phases[phase].spreadPercent, 0)}%`),
        ]),
        'lrrrrr',
      ),
    );
  }

  const pairs = summaries.flatMap((ours) => {
    if (!isLightning(ours.store)) return [];
    const lmdb = find(summaries, lmdbPeerOf(ours.store));
    return lmdb === undefined ? [] : [{ ours, lmdb }];
  });
  if (pairs.length === 0) return;
  console.log(
    '\nratio lightning-db ÷ lmdb-js at the same durability (> 1.00x: lightning-db ahead), in ops/s and in ops per CPU-second',
  );
  console.log(
    formatTable(
      ['ratio', ...phaseNames.flatMap((phase) => [`${phaseHeaders[phase]}/s`, '/CPU-s'])],
      pairs.map(({ ours, lmdb }) => [
        `${storeLabels[ours.store]} ÷ ${storeLabels[lmdb.store]}`,
        ...phaseNames.flatMap((phase) => [
          formatRatio(ours.phases[phase].perSecond / lmdb.phases[phase].perSecond),
          formatRatio(ours.phases[phase].perCpuSecond / lmdb.phases[phase].perCpuSecond),
        ]),
      ]),
      'lrrrrrrrrrr',
    ),
  );
}

/** One line per target, with the measured value next to the bar, so met / not met needs no arithmetic. */
export function printTargets(summaries: StoreSummary[]): void {
  const verdict = (met: boolean): string => (met ? 'MET' : 'NOT MET');
  console.log('\ntargets');
  const cells = summaries.flatMap((summary) => {
    if (!isLightning(summary.store)) return [];
    const lmdb = find(summaries, lmdbPeerOf(summary.store));
    if (lmdb === undefined) return [];
    const ratio = summary.phases.get.perSecond / lmdb.phases.get.perSecond;
    return [`${storeLabels[summary.store]} ${formatRatio(ratio)} ${verdict(ratio >= getRatioTarget)}`];
  });
  console.log(
    `  sync random get from the main thread ≥ ${formatFixed(getRatioTarget, 1)}x lmdb-js getBinary: ` +
      (cells.length > 0 ? cells.join(', ') : 'no lightning-db and lmdb-js pair'),
  );
  for (const store of ['lightning-w2-sync', 'lightning-w2-nosync'] as const) {
    const w2 = find(summaries, store);
    if (w2 === undefined) continue;
    console.log(
      `  batched random put ≥ ${formatCount(putTargetW2)} ops/s, ${storeLabels[store]}: ` +
        `${formatCount(w2.phases.put.perSecond)} ops/s ${verdict(w2.phases.put.perSecond >= putTargetW2)}`,
    );
  }
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
      ['store', 'open s', 'close s', 'flush wait after load s', 'after put s', 'after put x1 s'],
      summaries.map(({ first }) => [
        storeLabels[first.store],
        formatFixed(first.openSeconds, 3),
        formatFixed(first.closeSeconds, 3),
        ...(['load', 'put', 'put1'] as const).map((phase) => {
          const seconds = first.settleSeconds[phase];
          return seconds === null ? '-' : formatFixed(seconds, 3);
        }),
      ]),
      'lrrrrr',
    ),
  );
  console.log(
    'flush wait: from the last acknowledged write of the phase until db.flushed resolved (lmdb-js);',
  );
  console.log(
    "            '-' = nothing to wait for (lightning-db: a resolved write is as durable as its mode).",
  );
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
