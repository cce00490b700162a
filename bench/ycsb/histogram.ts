/**
 * A latency histogram cheap enough to record every operation: log-linear buckets (HdrHistogram's idea)
 * with 128 sub-buckets per power of two, so any percentile is within 0.8% of the true value. Values
 * are nanoseconds; one record is a clz32, a shift and an increment, with no allocation.
 */

/** Below this many ns every value has its own bucket. */
const linearNs = 256;
const subBucketBits = 7;
const subBuckets = 1 << subBucketBits;
/** 2^32 - 1 ns (4.3 s): anything longer is counted as this (and shows up as the maximum). */
const valueNsMax = 0xffff_ffff;
const bucketCount = linearNs + (32 - 8) * subBuckets;

function bucketOf(ns: number): number {
  if (ns < linearNs) return ns;
  const exponent = 31 - Math.clz32(ns);
  const mantissa = ns >>> (exponent - subBucketBits);
  return linearNs + (exponent - 8) * subBuckets + (mantissa - subBuckets);
}

/** The middle of a bucket's range of values, in ns. */
function bucketMiddleNs(bucket: number): number {
  if (bucket < linearNs) return bucket;
  const exponent = ((bucket - linearNs) >>> subBucketBits) + 8;
  const mantissa = ((bucket - linearNs) & (subBuckets - 1)) + subBuckets;
  const width = 2 ** (exponent - subBucketBits);
  return mantissa * width + width / 2;
}

export interface LatencySummary {
  count: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export class LatencyHistogram {
  readonly counts = new Float64Array(bucketCount);
  count = 0;
  sumNs = 0;
  maxNs = 0;

  /** Records one latency given in milliseconds (what performance.now() differences are). */
  recordMs(ms: number): void {
    let ns = Math.round(ms * 1e6);
    if (ns < 0) ns = 0;
    else if (ns > valueNsMax) ns = valueNsMax;
    this.counts[bucketOf(ns)]++;
    this.count++;
    this.sumNs += ns;
    if (ns > this.maxNs) this.maxNs = ns;
  }

  add(other: LatencyHistogram): void {
    for (let i = 0; i < bucketCount; i++) this.counts[i] += other.counts[i]!;
    this.count += other.count;
    this.sumNs += other.sumNs;
    if (other.maxNs > this.maxNs) this.maxNs = other.maxNs;
  }

  /** The value at quantile q in [0, 1], in ns (0 when empty). */
  quantileNs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < bucketCount; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(bucketMiddleNs(i), this.maxNs);
    }
    return this.maxNs;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      meanUs: this.count === 0 ? 0 : this.sumNs / this.count / 1000,
      p50Us: this.quantileNs(0.5) / 1000,
      p99Us: this.quantileNs(0.99) / 1000,
      p999Us: this.quantileNs(0.999) / 1000,
      maxUs: this.maxNs / 1000,
    };
  }
}
