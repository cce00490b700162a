/**
 * The bench:engine workload: keys, values and orders, all regenerated from one seed in every child
 * process, so each store sees the same bytes in the same order and the checksums must agree.
 */
import { permutation, randomRecords } from '../lib/rng.js';

export const keyBytes = 16;
export const valueBytes = 100;
/** Writes in flight before the writer awaits them all (lightning-db puts, lmdb-js puts and load chunks). */
export const writeWindow = 10_000;
export const rangeScans = 10_000;
export const rangeRowsPerScan = 100;
/** Untimed gets and scans before the timed ones, so each store's read path is JIT-compiled first. */
export const warmupGetsMax = 20_000;
export const warmupScans = 200;

/** Offsets added to the seed so every stream is independent but reproducible. */
const seedOffsets = {
  keys: 0,
  loadValues: 1,
  putValues: 2,
  putOrder: 3,
  getOrder: 4,
  warmupOrder: 5,
  rangeStarts: 6,
  warmupStarts: 7,
} as const;

export interface Workload {
  records: number;
  /** N keys as 16-byte views into one buffer; built once, before any clock starts. */
  keys: Buffer[];
  /** The value each key gets in the load phase. */
  loadValues: Buffer;
  /** The value each key gets in the overwrite phase (so the get checksum proves the overwrites landed). */
  putValues: Buffer;
  /** Overwrite order: every key exactly once, shuffled. */
  putOrder: Uint32Array;
  getOrder: Uint32Array;
  warmupOrder: Uint32Array;
  /** Range start keys: fresh random keys (almost surely absent), so each scan starts mid-leaf somewhere. */
  rangeStarts: Buffer[];
  warmupStarts: Buffer[];
}

function views(bytes: Buffer, width: number): Buffer[] {
  const count = bytes.length / width;
  const out = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) out[i] = bytes.subarray(i * width, (i + 1) * width);
  return out;
}

export function buildWorkload(records: number, seed: number): Workload {
  return {
    records,
    keys: views(randomRecords(records, keyBytes, seed + seedOffsets.keys), keyBytes),
    loadValues: randomRecords(records, valueBytes, seed + seedOffsets.loadValues),
    putValues: randomRecords(records, valueBytes, seed + seedOffsets.putValues),
    putOrder: permutation(records, seed + seedOffsets.putOrder),
    getOrder: permutation(records, seed + seedOffsets.getOrder),
    warmupOrder: permutation(records, seed + seedOffsets.warmupOrder),
    rangeStarts: views(randomRecords(rangeScans, keyBytes, seed + seedOffsets.rangeStarts), keyBytes),
    warmupStarts: views(randomRecords(warmupScans, keyBytes, seed + seedOffsets.warmupStarts), keyBytes),
  };
}

/**
 * Value views for one write phase, in the order they will be written, built before the clock starts so
 * the timed loop creates no objects of its own.
 */
export function valueViews(values: Buffer, order: Uint32Array | null, count: number): Buffer[] {
  const out = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) {
    const index = order === null ? i : order[i];
    out[i] = values.subarray(index * valueBytes, (index + 1) * valueBytes);
  }
  return out;
}

/**
 * Folds every byte into an order-sensitive 32-bit hash (a Fletcher sum plus a multiply per call). It
 * runs inside the timed read loops on purpose: reading every returned byte makes each store pay for
 * really producing its value, and the cost is the same for every store.
 */
export function foldBytes(hash: number, bytes: Uint8Array): number {
  let a = 0;
  let b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + bytes[i]) | 0;
    b = (b + a) | 0;
  }
  return Math.imul(Math.imul(hash ^ a, 0x9e3779b1) ^ b ^ bytes.length, 0x85ebca6b);
}

/** Mutable so a scan can fold its rows without allocating a result object per scan. */
export interface ScanTotals {
  rows: number;
  hash: number;
}
