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
 * The sharedLabels of every sample: one object, because prom-client caches their rendering in a
 * WeakMap keyed by the object, and a new empty object per line made every line a cache insertion.
 */
const noSharedLabels: Record<string, string> = Object.freeze({});

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
  /** Each bound as the `le` label renders it, computed once. */
  readonly #boundTexts: readonly string[];

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
    this.#boundTexts = options.bounds.map((bound) => valueText(bound));
  }

  /**
   * The histogram in the Prometheus text format, exactly as prom-client's Registry renders
   * getForPromString() (test/admin-metrics-cache.test.ts compares them), but written directly: the
   * registry builds an object and formats a label set per line, which made a scrape of a database
   * with many partitions take tens of milliseconds of the serving thread.
   */
  render(): string {
    const name = this.#name;
    const lines = [`# HELP ${name} ${escapeText(this.#help)}`, `# TYPE ${name} histogram`];
    for (const sample of this.#read()) {
      this.#checkCounts(sample);
      const labels = Object.entries<string>(sample.labels)
        .map(([label, value]) => `${label}="${escapeLabelValue(value)}"`)
        .join(',');
      const bucketLabels = labels === '' ? '' : `${labels},`;
      let cumulative = 0;
      for (let i = 0; i < this.#boundTexts.length; i++) {
        cumulative += sample.counts[i]!;
        lines.push(`${name}_bucket{${bucketLabels}le="${this.#boundTexts[i]}"} ${valueText(cumulative)}`);
      }
      cumulative += sample.counts[this.#bounds.length]!;
      lines.push(`${name}_bucket{${bucketLabels}le="+Inf"} ${valueText(cumulative)}`);
      const braces = labels === '' ? '' : `{${labels}}`;
      lines.push(
        `${name}_sum${braces} ${valueText(sample.sum)}`,
        `${name}_count${braces} ${valueText(cumulative)}`,
      );
    }
    return lines.join('\n');
  }

  #checkCounts(sample: HistogramSample<L>): void {
    if (sample.counts.length !== this.#bounds.length + 1) {
      throw new RangeError(
        `${this.#name}: ${sample.counts.length} bucket counts for ${this.#bounds.length} bounds`,
      );
    }
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
      this.#checkCounts(sample);
      const line = (suffix: string, labels: Record<string, string | number>, value: number): void => {
        values.push({ metricName: `${this.#name}_${suffix}`, labels, sharedLabels: noSharedLabels, value });
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

/** A sample value as the text format writes it (prom-client's spelling of the special values). */
function valueText(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}

/** HELP text: backslashes and newlines escaped. */
function escapeText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: as HELP text, and double quotes escaped too. */
function escapeLabelValue(text: string): string {
  return escapeText(text).replace(/"/g, '\\"');
}
