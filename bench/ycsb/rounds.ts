/**
 * Several rounds of the comparison reduced to one result per store. For each workload the round with
 * the median ops/s stands for the store (its latency and RSS come with it, so a row is one real run,
 * not a mix of runs), and the spread (max - min) / median says how noisy that cell was.
 */
import { median, spreadPercent } from '../lib/stats.js';
import type { ResultLine } from './child.js';
import type { StreamOutcome } from './driver.js';
import type { StoreName } from './stores.js';

export interface StoreSummary extends ResultLine {
  rounds: number;
  /** Per stream name: (max - min) / median of ops/s over the rounds, in percent (0 for one round). */
  spreadPercent: Record<string, number>;
}

export function summarizeRounds(results: ResultLine[], stores: readonly StoreName[]): StoreSummary[] {
  const summaries: StoreSummary[] = [];
  for (const store of stores) {
    const mine = results.filter((result) => result.store === store);
    const first = mine[0];
    if (first === undefined) continue;
    const streams: StreamOutcome[] = [];
    const spreads: Record<string, number> = {};
    for (const { name } of first.streams) {
      const outcomes = mine.flatMap((result) => result.streams.filter((stream) => stream.name === name));
      const rates = outcomes.map((outcome) => outcome.opsPerSecond);
      const middle = median(rates);
      // With an even count the median falls between two rounds: take the round closest to it.
      const chosen = outcomes.reduce((best, outcome) =>
        Math.abs(outcome.opsPerSecond - middle) < Math.abs(best.opsPerSecond - middle) ? outcome : best,
      );
      streams.push(chosen);
      spreads[name] = outcomes.length > 1 ? spreadPercent(rates) : 0;
    }
    summaries.push({ ...first, streams, rounds: mine.length, spreadPercent: spreads });
  }
  return summaries;
}
