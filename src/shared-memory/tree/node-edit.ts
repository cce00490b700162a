import { assert } from '../assert.js';
import { pageHeaderBytes, slotBytes } from '../limits.js';
import { pCellStart, pChunkBytes, pCount, pFragmented, pLink, pType } from '../page-layout.js';
import { get16, nodeCount, set16, set32, setSlot } from './node-format.js';

/**
 * Edits of slotted nodes, for the owner thread. Callers hold the page's latch (or build into a private
 * scratch page). Every function takes the page's absolute base offset, so the same code edits a page in
 * the arena and a scratch copy.
 */

/** A node's cells, gathered for a rebuild: where each cell's bytes are, in key order. */
export class CellList {
  sources: Uint8Array[] = [];
  offsets: number[] = [];
  lengths: number[] = [];
  heads: number[] = [];

  get size(): number {
    return this.offsets.length;
  }

  clear(): void {
    this.sources.length = 0;
    this.offsets.length = 0;
    this.lengths.length = 0;
    this.heads.length = 0;
  }

  push(source: Uint8Array, offset: number, length: number, head: number): void {
    this.sources.push(source);
    this.offsets.push(offset);
    this.lengths.push(length);
    this.heads.push(head);
  }

  insert(index: number, source: Uint8Array, offset: number, length: number, head: number): void {
    this.sources.splice(index, 0, source);
    this.offsets.splice(index, 0, offset);
    this.lengths.splice(index, 0, length);
    this.heads.splice(index, 0, head);
  }

  /** Bytes these cells need in a node, slots included, from `start` to `end`. */
  bytes(start = 0, end = this.offsets.length): number {
    let total = 0;
    for (let i = start; i < end; i++) total += this.lengths[i]! + slotBytes;
    return total;
  }
}

/** Writes an empty node header. The latch word is left alone. */
export function initNode(
  u8: Uint8Array,
  base: number,
  pageSizeBytes: number,
  type: number,
  link: number,
): void {
  u8[base + pType] = type;
  u8[base + pType + 1] = 0;
  set16(u8, base + pCount, 0);
  set16(u8, base + pCellStart, pageSizeBytes);
  set16(u8, base + pFragmented, 0);
  set32(u8, base + pLink, link);
  set32(u8, base + pChunkBytes, 0);
}

/** Free bytes between the slot array and the cells. */
export function contiguousFreeBytes(u8: Uint8Array, base: number): number {
  return get16(u8, base + pCellStart) - pageHeaderBytes - nodeCount(u8, base) * slotBytes;
}

export function fragmentedBytes(u8: Uint8Array, base: number): number {
  return get16(u8, base + pFragmented);
}

/** Inserts a cell at slot `index`. The caller has checked that `length + slotBytes` contiguous bytes are free. */
export function insertCell(
  u8: Uint8Array,
  base: number,
  index: number,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  head: number,
): void {
  const count = nodeCount(u8, base);
  assert(contiguousFreeBytes(u8, base) >= length + slotBytes, 'insertCell has room');
  const cellStart = get16(u8, base + pCellStart) - length;
  u8.set(source.subarray(sourceOffset, sourceOffset + length), base + cellStart);
  const slot = base + pageHeaderBytes + index * slotBytes;
  u8.copyWithin(slot + slotBytes, slot, base + pageHeaderBytes + count * slotBytes);
  setSlot(u8, base, index, cellStart, head);
  set16(u8, base + pCellStart, cellStart);
  set16(u8, base + pCount, count + 1);
}

/** Removes slot `index`; its `cellLength` bytes become fragmented space until the next compaction. */
export function removeCell(u8: Uint8Array, base: number, index: number, cellLength: number): void {
  const count = nodeCount(u8, base);
  assert(index >= 0 && index < count, 'removeCell index in range');
  const slot = base + pageHeaderBytes + index * slotBytes;
  u8.copyWithin(slot, slot + slotBytes, base + pageHeaderBytes + count * slotBytes);
  set16(u8, base + pCount, count - 1);
  set16(u8, base + pFragmented, get16(u8, base + pFragmented) + cellLength);
}

/** Builds a node from cells into `out` at `base`, packed from the page end. */
export function buildNode(
  out: Uint8Array,
  base: number,
  pageSizeBytes: number,
  type: number,
  link: number,
  cells: CellList,
  start: number,
  end: number,
): void {
  initNode(out, base, pageSizeBytes, type, link);
  let cellStart = pageSizeBytes;
  for (let i = start; i < end; i++) {
    const length = cells.lengths[i]!;
    const offset = cells.offsets[i]!;
    cellStart -= length;
    out.set(cells.sources[i]!.subarray(offset, offset + length), base + cellStart);
    setSlot(out, base, i - start, cellStart, cells.heads[i]!);
  }
  assert(cellStart >= pageHeaderBytes + (end - start) * slotBytes, 'built node fits its page');
  set16(out, base + pCellStart, cellStart);
  set16(out, base + pCount, end - start);
}

/** Copies a scratch page over a page of the arena, all but the latch word. */
export function copyPageBody(scratch: Uint8Array, u8: Uint8Array, base: number, pageSizeBytes: number): void {
  u8.set(scratch.subarray(4, pageSizeBytes), base + 4);
}
