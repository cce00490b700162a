import xxhash from 'xxhash-wasm';

/**
 * Maps a key to its partition: xxh64(key bytes, seed 0) mod P. Part of the on-disk format: changing
 * it would move every key, so it changes only with a format version.
 */
export interface PartitionRouter {
  partitionOf(key: Uint8Array): number;
}

export async function createPartitionRouter(partitions: number): Promise<PartitionRouter> {
  const { h64Raw } = await xxhash();
  const divisor = BigInt(partitions);
  if (partitions === 1) return { partitionOf: () => 0 };
  return { partitionOf: (key) => Number(h64Raw(key) % divisor) };
}
