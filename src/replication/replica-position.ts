import { storeRegionPrefix } from '../main/stores/store-keys.js';
import { xxh32 } from '../main/xxh32.js';
import { LightningError } from '../shared-memory/errors.js';

/**
 * Where a database stands in its replication log, kept per partition INSIDE the partition, under a
 * reserved key written in the same atomic batch as the records it accounts for. So the position is
 * logged, synced, checkpointed, backed up and recovered with the data it describes, by the same code,
 * and can never be ahead of it or behind it: after any crash, the follower resumes exactly after what
 * its partition holds. Prepared two-phase-commit writes waiting for their decision are kept there
 * too, for the same reason.
 *
 * The key lies in the named stores' region under store id 0xFFFF, which no store is given
 * (store-keys.ts), followed by "replica", the partition (u32 BE) and a 4-byte suffix chosen so that
 * the key hashes to its own partition. The value (little-endian):
 *
 *     0  magic "LRPS"                    4 bytes
 *     4  format version                  u32 (1)
 *     8  stream sequence                 u64 (of the message whose records were applied last)
 *    16  sequence                        u64 (the partition's replication sequence applied)
 *    24  term                            u64 (of that message)
 *    32  prepared count                  u32
 *    36  prepared, each:                 transaction id u64 | term u64 | length u32 | writes
 *     .  checksum                        u32 = xxh32(every byte before it)
 */

export const replicaStoreId = 0xffff;
const positionMagic = 0x53_50_52_4c; // "LRPS"
export const positionFormatVersion = 1;
const label = new TextEncoder().encode('replica');

/** A prepared transaction's writes (a batch operation) held until its decision arrives. */
export interface HeldPrepare {
  readonly term: number;
  readonly writes: Uint8Array;
}

export interface ReplicaPosition {
  streamSequence: number;
  sequence: number;
  term: number;
  readonly prepared: Map<number, HeldPrepare>;
}

export function emptyPosition(): ReplicaPosition {
  return { streamSequence: 0, sequence: 0, term: 0, prepared: new Map() };
}

/** The prefix of every key of the replication region: readers of the shipped records skip it. */
export const replicaKeyPrefix: Uint8Array = Uint8Array.of(...storeRegionPrefix, 0xff, 0xff);

export function isReplicaKey(key: Uint8Array): boolean {
  if (key.length < replicaKeyPrefix.length) return false;
  for (let i = 0; i < replicaKeyPrefix.length; i++) if (key[i] !== replicaKeyPrefix[i]) return false;
  return true;
}

/**
 * The position key of every partition: each hashes to its own partition (`partitionOf`), found by
 * trying suffixes; with P partitions that takes about P tries per partition, once per open.
 */
export function positionKeys(partitions: number, partitionOf: (key: Uint8Array) => number): Uint8Array[] {
  return Array.from({ length: partitions }, (_, partition) => {
    const key = new Uint8Array(replicaKeyPrefix.length + label.length + 8);
    key.set(replicaKeyPrefix);
    key.set(label, replicaKeyPrefix.length);
    const view = new DataView(key.buffer);
    const at = replicaKeyPrefix.length + label.length;
    view.setUint32(at, partition);
    for (let suffix = 0; suffix < 0xffff_ffff; suffix++) {
      view.setUint32(at + 4, suffix);
      if (partitionOf(key) === partition) return key;
    }
    throw new LightningError('ERR_INTERNAL', `no position key hashes to partition ${partition}`);
  });
}

export function encodePosition(position: ReplicaPosition): Uint8Array {
  let bytes = 36 + 4;
  for (const held of position.prepared.values()) bytes += 20 + held.writes.length;
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, positionMagic, true);
  view.setUint32(4, positionFormatVersion, true);
  view.setBigUint64(8, BigInt(position.streamSequence), true);
  view.setBigUint64(16, BigInt(position.sequence), true);
  view.setBigUint64(24, BigInt(position.term), true);
  view.setUint32(32, position.prepared.size, true);
  let offset = 36;
  for (const [transactionId, held] of position.prepared) {
    view.setBigUint64(offset, BigInt(transactionId), true);
    view.setBigUint64(offset + 8, BigInt(held.term), true);
    view.setUint32(offset + 16, held.writes.length, true);
    out.set(held.writes, offset + 20);
    offset += 20 + held.writes.length;
  }
  view.setUint32(offset, xxh32(out.subarray(0, offset)), true);
  return out;
}

export function decodePosition(bytes: Uint8Array, partition: number): ReplicaPosition {
  const fail = (why: string): never => {
    throw new LightningError('ERR_CORRUPTION', `partition ${partition}'s replication position: ${why}`);
  };
  if (bytes.length < 40) fail(`${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== positionMagic) fail('bad magic');
  const version = view.getUint32(4, true);
  if (version !== positionFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `partition ${partition}'s replication position has format version ${version}; this build reads ${positionFormatVersion}`,
    );
  }
  const end = bytes.length - 4;
  if (view.getUint32(end, true) !== xxh32(bytes.subarray(0, end))) fail('checksum mismatch');
  const u64 = (at: number): number => Number(view.getBigUint64(at, true));
  const prepared = new Map<number, HeldPrepare>();
  let offset = 36;
  for (let i = view.getUint32(32, true); i > 0; i--) {
    if (offset + 20 > end) fail('prepared writes run past the value');
    const length = view.getUint32(offset + 16, true);
    if (offset + 20 + length > end) fail('prepared writes run past the value');
    prepared.set(u64(offset), {
      term: u64(offset + 8),
      writes: bytes.slice(offset + 20, offset + 20 + length),
    });
    offset += 20 + length;
  }
  if (offset !== end) fail('trailing bytes');
  return { streamSequence: u64(8), sequence: u64(16), term: u64(24), prepared };
}
