import xxhash from 'xxhash-wasm';
import { newDatabasePartitionHash, type PartitionHash } from '../storage/partition-hash.js';
import { xxh32 } from './xxh32.js';

/**
 * Maps a key to its partition: hash(key bytes, seed 0) mod P, with the database's partition hash
 * (see storage/partition-hash.ts). Part of the on-disk format: changing it would move every key.
 */
export interface PartitionRouter {
  partitionOf(key: Uint8Array): number;
}

export async function createPartitionRouter(
  partitions: number,
  hash: PartitionHash = newDatabasePartitionHash,
): Promise<PartitionRouter> {
  if (partitions === 1) return { partitionOf: () => 0 };
  if (hash === 'xxh32') return { partitionOf: (key) => xxh32(key) % partitions };
  const { h64Raw } = await xxhash();
  const divisor = BigInt(partitions);
  return { partitionOf: (key) => Number(h64Raw(key) % divisor) };
}
