/**
 * lightning-db: an embedded key-value engine for Node.js whose data lives in SharedArrayBuffers.
 *
 * `open()` starts partition-owner workers; reads run synchronously from shared memory on any thread,
 * writes are logged and group-committed by the owners, and transactions commit in one partition or
 * across several (two-phase commit) with snapshot reads.
 *
 * This entry exports the API; the shared-memory structures under it (BTree, TreeReader, checkTree)
 * are exported by `lightning-db/internals` (src/internals.ts) for tools and tests that need them.
 */
// The declarations name Node's types (Buffer, Worker): a consumer whose compiler loads no global
// types by default (TypeScript 7) gets them through this reference, kept in the emitted .d.ts.
/// <reference types="node" preserve="true" />

export { AbortError } from './main/api/async-scan.js';
export type { WriteOptions } from './main/api/conditional-write.js';
export type {
  Bytes,
  CustomEncoding,
  EncodingName,
  EncodingOption,
  EncodingOptions,
  Out,
} from './main/api/encoding-types.js';
export type { KeyRange, ScanIterator, ScanOptions } from './main/api/scan-options.js';
export { attach, open, openReplica } from './main/api/typed-open.js';
export type { BackupOptions, BackupProgress, BackupResult } from './main/backup.js';
export {
  type BatchOperation,
  Database,
  type DatabaseStats,
  type MvccStats,
  type RecoveryStats,
  type WorkerStats,
} from './main/database.js';
export type { DatabaseHandle } from './main/database-handle.js';
export type { Durability, OpenOptions } from './main/open-options.js';
export {
  type RestoreOptions,
  type RestoreProgress,
  type RestoreResult,
  restore,
  type VerifyBackupResult,
  verifyBackup,
} from './main/restore.js';
export type { Snapshot } from './main/snapshot.js';
export { type AdminServer, type AdminServerOptions, startAdminServer } from './main/start-admin-server.js';
export type { StoreBatchOperation, StoreOperation } from './main/stores/batch-entry.js';
export type { Store, StoreOptions } from './main/stores/store.js';
export type { SnapshotStore, TransactionStore } from './main/stores/store-views.js';
export type { Transaction } from './main/transaction.js';
export type { TransactionOptions, TransactionStats } from './main/transaction-coordinator.js';
export type { ReplicationOptions } from './replication/replication-options.js';
export type { Replication, ReplicationRoleName, ReplicationStats } from './replication/replication-types.js';
export {
  isLightningError,
  keyBytesMax,
  LightningError,
  type LightningErrorCode,
  pageSizeBytesDefault,
  type RangeOptions,
  type TreeStats,
  valueBytesMax,
} from './shared-memory/index.js';
export type { WorkerPlacement } from './workers/owner-protocol.js';
export type { CheckpointResult } from './workers/partition-checkpoint.js';
