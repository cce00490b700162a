/**
 * Keys chosen by the partition they route to, so a test can say "two keys in one partition" or "in
 * different partitions" and mean it.
 */
import { createPartitionRouter } from '../../src/main/partition-router.js';

export interface KeyPicker {
  partitionOf(key: string): number;
  /** `count` keys `<prefix><n>` that all route to one partition. */
  samePartition(prefix: string, count: number): string[];
  /** `count` keys `<prefix><n>` in pairwise different partitions (count <= partitions). */
  differentPartitions(prefix: string, count: number): string[];
}

export async function keyPicker(partitions: number): Promise<KeyPicker> {
  const router = await createPartitionRouter(partitions);
  const partitionOf = (key: string): number => router.partitionOf(Buffer.from(key));
  return {
    partitionOf,
    samePartition(prefix, count) {
      const target = partitionOf(`${prefix}0`);
      const keys: string[] = [];
      for (let n = 0; keys.length < count; n++) {
        if (partitionOf(`${prefix}${n}`) === target) keys.push(`${prefix}${n}`);
      }
      return keys;
    },
    differentPartitions(prefix, count) {
      if (count > partitions) throw new Error(`${count} keys in different partitions of ${partitions}`);
      const seen = new Set<number>();
      const keys: string[] = [];
      for (let n = 0; keys.length < count; n++) {
        const partition = partitionOf(`${prefix}${n}`);
        if (seen.has(partition)) continue;
        seen.add(partition);
        keys.push(`${prefix}${n}`);
      }
      return keys;
    },
  };
}
