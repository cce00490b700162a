import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { AdminMetrics, MetricsSource } from './metrics.js';

const gzipAsync = promisify(gzip);

/** One collected /metrics text, encoded once, and gzipped once if a scraper asks for it. */
export class CollectedMetrics {
  readonly body: Buffer;
  readonly source: MetricsSource | null;
  readonly collectedAtMs: number;
  #gzipped: Promise<Buffer> | null = null;

  constructor(body: Buffer, source: MetricsSource | null, collectedAtMs: number) {
    this.body = body;
    this.source = source;
    this.collectedAtMs = collectedAtMs;
  }

  /** The body gzipped, on the thread pool (compressing on the serving thread would block it). */
  gzipped(): Promise<Buffer> {
    this.#gzipped ??= gzipAsync(this.body);
    return this.#gzipped;
  }
}

/**
 * Collects the metrics at most once per `cacheMs`: a scrape within that time of the last collection
 * (of the same database) gets its text, and scrapes arriving while a collection runs wait for it. A
 * collection reads every partition's stats and renders the text on the serving thread, so a burst of
 * scrapes that each collected would take that thread from the database's callers.
 */
export class MetricsCache {
  readonly #metrics: AdminMetrics;
  readonly #cacheMs: number;
  #collected: CollectedMetrics | null = null;
  #collecting: Promise<CollectedMetrics> | null = null;

  constructor(metrics: AdminMetrics, cacheMs: number) {
    this.#metrics = metrics;
    this.#cacheMs = cacheMs;
  }

  /** The metrics of `source` (null: no database served), at most `cacheMs` old. */
  text(source: MetricsSource | null): Promise<CollectedMetrics> {
    const collected = this.#collected;
    if (
      collected !== null &&
      collected.source === source &&
      performance.now() - collected.collectedAtMs < this.#cacheMs
    ) {
      return Promise.resolve(collected);
    }
    if (this.#collecting === null) {
      const collecting = this.#collect(source);
      this.#collecting = collecting;
      const clear = (): void => {
        if (this.#collecting === collecting) this.#collecting = null;
      };
      collecting.then(clear, clear);
    }
    return this.#collecting;
  }

  async #collect(source: MetricsSource | null): Promise<CollectedMetrics> {
    const collectedAtMs = performance.now();
    this.#metrics.collect(source);
    const body = Buffer.from(await this.#metrics.text(), 'utf8');
    this.#collected = new CollectedMetrics(body, source, collectedAtMs);
    return this.#collected;
  }
}
