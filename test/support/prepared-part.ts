/**
 * The decoded prepare of one partition's part of a snapshot-isolation transaction, as the owner
 * receives it: for tests that drive a VersionedPartition's prepare, install and decision directly.
 */
import type { BatchEntry } from '../../src/shared-memory/ring/operation-codec.js';
import {
  type DecodedTransaction,
  isolationSnapshot,
  operationTxPrepare,
} from '../../src/shared-memory/ring/transaction-codec.js';

export function snapshotPrepare(
  statusReference: number,
  transactionId: number,
  readTimestamp: number,
  writes: BatchEntry[],
): DecodedTransaction {
  return {
    kind: operationTxPrepare,
    isolation: isolationSnapshot,
    partition: 0,
    statusReference,
    transactionId,
    readTimestamp,
    reads: [],
    ranges: [],
    writes,
    writesStart: 0,
    end: 0,
  };
}
