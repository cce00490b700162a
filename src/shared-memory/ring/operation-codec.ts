import { assert } from '../assert.js';

/**
 * Encoding of write operations in command-ring records. Little-endian.
 *
 *   put:   kind u8 (1) | 0 u8 | partition u16 | key length u16 | value length u32 | key | value
 *   del:   kind u8 (2) | 0 u8 | partition u16 | key length u16 | key
 *   batch: kind u8 (3) | 0 u8 | partition u16 | entry count u32 | entries
 *          entry: kind u8 (1 put, 2 del) | key length u16 | value length u32 | key | value
 *
 * A batch is applied by its partition's owner as one atomic change.
 */
export const operationPut = 1;
export const operationDel = 2;
export const operationBatch = 3;

export interface BatchEntry {
  kind: typeof operationPut | typeof operationDel;
  key: Uint8Array;
  value: Uint8Array | null;
}

export function putEncodedBytes(key: Uint8Array, value: Uint8Array): number {
  return 10 + key.length + value.length;
}

export function delEncodedBytes(key: Uint8Array): number {
  return 6 + key.length;
}

export function batchEncodedBytes(entries: readonly BatchEntry[]): number {
  let bytes = 8;
  for (const entry of entries) bytes += 7 + entry.key.length + (entry.value?.length ?? 0);
  return bytes;
}

export function encodePut(
  u8: Uint8Array,
  at: number,
  partition: number,
  key: Uint8Array,
  value: Uint8Array,
): void {
  u8[at] = operationPut;
  u8[at + 1] = 0;
  write16(u8, at + 2, partition);
  write16(u8, at + 4, key.length);
  write32(u8, at + 6, value.length);
  u8.set(key, at + 10);
  u8.set(value, at + 10 + key.length);
}

export function encodeDel(u8: Uint8Array, at: number, partition: number, key: Uint8Array): void {
  u8[at] = operationDel;
  u8[at + 1] = 0;
  write16(u8, at + 2, partition);
  write16(u8, at + 4, key.length);
  u8.set(key, at + 6);
}

export function encodeBatch(
  u8: Uint8Array,
  at: number,
  partition: number,
  entries: readonly BatchEntry[],
): void {
  u8[at] = operationBatch;
  u8[at + 1] = 0;
  write16(u8, at + 2, partition);
  write32(u8, at + 4, entries.length);
  let offset = at + 8;
  for (const entry of entries) {
    const valueBytes = entry.value?.length ?? 0;
    u8[offset] = entry.kind;
    write16(u8, offset + 1, entry.key.length);
    write32(u8, offset + 3, valueBytes);
    u8.set(entry.key, offset + 7);
    if (entry.value !== null) u8.set(entry.value, offset + 7 + entry.key.length);
    offset += 7 + entry.key.length + valueBytes;
  }
}

/** A decoded operation; keys and values are views into the buffer it was decoded from. */
export interface DecodedOperation {
  kind: number;
  partition: number;
  entries: BatchEntry[];
  /** Offset just past the operation's encoding (records may carry alignment padding after it). */
  end: number;
}

/**
 * Decodes one operation. The owner trusts its rings (they are written by this library only), but
 * every length is still checked against `end`, so a bug shows up as an assertion, not as garbage.
 */
export function decodeOperation(u8: Uint8Array, at: number, end: number): DecodedOperation {
  const kind = u8[at]!;
  const partition = read16(u8, at + 2);
  if (kind === operationPut) {
    const keyBytes = read16(u8, at + 4);
    const valueBytes = read32(u8, at + 6);
    assert(at + 10 + keyBytes + valueBytes <= end, 'put fits its record');
    const key = u8.subarray(at + 10, at + 10 + keyBytes);
    const value = u8.subarray(at + 10 + keyBytes, at + 10 + keyBytes + valueBytes);
    return {
      kind,
      partition,
      entries: [{ kind: operationPut, key, value }],
      end: at + 10 + keyBytes + valueBytes,
    };
  }
  if (kind === operationDel) {
    const keyBytes = read16(u8, at + 4);
    assert(at + 6 + keyBytes <= end, 'del fits its record');
    return {
      kind,
      partition,
      entries: [{ kind: operationDel, key: u8.subarray(at + 6, at + 6 + keyBytes), value: null }],
      end: at + 6 + keyBytes,
    };
  }
  assert(kind === operationBatch, `known operation kind (got ${kind})`);
  const count = read32(u8, at + 4);
  const entries: BatchEntry[] = [];
  let offset = at + 8;
  for (let i = 0; i < count; i++) {
    const entryKind = u8[offset]!;
    const keyBytes = read16(u8, offset + 1);
    const valueBytes = read32(u8, offset + 3);
    assert(entryKind === operationPut || entryKind === operationDel, 'known batch entry kind');
    assert(offset + 7 + keyBytes + valueBytes <= end, 'batch entry fits its record');
    const key = u8.subarray(offset + 7, offset + 7 + keyBytes);
    const value =
      entryKind === operationPut
        ? u8.subarray(offset + 7 + keyBytes, offset + 7 + keyBytes + valueBytes)
        : null;
    entries.push({ kind: entryKind, key, value });
    offset += 7 + keyBytes + valueBytes;
  }
  return { kind, partition, entries, end: offset };
}

/**
 * The entries of the operation encoded at u8[at, end), one at a time: each is a new object whose key
 * and value are views into `u8`, so an operation of a million entries is walked without a decoded
 * copy of it (a caller that keeps the entries keeps only those it holds). Lengths are checked as in
 * `decodeOperation`.
 */
export function* encodedEntries(
  u8: Uint8Array,
  at: number,
  end: number,
): Generator<BatchEntry, void, undefined> {
  const kind = u8[at]!;
  if (kind !== operationBatch) {
    yield* decodeOperation(u8, at, end).entries;
    return;
  }
  const count = read32(u8, at + 4);
  let offset = at + 8;
  for (let i = 0; i < count; i++) {
    const entryKind = u8[offset]!;
    const keyBytes = read16(u8, offset + 1);
    const valueBytes = read32(u8, offset + 3);
    assert(entryKind === operationPut || entryKind === operationDel, 'known batch entry kind');
    assert(offset + 7 + keyBytes + valueBytes <= end, 'batch entry fits its record');
    const keyEnd = offset + 7 + keyBytes;
    yield {
      kind: entryKind,
      key: u8.subarray(offset + 7, keyEnd),
      value: entryKind === operationPut ? u8.subarray(keyEnd, keyEnd + valueBytes) : null,
    };
    offset = keyEnd + valueBytes;
  }
}

/** The offset just past the operation encoded at u8[at, end), found without decoding its entries. */
export function encodedOperationEnd(u8: Uint8Array, at: number, end: number): number {
  const kind = u8[at]!;
  if (kind === operationPut) return at + 10 + read16(u8, at + 4) + read32(u8, at + 6);
  if (kind === operationDel) return at + 6 + read16(u8, at + 4);
  assert(kind === operationBatch, `known operation kind (got ${kind})`);
  const count = read32(u8, at + 4);
  let offset = at + 8;
  for (let i = 0; i < count; i++) offset += 7 + read16(u8, offset + 1) + read32(u8, offset + 3);
  assert(offset <= end, 'the operation fits its record');
  return offset;
}

function write16(u8: Uint8Array, at: number, value: number): void {
  u8[at] = value;
  u8[at + 1] = value >>> 8;
}

function write32(u8: Uint8Array, at: number, value: number): void {
  u8[at] = value;
  u8[at + 1] = value >>> 8;
  u8[at + 2] = value >>> 16;
  u8[at + 3] = value >>> 24;
}

export function read16(u8: Uint8Array, at: number): number {
  return u8[at]! | (u8[at + 1]! << 8);
}

export function read32(u8: Uint8Array, at: number): number {
  return (u8[at]! | (u8[at + 1]! << 8) | (u8[at + 2]! << 16) | (u8[at + 3]! << 24)) >>> 0;
}
