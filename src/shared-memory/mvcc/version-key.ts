/**
 * Keys and values of the version store, a second B+Tree per partition that keeps the versions an
 * open snapshot may still read after the key's current version (the head, in the main tree) replaced
 * them.
 *
 *   key:   key length u16 BE | key | (2^53 - 1 - commit timestamp) u64 BE
 *   value: kind u8 (0 value, 1 tombstone) | superseded at u64 LE | value bytes
 *
 * "Superseded at" is the commit timestamp of the version that replaced this one (0 while a prepared
 * transaction's intent replaces it): cleanup removes a version only if it still carries the
 * timestamp cleanup was scheduled for, so a newer entry under the same key is never taken for it.
 *
 * The length prefix keeps one key's versions together (no other key's versions sort between them),
 * and the inverted timestamp sorts them newest first, so "the newest version at or before T" is the
 * first entry at or after versionKey(key, T).
 */
export const versionValue = 0;
export const versionTombstone = 1;
const timestampMax = 2 ** 53 - 1;

export function versionKey(key: Uint8Array, timestamp: number): Uint8Array {
  const out = new Uint8Array(key.length + 10);
  out[0] = key.length >>> 8;
  out[1] = key.length & 0xff;
  out.set(key, 2);
  const inverted = timestampMax - Math.min(timestamp, timestampMax);
  const high = Math.floor(inverted / 0x1_0000_0000);
  const low = inverted >>> 0;
  const at = key.length + 2;
  out[at] = high >>> 24;
  out[at + 1] = high >>> 16;
  out[at + 2] = high >>> 8;
  out[at + 3] = high;
  out[at + 4] = low >>> 24;
  out[at + 5] = low >>> 16;
  out[at + 6] = low >>> 8;
  out[at + 7] = low;
  return out;
}

/** True if `stored` is a version key of `key`. */
export function isVersionOf(stored: Uint8Array, key: Uint8Array): boolean {
  if (
    stored.length !== key.length + 10 ||
    stored[0] !== key.length >>> 8 ||
    stored[1] !== (key.length & 0xff)
  )
    return false;
  for (let i = 0; i < key.length; i++) if (stored[i + 2] !== key[i]) return false;
  return true;
}

/** The commit timestamp a version key carries. */
export function versionTimestamp(stored: Uint8Array): number {
  const at = stored.length - 8;
  const high =
    ((stored[at]! << 24) | (stored[at + 1]! << 16) | (stored[at + 2]! << 8) | stored[at + 3]!) >>> 0;
  const low =
    ((stored[at + 4]! << 24) | (stored[at + 5]! << 16) | (stored[at + 6]! << 8) | stored[at + 7]!) >>> 0;
  return timestampMax - (high * 0x1_0000_0000 + low);
}

/** A stored version's value starts with its kind and the timestamp it was superseded at. */
export const versionValueHeaderBytes = 9;

export function encodeVersionValue(value: Uint8Array | null, supersededAt: number): Uint8Array {
  const out = new Uint8Array((value?.length ?? 0) + versionValueHeaderBytes);
  out[0] = value === null ? versionTombstone : versionValue;
  const view = new DataView(out.buffer);
  view.setUint32(1, supersededAt >>> 0, true);
  view.setUint32(5, Math.floor(supersededAt / 0x1_0000_0000), true);
  if (value !== null) out.set(value, versionValueHeaderBytes);
  return out;
}

/** The value a stored version holds, or null for a tombstone. */
export function decodeVersionValue(stored: Buffer): Buffer | null {
  return stored[0] === versionTombstone ? null : stored.subarray(versionValueHeaderBytes);
}

/** The commit timestamp of the version that replaced a stored one (0: a prepared intent). */
export function versionSupersededAt(stored: Buffer): number {
  return stored.readUInt32LE(1) + stored.readUInt32LE(5) * 0x1_0000_0000;
}
