import { compareBytes } from '../bytes.js';
import { pageHeaderBytes, slotBytes } from '../limits.js';
import { pCellStart, pCount, pFragmented } from '../page-layout.js';

/**
 * Nodes are slotted pages: after the page header comes an array of u16 slots (cell offsets, in key
 * order), and cells grow down from the end of the page. Little-endian, byte-assembled: cells are not
 * aligned.
 *
 * Leaf cell:     flags u8 | key length u16 | value length u32 | [timestamp u64, if flagged] | key
 *                | value bytes, or the first overflow page id (u32) if flagged
 *
 * The timestamp is the commit timestamp of the version the cell holds, or, on a write intent, the
 * reference of the transaction that installed it. A cell without one was written when no snapshot
 * could tell its age, so every reader sees it. A tombstone has no value: the key was deleted at the
 * timestamp, and the cell stays only while an open snapshot may still see the version before it.
 * Interior cell: key length u16 | child page id u32 | key
 *
 * An interior node with n cells has n + 1 children: cell i's child holds keys <= its key (and above
 * the previous cell's key); the page's link field is the upper child, for keys above the last cell.
 */
export const cellFlagOverflow = 1;
/** The cell carries a u64 timestamp (commit timestamp, or transaction reference with an intent). */
export const cellFlagTimestamp = 2;
/** The key was deleted at the cell's timestamp; the cell has no value. */
export const cellFlagTombstone = 4;
/** A prepared transaction's write: its fate is in the transaction status table. */
export const cellFlagIntent = 8;
export const cellFlagsKnown = cellFlagOverflow | cellFlagTimestamp | cellFlagTombstone | cellFlagIntent;
/** Flags that only the MVCC layer sets. */
export const cellFlagsMvcc = cellFlagTimestamp | cellFlagTombstone | cellFlagIntent;

export const leafFlagsOffset = 0;
export const leafKeyLengthOffset = 1;
export const leafValueLengthOffset = 3;
export const interiorKeyLengthOffset = 0;
export const interiorChildOffset = 2;
export const interiorKeyOffset = 6;

export function get16(u8: Uint8Array, offset: number): number {
  return u8[offset]! | (u8[offset + 1]! << 8);
}

export function get32(u8: Uint8Array, offset: number): number {
  return (u8[offset]! | (u8[offset + 1]! << 8) | (u8[offset + 2]! << 16) | (u8[offset + 3]! << 24)) >>> 0;
}

/** A key's head: its first four bytes as a big-endian u32, zero-padded; orders like the key. */
export function keyHead(u8: Uint8Array, start: number, length: number): number {
  if (length >= 4)
    return ((u8[start]! << 24) | (u8[start + 1]! << 16) | (u8[start + 2]! << 8) | u8[start + 3]!) >>> 0;
  let head = 0;
  for (let i = 0; i < 4; i++) head = (head << 8) | (i < length ? u8[start + i]! : 0);
  return head >>> 0;
}

/**
 * Compares the stored key u8[start, start+length) with `key` once their heads compared equal: the
 * first four bytes of both are then equal when both have at least four, and are skipped. Keys often
 * share a prefix ("user", "order:"), so a search's comparisons mostly come here.
 */
export function compareAfterEqualHeads(
  u8: Uint8Array,
  start: number,
  length: number,
  key: Uint8Array,
): number {
  if (length >= 4 && key.length >= 4) return compareBytes(u8, start + 4, length - 4, key, 4, key.length - 4);
  return compareBytes(u8, start, length, key, 0, key.length);
}

/** The head stored in slot `index` of the node at `base`. */
export function slotHeadAt(u8: Uint8Array, base: number, index: number): number {
  const slot = base + pageHeaderBytes + index * slotBytes + 2;
  return ((u8[slot]! << 24) | (u8[slot + 1]! << 16) | (u8[slot + 2]! << 8) | u8[slot + 3]!) >>> 0;
}

export function setSlot(u8: Uint8Array, base: number, index: number, cellOffset: number, head: number): void {
  const slot = base + pageHeaderBytes + index * slotBytes;
  u8[slot] = cellOffset;
  u8[slot + 1] = cellOffset >>> 8;
  u8[slot + 2] = head >>> 24;
  u8[slot + 3] = head >>> 16;
  u8[slot + 4] = head >>> 8;
  u8[slot + 5] = head;
}

export function set16(u8: Uint8Array, offset: number, value: number): void {
  u8[offset] = value;
  u8[offset + 1] = value >>> 8;
}

export function set32(u8: Uint8Array, offset: number, value: number): void {
  u8[offset] = value;
  u8[offset + 1] = value >>> 8;
  u8[offset + 2] = value >>> 16;
  u8[offset + 3] = value >>> 24;
}

/** Bytes of optional MVCC fields a leaf cell with these flags carries. */
export function leafMvccBytes(flags: number): number {
  return (flags & cellFlagTimestamp) << 2;
}

/** Size of a leaf cell holding a key and either an inline value or an overflow reference. */
export function leafCellBytes(flags: number, keyBytes: number, valueBytes: number): number {
  return 7 + leafMvccBytes(flags) + keyBytes + (flags & cellFlagOverflow ? 4 : valueBytes);
}

/** Reads the u64 timestamp of a leaf cell that carries one, as a number (timestamps stay below 2^53). */
export function leafTimestampAt(u8: Uint8Array, cell: number): number {
  return get32(u8, cell + 7) + get32(u8, cell + 11) * 0x1_0000_0000;
}

export function setLeafTimestamp(u8: Uint8Array, cell: number, timestamp: number): void {
  set32(u8, cell + 7, timestamp >>> 0);
  set32(u8, cell + 11, Math.floor(timestamp / 0x1_0000_0000));
}

export function interiorCellBytes(keyBytes: number): number {
  return interiorKeyOffset + keyBytes;
}

/** Absolute offset of cell `index` of the node at `base`. Trusted: writer and checker only. */
export function cellAt(u8: Uint8Array, base: number, index: number): number {
  return base + get16(u8, base + pageHeaderBytes + index * slotBytes);
}

export function nodeCount(u8: Uint8Array, base: number): number {
  return get16(u8, base + pCount);
}

/** Absolute offset of a leaf cell's key. */
export function leafKeyAt(u8: Uint8Array, cell: number): number {
  return cell + 7 + leafMvccBytes(u8[cell]!);
}

/** Bytes a trusted leaf cell occupies. */
export function leafCellSizeAt(u8: Uint8Array, cell: number): number {
  return leafCellBytes(
    u8[cell]!,
    get16(u8, cell + leafKeyLengthOffset),
    get32(u8, cell + leafValueLengthOffset),
  );
}

export function interiorCellSizeAt(u8: Uint8Array, cell: number): number {
  return interiorKeyOffset + get16(u8, cell);
}

/** Bytes of slots and live cells in a node: what it would occupy after compaction. */
export function nodeUsedBytes(u8: Uint8Array, base: number, pageSizeBytes: number): number {
  return (
    nodeCount(u8, base) * slotBytes +
    pageSizeBytes -
    get16(u8, base + pCellStart) -
    get16(u8, base + pFragmented)
  );
}
