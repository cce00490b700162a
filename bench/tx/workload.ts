/**
 * The bench:tx workload: accounts, and three streams of transactions regenerated from one seed in
 * every child process, so each store runs the same transactions in the same order.
 *
 *   local  a transfer between two accounts that lightning-db keeps in one partition
 *   cross  a transfer between two accounts in different partitions (a two-phase commit there)
 *   rmw    YCSB workload F's read-modify-write: read one account, write it back plus one; the account
 *          is drawn from YCSB's scrambled zipfian (skew 0.99), so hot accounts collide
 *
 * Every store keeps the same keys and decimal balances. A transfer moves its amount only if the source
 * holds it, so the total balance never changes; a read-modify-write adds exactly one. The child checks
 * both after each phase: a store that answers fast and wrong is caught.
 */
import { createPartitionRouter } from '../../src/main/partition-router.js';
import { mulberry32 } from '../lib/rng.js';
import { randomDoubles, ScrambledZipfianGenerator } from '../ycsb/generators.js';

export const phaseNames = ['local', 'cross', 'rmw'] as const;
export type PhaseName = (typeof phaseNames)[number];

export const initialBalance = 1000;
/** Amounts of 1 to 10 against balances of 1,000: a transfer practically never finds too little. */
export const amountMax = 10;
/** The partition count lightning-db runs with; the local/cross split follows its routing. */
export const lightningPartitions = 16;

export function accountKey(index: number): string {
  return `acct:${index.toString().padStart(7, '0')}`;
}

export interface Workload {
  readonly accounts: number;
  readonly keys: string[];
  /** Per phase, the transactions in order: for transfers [from, to, amount] triples, for rmw one index. */
  readonly local: Int32Array;
  readonly cross: Int32Array;
  readonly rmw: Int32Array;
}

/** Builds `count` transactions of each phase for `accounts` accounts; O(accounts + count). */
export async function buildWorkload(accounts: number, count: number, seed: number): Promise<Workload> {
  const keys = Array.from({ length: accounts }, (_, i) => accountKey(i));
  const router = await createPartitionRouter(lightningPartitions);
  const partitionOf = new Int32Array(accounts);
  const members: number[][] = Array.from({ length: lightningPartitions }, () => []);
  for (let i = 0; i < accounts; i++) {
    const partition = router.partitionOf(Buffer.from(keys[i]!));
    partitionOf[i] = partition;
    members[partition]!.push(i);
  }
  const random = mulberry32(seed);
  const below = (n: number): number => Math.floor((random() / 0x1_0000_0000) * n);

  const local = new Int32Array(count * 3);
  const cross = new Int32Array(count * 3);
  for (let t = 0; t < count; t++) {
    const from = below(accounts);
    const peers = members[partitionOf[from]!]!;
    let to = from;
    while (to === from) to = peers[below(peers.length)]!;
    local.set([from, to, 1 + below(amountMax)], t * 3);
    const source = below(accounts);
    let target = source;
    while (partitionOf[target] === partitionOf[source]) target = below(accounts);
    cross.set([source, target, 1 + below(amountMax)], t * 3);
  }
  const zipfian = new ScrambledZipfianGenerator(accounts, randomDoubles(seed + 1));
  const rmw = new Int32Array(count);
  for (let t = 0; t < count; t++) rmw[t] = zipfian.next();
  return { accounts, keys, local, cross, rmw };
}
