import { assert } from '../shared-memory/assert.js';
import type { BTree } from '../shared-memory/index.js';
import {
  encodedEntries,
  encodedOperationEnd,
  operationBatch,
  operationDel,
  operationPut,
  read16,
  read32,
} from '../shared-memory/ring/operation-codec.js';

/** The partition an encoded operation belongs to. */
export function operationPartition(u8: Uint8Array, start: number): number {
  return read16(u8, start + 2);
}

/**
 * Applies the operation encoded at u8[start, end) to its partition's tree and returns the offset just
 * past its encoding (what the write-ahead log records). Throws what the tree throws, e.g.
 * ERR_PARTITION_FULL, having changed nothing. Used by the owner loop and by recovery's replay, so a
 * logged operation is replayed exactly as it was first applied.
 */
export function applyOperation(tree: BTree, u8: Uint8Array, start: number, end: number): number {
  const kind = u8[start]!;
  // Puts and deletes are applied from the encoded bytes directly; the tree copies what it keeps.
  if (kind === operationPut) {
    const keyEnd = start + 10 + read16(u8, start + 4);
    const valueEnd = keyEnd + read32(u8, start + 6);
    assert(valueEnd <= end, 'put fits its record');
    tree.put(u8.subarray(start + 10, keyEnd), u8.subarray(keyEnd, valueEnd));
    return valueEnd;
  }
  if (kind === operationDel) {
    const keyEnd = start + 6 + read16(u8, start + 4);
    assert(keyEnd <= end, 'del fits its record');
    tree.delete(u8.subarray(start + 6, keyEnd));
    return keyEnd;
  }
  assert(kind === operationBatch, `known operation kind (got ${kind})`);
  applyBatch(tree, u8, start, end);
  return encodedOperationEnd(u8, start, end);
}

/**
 * Applies a batch as one change, walking its encoding twice (to count what it may allocate, then to
 * write) instead of decoding it whole: a batch of a million entries costs its encoding, not a million
 * decoded entries. The pages are reserved first, so a full partition fails it before anything changes.
 */
function applyBatch(tree: BTree, u8: Uint8Array, start: number, end: number): void {
  const tally = tree.newWriteTally();
  for (const entry of encodedEntries(u8, start, end)) {
    if (entry.value === null) tally.addDelete();
    else tally.addPut(entry.key.length, entry.value.length);
  }
  tree.reserve(tree.pagesForWrites(tally).pages);
  tree.group(() => {
    for (const entry of encodedEntries(u8, start, end)) {
      if (entry.value === null) tree.deleteCell(entry.key);
      else tree.putCell(entry.key, entry.value, 0, 0);
    }
  });
}
