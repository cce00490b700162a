import type { PinWorkersMode } from '../numa/index.js';
import {
  type ReplicationOptions,
  type ResolvedReplication,
  resolveReplication,
} from '../replication/replication-options.js';
import {
  LightningError,
  pageSizeBytesDefault,
  pageSizeBytesMax,
  pageSizeBytesMin,
  partitionBytesDefault,
  partitionBytesMax,
} from '../shared-memory/index.js';
import { type FailpointSpec, Failpoints } from '../workers/failpoints.js';

/**
 * 'replicated': 'sync', and a write is acknowledged only once the replication log's servers hold it
 * too (the default, and the only mode, of a replicated database; see docs/replication.md).
 */
export type Durability = 'sync' | 'relaxed' | 'none' | 'replicated';

export interface OpenOptions {
  /**
   * Whether open() may create a database. Default: only in a directory that is absent or empty.
   * true: also in a directory holding other files (never over a database's files); false: never,
   * the database must exist (ERR_BAD_ARGUMENT otherwise).
   */
  create?: boolean;
  /** Partitions, fixed when the database is created. Default 16; 1 to 4,096. */
  partitions?: number;
  /** Partition-owner worker threads for this open: a count, or 'auto' (one per CPU, at most one per partition). */
  workers?: number | 'auto';
  /** With workers 'auto': this many workers on each NUMA node. */
  workersPerNode?: number;
  /**
   * Pin each owner worker to its NUMA node's CPUs (Linux, via util-linux `taskset`): 'auto' (default)
   * pins only on machines with more than one node; true always; false never. See stats().workerStats.
   */
  pinWorkers?: PinWorkersMode;
  /**
   * When a write's promise resolves: 'sync' (default) after its batch is fdatasync'd; 'relaxed' after
   * write(2), with the log synced every `syncIntervalMs`; 'none' after write(2), never synced by us.
   */
  durability?: Durability;
  /** In 'relaxed' mode, how often written log bytes are synced. Default 100 ms. */
  syncIntervalMs?: number;
  /** Checkpoint a partition once its write-ahead log has grown by this many bytes. Default 64 MiB. */
  checkpointWalBytes?: number;
  /** Page size of every partition's tree. Default 4 KiB. */
  pageSizeBytes?: number;
  /** Most bytes one partition's shared memory may grow to. Default 1 GiB. */
  partitionBytesMax?: number;
  /**
   * Keep the partitions' pages in page files, with at most this many bytes of them in memory (split
   * evenly over the partitions: at least 64 pages each), so the data may be larger than memory and
   * open() does not load it. Without it, a new database keeps every partition whole in memory. Given
   * when a database is created (or before its first checkpoint), it makes the database paged for
   * good: later opens may change the budget, and an open without it keeps every page it reads.
   * See docs/buffer-pool.md.
   */
  memoryMaxBytes?: number;
  /** Threads that may use the database at once: the opening thread plus attached workers. Default 8. */
  threadsMax?: number;
  /**
   * Open for reading only (default false): nothing is written to the directory — no LOCK file, no log,
   * no torn-tail cut, no checkpoint — so it works on a read-only file system or a full disk. Recovery
   * replays the log into memory. Every write, transaction commit and checkpoint rejects with
   * ERR_READ_ONLY. Without the lock, a process that has the database open for writing keeps writing:
   * this open sees the files as they were when it opened.
   */
  readOnly?: boolean;
  /**
   * Replicate through a NATS JetStream log (docs/replication.md): `open()` makes this database the
   * leader (it takes the lease: ERR_LOCKED if another database leads the log), `openReplica()` a
   * follower. Durability is then 'replicated'.
   */
  replication?: ReplicationOptions;
  /** Testing only: named fail-points in the owner workers, e.g. { 'owner.apply': 'crash-after:100' }. */
  failpoints?: FailpointSpec;
  /**
   * @internal Testing only, not part of the public API: an absolute path (or file URL) of a module
   * whose `createFileLayer()` supplies the file layer of the durable writers (src/storage/file-layer.ts)
   * in the opening thread and in every owner worker, e.g. one that simulates power loss.
   */
  fileLayer?: string;
}

export interface ResolvedOptions {
  create: boolean | undefined;
  partitions: number | undefined;
  workers: number | 'auto';
  workersPerNode: number | undefined;
  pinWorkers: PinWorkersMode;
  durability: Durability;
  syncIntervalMs: number;
  checkpointWalBytes: number;
  pageSizeBytes: number;
  /** The pageSizeBytes option as given (a paged database keeps its page files' page size). */
  pageSizeBytesGiven: number | undefined;
  partitionBytesMax: number;
  memoryMaxBytes: number | null;
  threadsMax: number;
  failpoints: FailpointSpec | undefined;
  fileLayer: string | undefined;
  readOnly: boolean;
  replication: ResolvedReplication | null;
}

export const partitionsDefault = 16;
/** The least memoryMaxBytes accepted here: 64 of the smallest pages; open() wants 64 pages per partition. */
const memoryMaxBytesLeast = 64 * pageSizeBytesMin;
export const syncIntervalMsDefault = 100;
export const checkpointWalBytesDefault = 64 * 1024 * 1024;
export const partitionsMax = 4096;
export const threadsMaxDefault = 8;
export const threadsMaxLimit = 64;
const durabilities: readonly Durability[] = ['sync', 'relaxed', 'none', 'replicated'];
const optionNames: readonly (keyof OpenOptions)[] = [
  'create',
  'partitions',
  'workers',
  'workersPerNode',
  'pinWorkers',
  'durability',
  'syncIntervalMs',
  'checkpointWalBytes',
  'pageSizeBytes',
  'partitionBytesMax',
  'memoryMaxBytes',
  'threadsMax',
  'readOnly',
  'replication',
  'failpoints',
];
/** Accepted but left out of the documented list (see OpenOptions.fileLayer). */
const internalOptionNames: readonly (keyof OpenOptions)[] = ['fileLayer'];

function bad(message: string): LightningError {
  return new LightningError('ERR_BAD_ARGUMENT', message);
}

function integerIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`${name} must be an integer from ${min} to ${max}, got ${shown(value)}`);
  }
  return value;
}

/** Checks the options of `open()`; throws ERR_BAD_ARGUMENT naming the first bad one. */
export function resolveOpenOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw bad('options must be an object');
  const o = options as OpenOptions;
  const replication = o.replication === undefined ? null : resolveReplication(o.replication);
  const durability = o.durability ?? (replication === null ? 'sync' : 'replicated');
  if (!durabilities.includes(durability)) {
    throw bad(`durability must be one of ${durabilities.join(', ')}, got ${shown(durability)}`);
  }
  if ((durability === 'replicated') !== (replication !== null)) {
    throw bad(
      replication === null
        ? "durability 'replicated' needs the replication option"
        : `a replicated database's durability is 'replicated', not ${shown(durability)}`,
    );
  }
  if (replication !== null && o.readOnly === true)
    throw bad('a replicated database cannot be opened readOnly');
  const workers = o.workers ?? 'auto';
  if (workers !== 'auto') integerIn(workers, 'workers', 1, 1024);
  const pinWorkers = o.pinWorkers ?? 'auto';
  if (pinWorkers !== 'auto' && typeof pinWorkers !== 'boolean') {
    throw bad(`pinWorkers must be true, false or 'auto', got ${shown(pinWorkers)}`);
  }
  for (const name of Object.keys(o)) {
    const known = optionNames.includes(name as keyof OpenOptions);
    if (!known && !internalOptionNames.includes(name as keyof OpenOptions)) {
      throw bad(`unknown option ${JSON.stringify(name)}; the options are ${optionNames.join(', ')}`);
    }
  }
  if (o.failpoints !== undefined) {
    if (typeof o.failpoints !== 'object' || o.failpoints === null) throw bad('failpoints must be an object');
    try {
      new Failpoints(o.failpoints);
    } catch (error) {
      throw bad((error as Error).message);
    }
  }
  if (o.create !== undefined && typeof o.create !== 'boolean') {
    throw bad(`create must be a boolean, got ${shown(o.create)}`);
  }
  if (o.fileLayer !== undefined && (typeof o.fileLayer !== 'string' || o.fileLayer.length === 0)) {
    throw bad('fileLayer must be a module path');
  }
  if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean') {
    throw bad(`readOnly must be a boolean, got ${shown(o.readOnly)}`);
  }
  const pageSizeBytes =
    o.pageSizeBytes === undefined
      ? pageSizeBytesDefault
      : integerIn(o.pageSizeBytes, 'pageSizeBytes', pageSizeBytesMin, pageSizeBytesMax);
  if ((pageSizeBytes & (pageSizeBytes - 1)) !== 0)
    throw bad(`pageSizeBytes must be a power of two, got ${pageSizeBytes}`);
  return {
    create: o.create,
    partitions:
      o.partitions === undefined ? undefined : integerIn(o.partitions, 'partitions', 1, partitionsMax),
    workers,
    workersPerNode:
      o.workersPerNode === undefined ? undefined : integerIn(o.workersPerNode, 'workersPerNode', 1, 1024),
    pinWorkers,
    durability,
    syncIntervalMs:
      o.syncIntervalMs === undefined
        ? syncIntervalMsDefault
        : integerIn(o.syncIntervalMs, 'syncIntervalMs', 1, 60_000),
    checkpointWalBytes:
      o.checkpointWalBytes === undefined
        ? checkpointWalBytesDefault
        : integerIn(o.checkpointWalBytes, 'checkpointWalBytes', 1 << 16, 2 ** 40),
    pageSizeBytes,
    pageSizeBytesGiven: o.pageSizeBytes === undefined ? undefined : pageSizeBytes,
    memoryMaxBytes:
      o.memoryMaxBytes === undefined
        ? null
        : integerIn(o.memoryMaxBytes, 'memoryMaxBytes', memoryMaxBytesLeast, Number.MAX_SAFE_INTEGER),
    partitionBytesMax:
      o.partitionBytesMax === undefined
        ? partitionBytesDefault
        : integerIn(o.partitionBytesMax, 'partitionBytesMax', 16 * pageSizeBytes, partitionBytesMax),
    threadsMax:
      o.threadsMax === undefined
        ? threadsMaxDefault
        : integerIn(o.threadsMax, 'threadsMax', 1, threadsMaxLimit),
    failpoints: o.failpoints,
    fileLayer: o.fileLayer,
    readOnly: o.readOnly ?? false,
    replication,
  };
}

/**
 * An option's value as an error message shows it: JSON where that says what it is, else String (NaN,
 * Infinity, undefined, a bigint, a function). JSON.stringify shows NaN as null and throws on a bigint.
 */
function shown(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
