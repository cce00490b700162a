/** Reducing a store's rounds to one number, and showing how far apart the rounds were. */

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** (max − min) / median of `values`, in percent: the run-to-run noise of a measurement. */
export function spreadPercent(values: number[]): number {
  return ((Math.max(...values) - Math.min(...values)) / median(values)) * 100;
}
