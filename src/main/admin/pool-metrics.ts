import { Counter, Gauge, type Registry } from 'prom-client';
import type { PartitionPoolStats } from '../database-stats.js';

/**
 * Buffer pool metrics, from `stats().bufferPools`: present only for a database over page files
 * (memoryMaxBytes), one series per partition.
 */
export class PoolMetrics {
  readonly #frames: Gauge<'partition'>;
  readonly #resident: Gauge<'partition'>;
  readonly #dirty: Gauge<'partition'>;
  readonly #misses: Counter<'partition'>;
  readonly #evictions: Counter<'partition'>;
  readonly #latchRecoveries: Counter<'partition'>;
  readonly #reads: Counter<'partition' | 'le'>;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string): Gauge<'partition'> =>
      new Gauge({ name, help, labelNames: ['partition'], registers: [registry] });
    const counter = (name: string, help: string): Counter<'partition'> =>
      new Counter({ name, help, labelNames: ['partition'], registers: [registry] });
    this.#frames = gauge(
      'lightning_pool_frames',
      'Frames of the partition buffer pool: the most pages in memory',
    );
    this.#resident = gauge('lightning_pool_resident_pages', 'Pages of the partition in memory');
    this.#dirty = gauge(
      'lightning_pool_dirty_pages',
      'Pages of the partition changed since the last page set: written by the next one',
    );
    this.#misses = counter('lightning_pool_misses_total', 'Pages read from the page file, by any thread');
    this.#evictions = counter('lightning_pool_evictions_total', 'Pages evicted to make room for others');
    this.#latchRecoveries = counter(
      'lightning_pool_latch_recoveries_total',
      'Page latches given back after the thread holding them died',
    );
    this.#reads = new Counter({
      name: 'lightning_pool_page_reads_total',
      help: 'Page reads from the page file that took at most `le` microseconds (cumulative, as a histogram)',
      labelNames: ['partition', 'le'],
      registers: [registry],
    });
  }

  set(pools: readonly PartitionPoolStats[]): void {
    for (const pool of pools) {
      const labels = { partition: String(pool.partition) };
      this.#frames.set(labels, pool.framesMax);
      this.#resident.set(labels, pool.residentPages);
      this.#dirty.set(labels, pool.dirtyPages);
      this.#misses.inc(labels, pool.misses);
      this.#evictions.inc(labels, pool.evictions);
      this.#latchRecoveries.inc(labels, pool.latchRecoveries);
      let cumulative = 0;
      pool.readBuckets.forEach((count, bucket) => {
        cumulative += count;
        const bound = pool.readBoundsMicros[bucket];
        this.#reads.inc({ ...labels, le: bound === undefined ? '+Inf' : String(bound) }, cumulative);
      });
    }
  }
}
