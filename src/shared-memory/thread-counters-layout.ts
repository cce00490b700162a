import { checksumWords } from './checksum.js';
import { LightningError } from './errors.js';

/**
 * The thread counters: one row of operation and transaction counts per thread slot, in one
 * SharedArrayBuffer that travels in the database handle, so `stats()` and /metrics on any thread sum
 * the work of every thread (the opener and every attached app worker).
 *
 * A row has one writer, the thread holding its slot, which counts with plain stores: one
 * load and one store per operation, no atomic read-modify-write on the hot path. Collectors read
 * the rows with plain loads. Counts are Float64 words (exact to 2^53, where a 32-bit word would wrap
 * within minutes at millions of gets a second); ECMAScript does not promise that a plain 8-byte
 * access is whole, but on x64 an aligned one is a single instruction, and a collector that saw a torn
 * word would be off in one scrape only, never in the row.
 *
 * Rows are never reset: a thread that claims a slot after its previous holder exited (or died and was
 * reclaimed) keeps counting on top of what that holder counted. So nothing is lost when a thread
 * goes, and the reclaimer never writes a row a new holder may already be writing (folding into a
 * "departed" row would need it to, and a collector summing during the fold would count twice or miss).
 *
 * Layout, as Int32 words for the header and Float64 words after it:
 *   header: magic, format version, checksum (of magic, version, threadsMax, partitions), threadsMax,
 *           partitions, then padding to the first 8-byte boundary after it;
 *   rows:   threadsMax rows of `threadCounterRowWords(partitions)` Float64 words each.
 */
export const threadCountersMagic = 0x54_43_4e_54; // "TCNT"
export const threadCountersFormatVersion = 2;

export const kCountersMagic = 0;
export const kCountersFormatVersion = 1;
export const kCountersChecksum = 2;
export const kCountersThreadsMax = 3;
export const kCountersPartitions = 4;
/** Int32 words of the header, padded to a multiple of 2 so the Float64 rows are aligned. */
export const countersHeaderWords = 6;
/** The header in Float64 words: the index of row 0's first word. */
export const kCountersRows64 = countersHeaderWords / 2;

/** The operations counted per partition, in row order. */
export const countedOperations = ['put', 'del', 'batch', 'get'] as const;
export type CountedOperation = (typeof countedOperations)[number];

/** Row fields, as Float64 indices within a row: the transaction counts first. */
export const kRowCommits = 0;
export const kRowConflicts = 1;
export const kRowRetries = 2;
export const kRowFailed = 3;
export const kRowCrossPartitionCommits = 4;
export const kRowPageSetWaits = 5;
/**
 * First cell of the operation counts: for each operation of `countedOperations`, one cell per
 * partition, then one for batches whose keys fall in several partitions.
 */
export const kRowOperations = 6;

/** Cells per operation: every partition, and "several partitions" last. */
export function operationCells(partitions: number): number {
  return partitions + 1;
}

/** Float64 words of one thread's row. */
export function threadCounterRowWords(partitions: number): number {
  return kRowOperations + countedOperations.length * operationCells(partitions);
}

/** Bytes of the counters buffer of a database with these dimensions. */
export function threadCountersBytes(threadsMax: number, partitions: number): number {
  return (kCountersRows64 + threadsMax * threadCounterRowWords(partitions)) * 8;
}

/** Creates the counters buffer, all counts 0. */
export function createThreadCounters(threadsMax: number, partitions: number): SharedArrayBuffer {
  if (
    !Number.isSafeInteger(threadsMax) ||
    threadsMax < 1 ||
    !Number.isSafeInteger(partitions) ||
    partitions < 1
  )
    throw new RangeError(
      `thread counters need threadsMax and partitions ≥ 1, got ${threadsMax}, ${partitions}`,
    );
  const sab = new SharedArrayBuffer(threadCountersBytes(threadsMax, partitions));
  const header = new Int32Array(sab, 0, countersHeaderWords);
  header[kCountersMagic] = threadCountersMagic;
  header[kCountersFormatVersion] = threadCountersFormatVersion;
  header[kCountersThreadsMax] = threadsMax;
  header[kCountersPartitions] = partitions;
  header[kCountersChecksum] = headerChecksum(header);
  return sab;
}

/** All rows of a counters buffer from another thread, after checking its header against the handle. */
export function attachThreadCounters(sab: unknown, threadsMax: number, partitions: number): Float64Array {
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < countersHeaderWords * 4)
    throw new LightningError('ERR_BAD_ARGUMENT', 'not a thread counters block: expected a SharedArrayBuffer');
  const header = new Int32Array(sab, 0, countersHeaderWords);
  if (header[kCountersMagic] !== threadCountersMagic || header[kCountersChecksum] !== headerChecksum(header))
    throw new LightningError('ERR_CORRUPTION', 'thread counters block: bad magic number or checksum');
  if (header[kCountersFormatVersion] !== threadCountersFormatVersion)
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `thread counters block format version ${header[kCountersFormatVersion]}`,
    );
  if (
    header[kCountersThreadsMax] !== threadsMax ||
    header[kCountersPartitions] !== partitions ||
    sab.byteLength !== threadCountersBytes(threadsMax, partitions)
  )
    throw new LightningError('ERR_BAD_ARGUMENT', 'thread counters block does not match the database handle');
  return new Float64Array(sab, kCountersRows64 * 8);
}

/** The Float64 index of `field` in row `slot`, within the rows returned by attachThreadCounters. */
export function rowWord(slot: number, partitions: number, field: number): number {
  return slot * threadCounterRowWords(partitions) + field;
}

function headerChecksum(header: Int32Array): number {
  return (
    checksumWords([
      header[kCountersMagic]!,
      header[kCountersFormatVersion]!,
      header[kCountersThreadsMax]!,
      header[kCountersPartitions]!,
    ]) | 0
  );
}
