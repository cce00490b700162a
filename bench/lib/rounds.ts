/**
 * Rounds of a comparison: every store runs once per round in a fresh child process, in an order rotated
 * each round, so slow moments of the machine (and any first-child effects) are spread over all stores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { ChildOutcome } from './child-process.js';

/** The order of `stores` in 1-based `round`: the list rotated left by round - 1. */
export function rotation<S>(stores: readonly S[], round: number): S[] {
  return stores.map((_, i) => stores[(i + round - 1) % stores.length]!);
}

export interface StoreRoundsOptions<S extends string, R> {
  rounds: number;
  stores: readonly S[];
  labels: Record<S, string>;
  /** Each child gets a fresh directory `<tempParent>/<tempPrefix><store>-XXXXXX`, holding its data in `db`. */
  tempParent: string;
  tempPrefix: string;
  /** Runs one store's child on `dir`, a path in the fresh directory that does not exist yet. */
  run: (store: S, round: number, dir: string) => Promise<ChildOutcome<R>>;
}

/**
 * Runs every store once per round and collects the results (each marked with its round) and the
 * failures, which are also printed as they happen.
 */
export async function runStoreRounds<S extends string, R extends { round?: number }>(
  options: StoreRoundsOptions<S, R>,
): Promise<{ results: R[]; failures: string[] }> {
  const results: R[] = [];
  const failures: string[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const store of rotation(options.stores, round)) {
      // The parent owns the data directory, so it is removed even if the child crashes or is killed.
      const tempDir = mkdtempSync(path.join(options.tempParent, `${options.tempPrefix}${store}-`));
      try {
        const { result, problem } = await options.run(store, round, path.join(tempDir, 'db'));
        // A result is kept even with a problem (e.g. the process would not exit): its numbers are real.
        if (result !== undefined) results.push({ ...result, round });
        if (problem !== undefined) {
          failures.push(`${options.labels[store]} (round ${round}): ${problem}`);
          console.log(`  ${options.labels[store]} round ${round}: FAILED, ${problem}`);
        }
      } finally {
        rmSync(tempDir, { recursive: true, force: true });
      }
    }
  }
  return { results, failures };
}
