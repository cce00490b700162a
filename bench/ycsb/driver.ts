/**
 * Runs one operation stream against one store and measures it: throughput over the whole stream, the
 * latency of every operation, and a checksum of what the reads and scans returned.
 *
 * Operations are issued a window at a time (--concurrency of them). A synchronous call is timed from the
 * end of the previous operation to its own end (one clock read per operation); an asynchronous one
 * from just before it is issued until its promise resolves, so a write's latency includes waiting for
 * its batch (or transaction) to be acknowledged. After issuing a window the driver awaits every
 * promise of it, then starts the next.
 */
import { LatencyHistogram, type LatencySummary } from './histogram.js';
import { type KeyTable, keyBytes } from './keys.js';
import type { StreamIo, StreamPoolFigures } from './pool-figures.js';
import { foldBytes, foldSeed, type YcsbStore } from './stores.js';
import {
  type OpName,
  type OpStream,
  opInsert,
  opNames,
  opRead,
  opReadModifyWrite,
  opScan,
  opUpdate,
  valueOffset,
} from './workloads.js';

export interface ValuePool {
  bytes: Buffer;
  /** Offsets are `hash & mask`; bytes holds mask + 1 + valueSize bytes. */
  mask: number;
  valueSize: number;
}

export interface StreamOutcome {
  name: string;
  operations: number;
  seconds: number;
  /** CPU time of the whole process (every thread) during the stream. */
  cpuSeconds: number;
  /** The part of cpuSeconds spent in the kernel (system time). */
  systemCpuSeconds: number;
  opsPerSecond: number;
  latency: LatencySummary;
  latencyByOp: Partial<Record<OpName, LatencySummary>>;
  counts: Record<OpName, number>;
  /** Folded over every stable read value and stable scan, in operation order: equal in every store. */
  checksum: string;
  stableReads: number;
  /** Reads (stable or not) that found nothing: every read key exists, so this must be 0. */
  missingReads: number;
  stableScans: number;
  /** Rows of the stable scans (equal in every store), and of all scans. */
  stableScanRows: number;
  scanRows: number;
  /** process.resourceUsage().maxRSS after the stream: the peak of the process so far. */
  peakRssBytes: number;
  /** A store over buffer pools (lightning-paged): what the stream did to them (set by the child). */
  pool?: StreamPoolFigures;
  /** The process's storage I/O during the stream, from /proc/self/io (set by the child; Linux only). */
  io?: StreamIo;
}

const noKeys = Buffer.alloc(0);

function mix(hash: number, value: number): number {
  const h = Math.imul(hash ^ value, 0x9e3779b1);
  return h ^ (h >>> 16);
}

export async function runStream(
  store: YcsbStore,
  stream: OpStream,
  keys: KeyTable,
  pool: ValuePool,
  progress: (done: number, seconds: number) => void,
): Promise<StreamOutcome> {
  const { ops, keys: keyNumbers, scanLengths, count, windowSize } = stream;
  const histograms = opNames.map(() => new LatencyHistogram());
  const readHashes = new Int32Array(count);
  const missing = new Uint8Array(count);
  const hasScans = stream.counts.scan > 0;
  const scanResults = new Float64Array(hasScans ? count : 0);
  const lastKeys = hasScans ? Buffer.alloc(count * keyBytes) : noKeys;
  const { bytes: poolBytes, mask: poolMask, valueSize } = pool;
  const syncReads = store.syncReads;

  let outstanding = 0;
  let windowDone: (() => void) | null = null;
  let errors = 0;
  let firstError: unknown;
  const settle = (): void => {
    if (--outstanding === 0 && windowDone !== null) {
      const done = windowDone;
      windowDone = null;
      done();
    }
  };
  const fail = (error: unknown): void => {
    errors++;
    firstError ??= error;
    settle();
  };
  const noteRead = (i: number, value: Uint8Array | undefined): void => {
    if (value === undefined) missing[i] = 1;
    else readHashes[i] = foldBytes(foldSeed, value);
  };
  /** Waits for an acknowledgement, then records the latency since t0. */
  const track = (acknowledged: Promise<unknown>, histogram: LatencyHistogram, t0: number): void => {
    outstanding++;
    acknowledged.then(() => {
      histogram.recordMs(performance.now() - t0);
      settle();
    }, fail);
  };

  const cpuStart = process.cpuUsage();
  const startMs = performance.now();
  let progressMs = startMs;
  for (let from = 0, windowSeq = stream.firstWindowSeq; from < count; from += windowSize, windowSeq++) {
    const to = Math.min(count, from + windowSize);
    let t = performance.now();
    for (let i = from; i < to; i++) {
      const op = ops[i]!;
      const key = keyNumbers[i]!;
      const histogram = histograms[op]!;
      if (op === opRead) {
        if (syncReads) {
          noteRead(i, store.read(key));
        } else {
          const t0 = t;
          outstanding++;
          store.readAsync(key).then((value) => {
            noteRead(i, value);
            histogram.recordMs(performance.now() - t0);
            settle();
          }, fail);
        }
      } else if (op === opUpdate || op === opInsert) {
        const offset = valueOffset(key, windowSeq, poolMask);
        const acknowledged = store.write(key, poolBytes.subarray(offset, offset + valueSize));
        if (acknowledged !== undefined) {
          track(acknowledged, histogram, t);
          t = performance.now();
          continue;
        }
      } else if (op === opScan) {
        if (syncReads) {
          scanResults[i] = store.scan(key, scanLengths[i]!, lastKeys, i * keyBytes);
        } else {
          const t0 = t;
          outstanding++;
          store.scanAsync(key, scanLengths[i]!, lastKeys, i * keyBytes).then((packed) => {
            scanResults[i] = packed;
            histogram.recordMs(performance.now() - t0);
            settle();
          }, fail);
        }
      } else if (op === opReadModifyWrite) {
        const offset = valueOffset(key, windowSeq, poolMask);
        const value = poolBytes.subarray(offset, offset + valueSize);
        if (syncReads) {
          noteRead(i, store.read(key));
          const acknowledged = store.write(key, value);
          if (acknowledged !== undefined) {
            track(acknowledged, histogram, t);
            t = performance.now();
            continue;
          }
        } else {
          const t0 = t;
          outstanding++;
          store
            .readAsync(key)
            .then((found) => {
              noteRead(i, found);
              return store.write(key, value);
            })
            .then(() => {
              histogram.recordMs(performance.now() - t0);
              settle();
            }, fail);
        }
      }
      const now = performance.now();
      // Asynchronous reads and scans are recorded when they resolve; this is their issue time.
      if (syncReads || op === opUpdate || op === opInsert) histogram.recordMs(now - t);
      t = now;
    }
    store.endWindow();
    if (outstanding > 0) {
      await new Promise<void>((resolve) => {
        windowDone = resolve;
      });
    }
    if (errors > 0) throw new Error(`${errors} operation(s) of ${stream.name} failed`, { cause: firstError });
    const nowMs = performance.now();
    if (nowMs - progressMs >= 5000) {
      progressMs = nowMs;
      progress(to, (nowMs - startMs) / 1000);
    }
  }
  const seconds = (performance.now() - startMs) / 1000;
  const cpu = process.cpuUsage(cpuStart);

  const all = new LatencyHistogram();
  const latencyByOp: Partial<Record<OpName, LatencySummary>> = {};
  histograms.forEach((histogram, op) => {
    if (histogram.count === 0) return;
    all.add(histogram);
    latencyByOp[opNames[op]!] = histogram.summary();
  });
  const verdict = checksumOf(stream, keys, readHashes, missing, scanResults, lastKeys);
  return {
    name: stream.name,
    operations: count,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    systemCpuSeconds: cpu.system / 1e6,
    opsPerSecond: count / seconds,
    latency: all.summary(),
    latencyByOp,
    counts: stream.counts,
    ...verdict,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

/**
 * The checksum of what every store must agree on (untimed, after the stream): stable reads, and scans
 * that no insert of their own window could have changed. An insert of the window makes a scan unstable
 * when its key falls between the scan's start and the last key it returned (or anywhere after the
 * start, when the scan ran out of keys before its limit).
 */
function checksumOf(
  stream: OpStream,
  keys: KeyTable,
  readHashes: Int32Array,
  missing: Uint8Array,
  scanResults: Float64Array,
  lastKeys: Buffer,
): Pick<
  StreamOutcome,
  'checksum' | 'stableReads' | 'missingReads' | 'stableScans' | 'stableScanRows' | 'scanRows'
> {
  const { ops, keys: keyNumbers, stable, scanLengths, count, windowSize } = stream;
  const byKeyOrder = (a: number, b: number): number => keys.compareWith(a, keys.bytes, b * keyBytes);
  let hash = foldSeed;
  let stableReads = 0;
  let missingReads = 0;
  let stableScans = 0;
  let stableScanRows = 0;
  let scanRows = 0;
  const inserted: number[] = [];
  for (let from = 0; from < count; from += windowSize) {
    const to = Math.min(count, from + windowSize);
    inserted.length = 0;
    for (let i = from; i < to; i++) if (ops[i] === opInsert) inserted.push(keyNumbers[i]!);
    inserted.sort(byKeyOrder);
    for (let i = from; i < to; i++) {
      const op = ops[i];
      if (op === opRead || op === opReadModifyWrite) {
        missingReads += missing[i]!;
        if (stable[i] === 1) {
          stableReads++;
          hash = mix(hash, missing[i] === 1 ? -1 : readHashes[i]!);
        }
      } else if (op === opScan) {
        const rows = Math.floor(scanResults[i]! / 0x1_0000_0000);
        scanRows += rows;
        // The first inserted key at or after the scan's start, by binary search.
        let low = 0;
        let high = inserted.length;
        while (low < high) {
          const middle = (low + high) >>> 1;
          if (byKeyOrder(inserted[middle]!, keyNumbers[i]!) < 0) low = middle + 1;
          else high = middle;
        }
        const reachedEnd = rows < scanLengths[i]!;
        const clear =
          low === inserted.length ||
          (!reachedEnd && keys.compareWith(inserted[low]!, lastKeys, i * keyBytes) > 0);
        if (clear) {
          stableScans++;
          stableScanRows += rows;
          hash = mix(mix(hash, rows), scanResults[i]! % 0x1_0000_0000);
        }
      }
    }
  }
  return {
    checksum: (hash >>> 0).toString(16).padStart(8, '0'),
    stableReads,
    missingReads,
    stableScans,
    stableScanRows,
    scanRows,
  };
}
