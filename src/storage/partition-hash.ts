/**
 * The hash that maps a key to its partition (hash of the key bytes, seed 0, mod the partition count).
 * It is part of a database's format, fixed at creation and recorded in LIGHTNING.json and in every
 * partition's manifest: a key must always route to the partition holding it.
 *
 * - 'xxh32' (databases created since format version 3): computed in JavaScript over the key where
 *   it lies, with 32-bit integer arithmetic, so routing a read or a write allocates nothing.
 * - 'xxh64' (databases created before): xxh64 through xxhash-wasm, which copies the key into wasm
 *   memory and returns a BigInt. Such databases keep it; dump and load one into a new directory to
 *   move it to 'xxh32'.
 */
export type PartitionHash = 'xxh32' | 'xxh64';

/** The hash of a database created now. */
export const newDatabasePartitionHash: PartitionHash = 'xxh32';

/** The hash of databases whose files predate the field (LIGHTNING.json v1–2, manifests v1–2). */
export const legacyPartitionHash: PartitionHash = 'xxh64';

export function isPartitionHash(value: unknown): value is PartitionHash {
  return value === 'xxh32' || value === 'xxh64';
}
