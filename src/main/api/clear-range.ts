import { assert } from '../../shared-memory/assert.js';
import { type BatchEntry, operationDel } from '../../shared-memory/ring/operation-codec.js';
import { operationBytesMax } from '../write-channel.js';

/** One owner's share of a clear: deletes applied by its owner as one atomic batch. */
export interface ClearPart {
  partition: number;
  entries: BatchEntry[];
}

/** Encoded bytes of a batch's header and of each delete in it beside its key (operation-codec.ts). */
const batchHeaderBytes = 8;
const delEntryHeaderBytes = 7;

/**
 * Groups the keys of a clear into per-partition batches of deletes. A partition's whole share is one
 * batch, so its owner deletes it atomically, unless it would encode to more than `bytesMax` bytes
 * (one write-ahead log record): then it is cut into batches of at most that size, each atomic.
 * Parts are yielded as soon as they are full, and the rest when the keys run out.
 */
export function* clearParts(
  keys: Iterable<Uint8Array>,
  partitionOf: (key: Uint8Array) => number,
  bytesMax: number = operationBytesMax,
): Generator<ClearPart> {
  const open = new Map<number, { part: ClearPart; bytes: number }>();
  for (const key of keys) {
    const partition = partitionOf(key);
    const entryBytes = delEntryHeaderBytes + key.length;
    assert(batchHeaderBytes + entryBytes <= bytesMax, 'one delete fits a batch');
    let pending = open.get(partition);
    if (pending !== undefined && pending.bytes + entryBytes > bytesMax) {
      yield pending.part;
      pending = undefined;
    }
    if (pending === undefined) {
      pending = { part: { partition, entries: [] }, bytes: batchHeaderBytes };
      open.set(partition, pending);
    }
    pending.part.entries.push({ kind: operationDel, key, value: null });
    pending.bytes += entryBytes;
  }
  for (const pending of open.values()) yield pending.part;
}

/**
 * Deletes `keys` (the keys of a range, read at one snapshot) through `send`, one batch per
 * partition (or per chunk of a partition too large for one batch), all sent before any is awaited
 * so the owners work in parallel. Resolves with the number of keys deleted; rejects with the first
 * failure, when the other parts may have been applied: a clear is atomic per part, not as a whole.
 */
export async function clearKeys(
  keys: Iterable<Uint8Array>,
  partitionOf: (key: Uint8Array) => number,
  send: (part: ClearPart) => Promise<void>,
  bytesMax: number = operationBytesMax,
): Promise<number> {
  const sent: Promise<void>[] = [];
  let count = 0;
  for (const part of clearParts(keys, partitionOf, bytesMax)) {
    count += part.entries.length;
    sent.push(send(part));
  }
  await Promise.all(sent);
  return count;
}
