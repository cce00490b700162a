/**
 * What a store over buffer pools (lightning-paged) did to its pools during one stream: the difference
 * of its summed counters (stats().bufferPools) before and after the stream, and the pools' state after;
 * and what every store's child did to storage during it (/proc/self/io).
 */
import { readFileSync } from 'node:fs';
import type { PoolCounters } from './stores.js';

export interface StreamPoolFigures {
  /** Page reads from the page files during the stream, by every thread (readers and owners). */
  misses: number;
  missesPerOperation: number;
  evictions: number;
  /** The stream's page reads by latency: counts at or below each of readBoundsMicros, then the rest. */
  readBuckets: number[];
  readBoundsMicros: number[];
  /** The bound of the bucket that holds the median page read: "≤ N µs", "> N µs", or "-" (no reads). */
  readP50: string;
  /** After the stream, summed over partitions. */
  residentPages: number;
  dirtyPages: number;
  framesMax: number;
  pagesAllocated: number;
}

/** The bucket bound below which `quantile` of the reads fall, as "≤ N µs" (or "> last µs"). */
export function bucketQuantile(
  buckets: readonly number[],
  bounds: readonly number[],
  quantile: number,
): string {
  const total = buckets.reduce((sum, count) => sum + count, 0);
  if (total === 0) return '-';
  let seen = 0;
  for (let bucket = 0; bucket < buckets.length; bucket++) {
    seen += buckets[bucket]!;
    if (seen >= total * quantile) {
      const bound = bounds[bucket];
      return bound === undefined ? `> ${bounds[bounds.length - 1]} µs` : `≤ ${bound} µs`;
    }
  }
  return '-';
}

export function poolFigures(
  before: PoolCounters,
  after: PoolCounters,
  operations: number,
): StreamPoolFigures {
  const readBuckets = after.readBuckets.map((count, bucket) => count - (before.readBuckets[bucket] ?? 0));
  const misses = after.misses - before.misses;
  return {
    misses,
    missesPerOperation: operations === 0 ? 0 : misses / operations,
    evictions: after.evictions - before.evictions,
    readBuckets,
    readBoundsMicros: after.readBoundsMicros,
    readP50: bucketQuantile(readBuckets, after.readBoundsMicros, 0.5),
    residentPages: after.residentPages,
    dirtyPages: after.dirtyPages,
    framesMax: after.framesMax,
    pagesAllocated: after.pagesAllocated,
  };
}

/**
 * The process's I/O during a stream, every thread, from /proc/self/io: the page cache it dirtied
 * (write_bytes), bytes handed to write calls (wchar), write calls (syscw, pwrite and friends), and
 * bytes read by read calls (rchar: from the page cache or not).
 *
 * write_bytes is not the bytes the device is sent. The kernel adds a whole folio to it each time a
 * write makes a clean folio dirty, and since large page-cache folios (ext4 has them from Linux 6.16
 * on) a folio is up to 2 MiB: a 4 KiB write into a page that came into the cache in a long `pwritev`
 * counts that whole write again, though writeback sends only the 4 KiB block that changed. A page set
 * writes each run of adjacent new pages in one `pwritev`, so later rewrites of those pages were counted
 * at up to 64 times their bytes: 12.6, 15.7 and 20.9 KiB a put for loads of 0.5, 1 and 2 million
 * records, where the device got 9.0, 8.5 and 8.2 (block:block_bio_queue of the child) and write calls
 * carried 8.6, 8.3 and 8.1. wchar (every write call's bytes, log, page sets, pipes) is the figure to
 * compare between stores; it misses what the kernel writes for the file system itself (inodes).
 */
export interface StreamIo {
  writeBytes: number;
  writeCallBytes: number;
  writeCalls: number;
  readCallBytes: number;
}

/** /proc/self/io now, or undefined where there is none (not Linux). */
export function ioCounters(): StreamIo | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/io', 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    writeBytes: field('write_bytes'),
    writeCallBytes: field('wchar'),
    writeCalls: field('syscw'),
    readCallBytes: field('rchar'),
  };
}

export function ioDifference(before: StreamIo, after: StreamIo): StreamIo {
  return {
    writeBytes: after.writeBytes - before.writeBytes,
    writeCallBytes: after.writeCallBytes - before.writeCallBytes,
    writeCalls: after.writeCalls - before.writeCalls,
    readCallBytes: after.readCallBytes - before.readCallBytes,
  };
}
