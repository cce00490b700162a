/**
 * The knobs and lanes of a kill test: counts read from the environment, and the rounds split over
 * kill loops run side by side. Lane i runs with seed + i, so a failure names its lane's seed and
 * that lane replays alone with LIGHTNING_SEED=<that seed>.
 */

/** A positive integer from the environment variable `name`; `fallback` when unset or blank. */
export function positiveFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

export interface Lane {
  readonly index: number;
  readonly seed: number;
  readonly rounds: number;
  /** Logs a line tagged with the test's name, and with the lane and its seed when there are several. */
  readonly log: (line: string) => void;
}

/**
 * Runs `rounds` kill points as `lanes` loops at once (the first `rounds % lanes` lanes take one more)
 * and returns each lane's result in lane order.
 */
export function runLanes<T>(
  options: { readonly name: string; readonly seed: number; readonly rounds: number; readonly lanes: number },
  runLane: (lane: Lane) => Promise<T>,
): Promise<T[]> {
  const { name, seed, rounds, lanes } = options;
  return Promise.all(
    Array.from({ length: lanes }, (_, index) => {
      const laneSeed = (seed + index) >>> 0;
      const tag = lanes > 1 ? `${name} lane ${index} (seed ${laneSeed})` : name;
      return runLane({
        index,
        seed: laneSeed,
        rounds: Math.floor(rounds / lanes) + (index < rounds % lanes ? 1 : 0),
        log: (line) => console.log(`${tag}: ${line}`),
      });
    }),
  );
}
