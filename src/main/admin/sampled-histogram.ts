import { Histogram, type Registry } from 'prom-client';

/** One labelled series of a histogram, counted elsewhere and read at scrape time. */
export interface HistogramSample<L extends string> {
  labels: Record<L, string>;
  /** Count per bucket, not cumulative: counts[i] for values <= bounds[i] (and above bounds[i-1]); the last above all. */
  counts: readonly number[];
  sum: number;
}

interface SampleValue {
  value: number;
  labels: Record<string, string | number>;
  /** Empty; present because prom-client's get() merges it into labels. */
  sharedLabels: Record<string, string>;
  metricName: string;
}

/**
 * A Prometheus histogram whose buckets are counted somewhere else — in a worker's shared memory, or
 * in the caller's flat arrays — and copied out when scraped. prom-client's own Histogram counts each
 * observation itself (a label hash per call) and cannot be set from counts, so this one keeps its
 * type, name and registration and replaces only what the registry reads: `getForPromString()`, which
 * the Registry prefers to `get()` (and `get()` builds on it).
 */
export class SampledHistogram<L extends string> extends Histogram<L> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #read: () => HistogramSample<L>[];

  constructor(options: {
    name: string;
    help: string;
    labelNames: readonly L[];
    bounds: readonly number[];
    registry: Registry;
    read: () => HistogramSample<L>[];
  }) {
    super({
      name: options.name,
      help: options.help,
      labelNames: options.labelNames,
      buckets: [...options.bounds],
      registers: [options.registry],
    });
    this.#name = options.name;
    this.#help = options.help;
    this.#bounds = options.bounds;
    this.#read = options.read;
  }

  /** Bucket lines (cumulative, then +Inf), sum and count for every sample, in the registry's shape. */
  async getForPromString(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: 'sum';
    values: SampleValue[];
  }> {
    const values: SampleValue[] = [];
    for (const sample of this.#read()) {
      if (sample.counts.length !== this.#bounds.length + 1) {
        throw new RangeError(
          `${this.#name}: ${sample.counts.length} bucket counts for ${this.#bounds.length} bounds`,
        );
      }
      const line = (suffix: string, labels: Record<string, string | number>, value: number): void => {
        values.push({ metricName: `${this.#name}_${suffix}`, labels, sharedLabels: {}, value });
      };
      let cumulative = 0;
      for (const [i, bound] of this.#bounds.entries()) {
        cumulative += sample.counts[i]!;
        line('bucket', { ...sample.labels, le: bound }, cumulative);
      }
      cumulative += sample.counts[this.#bounds.length]!;
      line('bucket', { ...sample.labels, le: '+Inf' }, cumulative);
      line('sum', { ...sample.labels }, sample.sum);
      line('count', { ...sample.labels }, cumulative);
    }
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values };
  }
}
