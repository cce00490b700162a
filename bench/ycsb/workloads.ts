/**
 * The YCSB core workloads and the operation streams they generate. A stream is generated in full before
 * the clock starts (typed arrays: operation, key number, scan length), from the seed, so the timed loop
 * runs store calls only and every store runs exactly the same operations in the same order.
 *
 * Operations are issued in windows of `windowSize` (the --concurrency): all of a window's operations
 * are issued, then the window's writes are awaited. So a key is "acknowledged" once the window that
 * inserted it has ended, and, as YCSB's AcknowledgedCounterGenerator, only acknowledged keys are read.
 */
import {
  randomDoubles,
  ScrambledZipfianGenerator,
  SkewedLatestGenerator,
  UniformGenerator,
} from './generators.js';

export const opRead = 0;
export const opUpdate = 1;
export const opInsert = 2;
export const opScan = 3;
export const opReadModifyWrite = 4;
export const opNames = ['read', 'update', 'insert', 'scan', 'rmw'] as const;
export type OpName = (typeof opNames)[number];

export const workloadNames = ['A', 'B', 'C', 'D', 'E', 'F'] as const;
export type WorkloadName = (typeof workloadNames)[number];
export type Distribution = 'zipfian' | 'latest' | 'uniform';

export interface WorkloadSpec {
  name: WorkloadName;
  summary: string;
  /** Proportions of read, update, insert, scan and read-modify-write, in opNames order. */
  proportions: readonly [number, number, number, number, number];
  distribution: Distribution;
}

/** YCSB's workloads/workloada..f. */
export const workloadSpecs: Record<WorkloadName, WorkloadSpec> = {
  A: {
    name: 'A',
    summary: '50% read, 50% update, zipfian',
    proportions: [0.5, 0.5, 0, 0, 0],
    distribution: 'zipfian',
  },
  B: {
    name: 'B',
    summary: '95% read, 5% update, zipfian',
    proportions: [0.95, 0.05, 0, 0, 0],
    distribution: 'zipfian',
  },
  C: { name: 'C', summary: '100% read, zipfian', proportions: [1, 0, 0, 0, 0], distribution: 'zipfian' },
  D: {
    name: 'D',
    summary: '95% read, 5% insert, latest',
    proportions: [0.95, 0, 0.05, 0, 0],
    distribution: 'latest',
  },
  E: {
    name: 'E',
    summary: '95% scan (1..100 rows, uniform), 5% insert, zipfian',
    proportions: [0, 0, 0.05, 0.95, 0],
    distribution: 'zipfian',
  },
  F: {
    name: 'F',
    summary: '50% read, 50% read-modify-write, zipfian',
    proportions: [0.5, 0, 0, 0, 0.5],
    distribution: 'zipfian',
  },
};

/** YCSB's maxscanlength default; scan lengths are uniform in 1..this (scanlengthdistribution=uniform). */
export const scanLengthMax = 100;

/** What carries over from one workload to the next in a run: inserted keys and the window count. */
export interface RunState {
  /** Keys 0..keyCount-1 exist (the load plus every insert so far); the next insert is keyCount. */
  keyCount: number;
  /** Windows issued so far in the run; a write's value depends on (key, window), see valueOffset. */
  windowSeq: number;
}

export interface OpStream {
  /** 'load' or a workload letter. */
  name: string;
  count: number;
  windowSize: number;
  /** RunState.windowSeq of this stream's first window. */
  firstWindowSeq: number;
  ops: Uint8Array;
  keys: Uint32Array;
  /** Rows asked for by each scan (0 for other operations). */
  scanLengths: Uint8Array;
  /**
   * 1 where a read's value is the same in every store: no other operation of its window writes its key.
   * (Within a window a store may or may not show a write issued before the read, and for stores whose
   * writes run on a thread pool, even one issued after.) Scans are judged after the run, from the last
   * key each returned.
   */
  stable: Uint8Array;
  counts: Record<OpName, number>;
}

/** The load: insert key numbers 0..records-1 in order (their names are hashed: random key order). */
export function loadStream(records: number, windowSize: number, state: RunState): OpStream {
  const stream = emptyStream('load', records, windowSize, state.windowSeq);
  stream.ops.fill(opInsert);
  for (let i = 0; i < records; i++) stream.keys[i] = i;
  stream.counts.insert = records;
  state.keyCount = records;
  state.windowSeq += windowsOf(records, windowSize);
  return stream;
}

/** A per-workload seed, so a workload's stream does not depend on which workloads ran before it. */
function workloadSeed(seed: number, name: WorkloadName): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + name.charCodeAt(0) * 0x27d4eb2f) >>> 0;
}

export function workloadStream(
  spec: WorkloadSpec,
  count: number,
  windowSize: number,
  state: RunState,
  seed: number,
  distribution: Distribution = spec.distribution,
): OpStream {
  const random = randomDoubles(workloadSeed(seed, spec.name));
  const stream = emptyStream(spec.name, count, windowSize, state.windowSeq);
  const cumulative = spec.proportions.map((_, i) =>
    spec.proportions.slice(0, i + 1).reduce((sum, p) => sum + p, 0),
  );
  const total = cumulative[cumulative.length - 1]!;
  // As YCSB's CoreWorkload: the zipfian spans the keys there will be after the expected inserts, and
  // draws of keys not inserted (acknowledged) yet are redrawn.
  const expectedNewKeys = Math.floor(count * spec.proportions[opInsert] * 2);
  const itemCount = state.keyCount + expectedNewKeys;
  const scrambled = distribution === 'zipfian' ? new ScrambledZipfianGenerator(itemCount, random) : undefined;
  const uniform = distribution === 'uniform' ? new UniformGenerator(0, itemCount - 1, random) : undefined;
  const latest =
    distribution === 'latest' ? new SkewedLatestGenerator(state.keyCount - 1, random) : undefined;
  const scanLength = new UniformGenerator(1, scanLengthMax, random);
  const windowWrites = new Map<number, number>();

  for (let from = 0; from < count; from += windowSize) {
    const to = Math.min(count, from + windowSize);
    const acknowledged = state.keyCount - 1;
    let inserted = 0;
    windowWrites.clear();
    for (let i = from; i < to; i++) {
      const u = random() * total;
      let op = 0;
      while (u >= cumulative[op]! && op < cumulative.length - 1) op++;
      let key: number;
      if (op === opInsert) {
        key = state.keyCount + inserted++;
      } else if (latest !== undefined) {
        key = latest.next(acknowledged);
      } else {
        const chooser = (scrambled ?? uniform)!;
        do key = chooser.next();
        while (key > acknowledged);
      }
      stream.ops[i] = op;
      stream.keys[i] = key;
      if (op === opScan) stream.scanLengths[i] = scanLength.next();
      if (op === opUpdate || op === opInsert || op === opReadModifyWrite) {
        windowWrites.set(key, (windowWrites.get(key) ?? 0) + 1);
      }
      stream.counts[opNames[op]!]++;
    }
    for (let i = from; i < to; i++) {
      const op = stream.ops[i]!;
      if (op !== opRead && op !== opReadModifyWrite) continue;
      // A read-modify-write's own write comes after its read, so only other writers make it unstable.
      const ownWrites = op === opReadModifyWrite ? 1 : 0;
      stream.stable[i] = (windowWrites.get(stream.keys[i]!) ?? 0) === ownWrites ? 1 : 0;
    }
    state.keyCount += inserted;
  }
  state.windowSeq += windowsOf(count, windowSize);
  return stream;
}

function windowsOf(count: number, windowSize: number): number {
  return Math.ceil(count / windowSize);
}

function emptyStream(name: string, count: number, windowSize: number, firstWindowSeq: number): OpStream {
  return {
    name,
    count,
    windowSize,
    firstWindowSeq,
    ops: new Uint8Array(count),
    keys: new Uint32Array(count),
    scanLengths: new Uint8Array(count),
    stable: new Uint8Array(count),
    counts: { read: 0, update: 0, insert: 0, scan: 0, rmw: 0 },
  };
}

/**
 * Where in the value pool the value written to `key` in window `windowSeq` starts. It depends on the
 * key and the window only, not on the order of writes: two writes to one key in one window write the
 * same bytes, so the stored value is the same in every store even where a store reorders them.
 */
export function valueOffset(key: number, windowSeq: number, poolMask: number): number {
  let h = Math.imul(key ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(windowSeq + 0x7f4a7c15, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h & poolMask;
}
