/**
 * The bench:durability workload: N 16-byte keys (sequential or random) with 100-byte random values,
 * regenerated from the seed in every child, so every store writes the same bytes in the same order.
 */
import { keyBytes, valueBytes, valueViews } from '../engine/workload.js';
import { randomRecords } from '../lib/rng.js';

export { keyBytes, valueBytes };

/** Callers issue this many put() calls, await them all, and repeat (the brief's "windows of 1,000"). */
export const putWindow = 1_000;
/** The recovery load (untimed for the result that matters) uses bigger windows: it only has to be quick. */
export const loadWindow = 10_000;
/** Keys read back after the writes, spread evenly over the whole write order (first and last included). */
export const spotCheckSamples = 1_000;

export const putPhases = ['sequential', 'random'] as const;
export type PutPhase = (typeof putPhases)[number];

/** Offsets added to the seed so the streams are independent but reproducible. */
const seedOffsets = { randomKeys: 0, values: 1 } as const;

export interface PutWorkload {
  records: number;
  /** Keys in write order, as 16-byte views into one buffer, built before any clock starts. */
  keys: Buffer[];
  /** values[i] is the value of keys[i]. */
  values: Buffer[];
}

/**
 * Sequential keys: twelve zero bytes, then the index as a big-endian uint32, so write order is
 * ascending byte order (the append pattern of time-ordered ids). Random keys: 16 random bytes each, so
 * write order is a random key order.
 */
export function buildKeys(phase: PutPhase, records: number, seed: number): Buffer {
  if (phase === 'random') return randomRecords(records, keyBytes, seed + seedOffsets.randomKeys);
  if (records > 0xffff_ffff) throw new Error('sequential keys hold the index in 32 bits');
  const bytes = Buffer.alloc(records * keyBytes);
  for (let i = 0; i < records; i++) bytes.writeUInt32BE(i, i * keyBytes + keyBytes - 4);
  return bytes;
}

export function buildPutWorkload(phase: PutPhase, records: number, seed: number): PutWorkload {
  const keyBuffer = buildKeys(phase, records, seed);
  const keys = new Array<Buffer>(records);
  for (let i = 0; i < records; i++) keys[i] = keyBuffer.subarray(i * keyBytes, (i + 1) * keyBytes);
  const values = valueViews(randomRecords(records, valueBytes, seed + seedOffsets.values), null, records);
  return { records, keys, values };
}

/** Indices of the keys read back after the writes: evenly spaced, always including the first and last. */
export function spotCheckIndices(records: number): number[] {
  const samples = Math.min(records, spotCheckSamples);
  if (samples <= 1) return records === 0 ? [] : [0];
  const indices = new Array<number>(samples);
  for (let i = 0; i < samples; i++) indices[i] = Math.round((i * (records - 1)) / (samples - 1));
  return indices;
}
