import { LightningError, type TreeHandle } from '../shared-memory/index.js';
import type { Durability } from './open-options.js';

export const databaseHandleFormatVersion = 1;

/**
 * What `db.share()` returns: everything another thread needs to read the database's memory and to
 * write through its own command rings. Structured-cloneable; the SharedArrayBuffers are shared.
 */
export interface DatabaseHandle {
  kind: 'lightning-db/database';
  formatVersion: number;
  path: string;
  partitions: number;
  durability: Durability;
  threadsMax: number;
  /** Owner worker of each partition. */
  partitionWorkers: number[];
  /** Tree of each partition. */
  trees: TreeHandle[];
  /** Control block of each worker. */
  workerControls: SharedArrayBuffer[];
  /** Command rings: rings[worker][thread slot]. */
  rings: SharedArrayBuffer[][];
  databaseControl: SharedArrayBuffer;
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
    Array.isArray(h.trees) &&
    Array.isArray(h.partitionWorkers) &&
    Array.isArray(h.workerControls) &&
    Array.isArray(h.rings) &&
    h.trees.length === h.partitions &&
    h.partitionWorkers.length === h.partitions &&
    h.rings.length === h.workerControls.length &&
    h.databaseControl instanceof SharedArrayBuffer;
  if (!complete) throw new LightningError('ERR_BAD_ARGUMENT', 'database handle is incomplete');
}
