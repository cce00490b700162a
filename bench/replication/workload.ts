/**
 * The bench:replication workload: bench:durability's random 16-byte keys with 100-byte random values,
 * regenerated from the seed wherever they are needed (the writing child, and the parent that checks
 * the follower or the new leader against them), and the shape of every database the bench opens.
 */
import type { Database } from '../../src/index.js';
import { buildPutWorkload, type PutWorkload } from '../durability/workload.js';

export { keyBytes, valueBytes } from '../durability/workload.js';
export type { PutWorkload };

/** Every database of the bench, replicated or not, has this shape, so only the durability differs. */
export const partitions = 16;
export const workers = 2;

/** The put runs: 1 outstanding (the latency of one commit) and 64 (group commit). */
export const concurrencies = [1, 64] as const;

export interface PutCounts {
  /** Timed puts at 1 outstanding and at 64 outstanding. */
  serial: number;
  concurrent: number;
  /** Untimed puts before the clock starts (the first publishes, the JIT), at the run's concurrency. */
  warmup: number;
}

export const putCountsDefault: PutCounts = { serial: 5_000, concurrent: 20_000, warmup: 1_000 };
export const putCountsQuick: PutCounts = { serial: 500, concurrent: 4_000, warmup: 200 };

export function timedPuts(counts: PutCounts, concurrency: number): number {
  return concurrency === 1 ? counts.serial : counts.concurrent;
}

/** A put run probes the follower's lag at every this-many-th acknowledged put (replicated runs only). */
export const probeEvery = 16;

/** The failover: the child's leader lease, its writers, and when it is killed. */
export const failoverLeaseTtlMs = 2_000;
export const failoverLanes = 4;
export const failoverKillAfterDefault = 2_000;
export const failoverKillAfterQuick = 300;
export const failoverRoundsDefault = 3;
/**
 * Keys the failover child may write: four times what it must have acknowledged when it is killed, so
 * it never runs out in the moment between its last counted line and the kill. If it did, it would
 * stop writing and wait to be killed, and the round would still be measured.
 */
export function failoverKeys(killAfter: number): number {
  return killAfter * 4;
}

/** Keys and values for `puts` writes; the same for every reader of the same seed. */
export function putWorkload(puts: number, seed: number): PutWorkload {
  return buildPutWorkload('random', puts, seed);
}

/** The options every database of the bench opens with (replication added where it replicates). */
export function shape(): { partitions: number; workers: number } {
  return { partitions, workers };
}

/**
 * The entries of the default store (db.count()). Not stats().entries: that counts every key in the
 * partitions, and a follower's hold one replication position key per partition besides the data.
 */
export function userRows(db: Database): number {
  return db.count();
}
