import { checksumWords } from './checksum.js';
import { LightningError } from './errors.js';

/**
 * Two small SharedArrayBuffers that coordinate a database's threads, as Int32 word indices.
 *
 * The worker control block (one per partition-owner worker): a doorbell producers ring after
 * appending to the worker's rings, whether the owner is asleep on it, the worker's state, and the
 * batch counters `stats()` reads synchronously.
 *
 * The database control block (one per database): which thread slots are taken, by which thread, and
 * which holders died. Each slot owns one command ring per worker, so a thread that attaches claims a
 * slot and then has its own rings.
 */
export const controlMagic = 0x43_54_52_4c; // "CTRL"
/**
 * 2: the worker control block gained the owner's metrics (owner-metrics-layout.ts).
 * 3: the database control block's slot table records each slot's holder and its death.
 * 4: the database control block says whether writes are refused until the disk has space.
 * 5: the database control block counts the named stores dropped since the database opened.
 */
export const controlFormatVersion = 5;

export const kControlMagic = 0;
export const kControlFormatVersion = 1;
/** FNV-1a over magic and version. */
export const kControlChecksum = 2;

export const kWorkerDoorbell = 3;
/** 1 while the owner waits on the doorbell: producers notify only then. */
export const kWorkerSleeping = 4;
export const kWorkerState = 5;
export const kWorkerBatches = 6;
export const kWorkerOperations = 7;
export const kWorkerBatchSizeMax = 8;
/**
 * The owner's metrics for the admin server, named word by word in owner-metrics-layout.ts. Word 9 is
 * padding: the metrics start on an even word so their 64-bit totals are 8-byte aligned.
 */
export const kWorkerMetrics = 10;
export const workerMetricsWords = 54;
export const kWorkerFieldCount = kWorkerMetrics + workerMetricsWords;

export const workerStateStarting = 0;
export const workerStateRunning = 1;
export const workerStateStopped = 2;
export const workerStateCrashed = 3;

export const kDatabaseState = 3;
/** Bumped, and notified, each time a thread holding a slot is reported dead. */
export const kDatabaseDeaths = 4;
/** The last claim generation handed out: each claim of a slot gets a new one. */
export const kDatabaseGenerations = 5;
/**
 * 1 while a database opened on a full disk serves reads only; the opener stores 0 once it has made
 * every owner write again, and every thread's writes are taken from then on.
 */
export const kDatabaseWritesRefused = 6;
/**
 * Named stores dropped since the database opened, bumped once each drop has committed: a thread
 * that sees it unchanged knows its Store objects are still live without reading the catalog
 * (stores/store-liveness.ts).
 */
export const kDatabaseStoreDrops = 7;
/** First word of the slot table: `databaseSlotWords` words per thread slot, fields below. */
export const kDatabaseSlots = 8;
export const databaseSlotWords = 3;
/** Slot field: 0 free, the claim generation while held, slotReclaiming while a dead holder's is undone. */
export const kSlotClaim = 0;
/** Slot field: the worker_threads threadId of the holder. */
export const kSlotThread = 1;
/** Slot field: the claim generation reported dead, or 0. */
export const kSlotDead = 2;
export const slotReclaiming = -1;

/** Words of the database control block of a database with `threadsMax` thread slots. */
export function databaseControlWords(threadsMax: number): number {
  return kDatabaseSlots + databaseSlotWords * threadsMax;
}

/** Index of field `field` of thread slot `slot` in the database control block. */
export function slotWord(slot: number, field: number): number {
  return kDatabaseSlots + databaseSlotWords * slot + field;
}

export const databaseStateOpen = 0;
export const databaseStateClosed = 1;

export function createControlBlock(fieldCount: number): Int32Array {
  const i32 = new Int32Array(new SharedArrayBuffer(fieldCount * 4));
  i32[kControlMagic] = controlMagic;
  i32[kControlFormatVersion] = controlFormatVersion;
  i32[kControlChecksum] = checksumWords([controlMagic, controlFormatVersion]) | 0;
  return i32;
}

/** Wraps a control block from another thread, verifying its header. */
export function attachControlBlock(sab: unknown, fieldCount: number): Int32Array {
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < fieldCount * 4) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'not a control block: expected a SharedArrayBuffer');
  }
  const i32 = new Int32Array(sab);
  if (
    i32[kControlMagic] !== controlMagic ||
    i32[kControlChecksum] !== (checksumWords([i32[kControlMagic]!, i32[kControlFormatVersion]!]) | 0)
  ) {
    throw new LightningError('ERR_CORRUPTION', 'control block: bad magic number or checksum');
  }
  if (i32[kControlFormatVersion] !== controlFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `control block format version ${i32[kControlFormatVersion]}`,
    );
  }
  return i32;
}
