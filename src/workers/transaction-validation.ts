import type { BTree } from '../shared-memory/index.js';
import { type DecodedTransaction, isolationSerializable } from '../shared-memory/ring/transaction-codec.js';
import { cellFlagIntent, cellFlagTimestamp } from '../shared-memory/tree/node-format.js';
import type { KeyInterval } from '../shared-memory/tree/range-options.js';
import type { LockTable } from './lock-table.js';

/**
 * Optimistic validation at the owner: a transaction part commits (or prepares) only if nothing it
 * depends on changed after its read timestamp. Its writes, under both isolations, and under
 * serializable isolation its reads and ranges too, must have no committed version newer than the
 * read timestamp, no intent of a prepared transaction, and no lock another prepared transaction holds.
 */
export function validateTransactionPart(part: DecodedTransaction, tree: BTree, locks: LockTable): boolean {
  const { readTimestamp, statusReference: reference } = part;
  for (const entry of part.writes) {
    if (locks.blocksWrite(entry.key, reference) || changedSince(tree, entry.key, readTimestamp)) return false;
  }
  if (part.isolation !== isolationSerializable) return true;
  for (const key of part.reads) {
    if (locks.blocksRead(key, reference) || changedSince(tree, key, readTimestamp)) return false;
  }
  for (const range of part.ranges) {
    if (locks.blocksRangeRead(range, reference) || rangeChangedSince(tree, range, readTimestamp))
      return false;
  }
  return true;
}

/** True if `key`'s head is newer than `readTimestamp`, or an intent. */
function changedSince(tree: BTree, key: Uint8Array, readTimestamp: number): boolean {
  if (tree.readCell(key) === undefined) return false;
  return headChangedSince(tree.cellFlags, tree.cellTimestamp, readTimestamp);
}

/** True if some head within `range` (a deleted key's tombstone included) is newer, or an intent. */
function rangeChangedSince(tree: BTree, range: KeyInterval, readTimestamp: number): boolean {
  const heads = tree.rangeWithin({ ...range, reverse: false, limit: Number.POSITIVE_INFINITY });
  for (const _ of heads) {
    if (headChangedSince(heads.cellFlags, heads.cellTimestamp, readTimestamp)) return true;
  }
  return false;
}

function headChangedSince(flags: number, timestamp: number, readTimestamp: number): boolean {
  if ((flags & cellFlagIntent) !== 0) return true;
  return (flags & cellFlagTimestamp) !== 0 && timestamp > readTimestamp;
}
