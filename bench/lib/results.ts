/** How a benchmark parent reports problems and saves what it measured. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const bangs = '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!';

/** The banner on stderr when a store gave a wrong answer or failed: `reason` says what kind of thing went wrong. */
export function printUntrustworthy(reason: string, problems: string[]): void {
  console.error(`\n${bangs}`);
  console.error(`!!! BENCHMARK RESULTS ARE NOT TRUSTWORTHY: ${reason}`);
  for (const problem of problems) console.error(`!!! ${problem}`);
  console.error(bangs);
}

/** Summaries as saved: without `first` (a full round's result, which the saved results already hold). */
export function withoutFirst<T extends { first: unknown }>(summaries: T[]): Omit<T, 'first'>[] {
  return summaries.map(({ first: _first, ...summary }) => summary);
}

/** Writes `data` as bench/out/<bench>-<startedAt>.json under `repoRoot` and says where. */
export function writeResults(repoRoot: string, bench: string, startedAt: string, data: unknown): void {
  const outDir = path.join(repoRoot, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `${bench}-${startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(outFile, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`\nresults written to ${path.relative(process.cwd(), outFile)}`);
}

/**
 * The end of a comparison: the banner for any `problems`, then `data` saved with them (as writeResults
 * does). Returns the exit code: 1 when there is a problem, so a run that cannot be trusted fails.
 */
export function finishRun(
  repoRoot: string,
  bench: string,
  startedAt: string,
  untrustworthyReason: string,
  problems: string[],
  data: object,
): number {
  if (problems.length > 0) printUntrustworthy(untrustworthyReason, problems);
  writeResults(repoRoot, bench, startedAt, { ...data, problems });
  return problems.length > 0 ? 1 : 0;
}
