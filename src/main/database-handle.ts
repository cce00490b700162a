import { LightningError, type TreeHandle } from '../shared-memory/index.js';
import type { PartitionTreeHandle } from '../storage/page-file/paged-tree-handle.js';
import { isPartitionHash, type PartitionHash } from '../storage/partition-hash.js';
import type { WorkerPlacement } from '../workers/owner-protocol.js';
import type { EncodingName } from './api/encoding-types.js';
import type { Durability } from './open-options.js';

/** Version 3 added `partitionHash`; 4 added `counters`. */
export const databaseHandleFormatVersion = 4;

/**
 * What `db.share()` returns: everything another thread needs to read the database's memory and to
 * write through its own command rings. Structured-cloneable; the SharedArrayBuffers are shared.
 */
export interface DatabaseHandle {
  kind: 'lightning-db/database';
  formatVersion: number;
  path: string;
  partitions: number;
  /** The hash routing keys to partitions (see storage/partition-hash.ts). */
  partitionHash: PartitionHash;
  durability: Durability;
  threadsMax: number;
  /** Owner worker of each partition. */
  partitionWorkers: number[];
  /** Tree of each partition: in an arena, or over a buffer pool and the partition's page file. */
  trees: PartitionTreeHandle[];
  /** Version store of each partition (MVCC). */
  versionTrees: TreeHandle[];
  /** The MVCC block: timestamp oracle, commit windows, snapshot slots, transaction status table. */
  mvcc: SharedArrayBuffer;
  /** Control block of each worker. */
  workerControls: SharedArrayBuffer[];
  /** Where each worker runs, as it reported at start (node, CPU mask, pinned or why not). */
  workerPlacements: WorkerPlacement[];
  /**
   * Command rings: rings[worker][thread slot] carry plain writes, rings[worker][threadsMax + slot]
   * transaction parts.
   */
  rings: SharedArrayBuffer[][];
  databaseControl: SharedArrayBuffer;
  /** Every thread slot's operation and transaction counts (shared-memory/thread-counters-layout.ts). */
  counters: SharedArrayBuffer;
  /** Opened with `{ readOnly: true }`: an attached thread's writes reject with ERR_READ_ONLY too. */
  readOnly?: boolean;
  /** The built-in key and value encodings of the Database that shared it ('custom': one of its own). */
  keyEncoding?: EncodingName | 'custom' | undefined;
  valueEncoding?: EncodingName | 'custom' | undefined;
}

export function assertDatabaseHandle(handle: unknown): asserts handle is DatabaseHandle {
  const h = handle as Partial<DatabaseHandle> | null;
  if (typeof h !== 'object' || h === null || h.kind !== 'lightning-db/database') {
    throw new LightningError('ERR_BAD_ARGUMENT', 'not a database handle: pass the result of db.share()');
  }
  if (h.formatVersion !== databaseHandleFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `database handle format version ${String(h.formatVersion)}`,
    );
  }
  const complete =
    isPartitionHash(h.partitionHash) &&
    Array.isArray(h.trees) &&
    Array.isArray(h.partitionWorkers) &&
    Array.isArray(h.workerControls) &&
    Array.isArray(h.rings) &&
    h.trees.length === h.partitions &&
    Array.isArray(h.versionTrees) &&
    h.versionTrees.length === h.partitions &&
    h.mvcc instanceof SharedArrayBuffer &&
    h.partitionWorkers.length === h.partitions &&
    h.rings.length === h.workerControls.length &&
    Array.isArray(h.workerPlacements) &&
    h.workerPlacements.length === h.workerControls.length &&
    h.databaseControl instanceof SharedArrayBuffer &&
    h.counters instanceof SharedArrayBuffer;
  if (!complete) throw new LightningError('ERR_BAD_ARGUMENT', 'database handle is incomplete');
}
