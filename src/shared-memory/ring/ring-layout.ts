/**
 * Layout of a command ring: one SharedArrayBuffer carrying encoded operations from one producer
 * thread to one partition-owner worker, and their completion back. Int32 word indices for the header;
 * the record area and the status area follow it.
 *
 * Offsets and sequence numbers are 32-bit counters that wrap; they are only ever compared by
 * difference (`(a - b) | 0`), so wrapping is harmless as long as fewer than 2^31 are in flight.
 */
export const ringMagic = 0x52_49_4e_47; // "RING"
/**
 * 2: the reset request word. 3: the words describing the last ERR_PARTITION_FULL. 4: its entry
 * count and whether it was a put whose later rewrite would not fit (kRingFullEntries, kRingFullRewrite).
 */
export const ringFormatVersion = 4;

export const kRingMagic = 0;
export const kRingFormatVersion = 1;
export const kRingCapacityBytes = 2;
export const kRingStatusSlots = 3;
/** FNV-1a over the four static fields above. */
export const kRingChecksum = 4;
/** Bytes the producer has written (wrapping). Written by the producer only. */
export const kRingWriteOffset = 5;
/** Bytes the owner has consumed (wrapping). Written by the owner only. */
export const kRingReadOffset = 6;
/** Sequence number of the last operation the owner has applied. The producer waits on this word. */
export const kRingCompletedSeq = 7;
/**
 * Set to 1 by the thread reclaiming a dead producer's slot; the owner then forgets every record of
 * the ring it has not applied (and an operation half sent in fragments), and stores 0 once the ring
 * is empty and its completed sequence final, so the slot's next thread starts on a clean ring.
 */
export const kRingResetRequest = 8;
/**
 * What the owner last found when it refused an operation of this ring with statusPartitionFull:
 * the pages the operation could need, the pages left, the partition's most pages and its page size.
 * Written by the owner before it publishes that completion; read by the producer for the error's
 * message only.
 */
export const kRingFullNeededPages = 9;
export const kRingFullAvailablePages = 10;
export const kRingFullPagesMax = 11;
export const kRingFullPageSizeBytes = 12;
/** 1 if the refusal was a buffer pool's (its frames), 0 if the partition's (partitionBytesMax). */
export const kRingFullPool = 13;
/** Entries of the refused operation: splitting it into smaller writes helps only if it has several. */
export const kRingFullEntries = 14;
/**
 * 1 if the pool could take the write now but not the delete or the same-size overwrite of its value
 * later (pass-reservation.ts `requireRewritable`): the message must say why a put was refused.
 */
export const kRingFullRewrite = 15;
export const kRingFieldCount = 16;

export const ringHeaderBytes = 64;
/** Record area: a power of two, so offsets map to positions with a mask. */
export const ringCapacityBytesDefault = 1 << 20;
/** Operations in flight per ring: each has a status byte at `seq & (statusSlots - 1)`. */
export const ringStatusSlotsDefault = 1 << 16;
/** Records are 8-byte aligned, so the space left before the end of the ring always fits a padding header. */
export const ringRecordAlignBytes = 8;
/** Record header: total length u32 (including the header), record type u8, three reserved bytes. */
export const ringRecordHeaderBytes = 8;
/** Largest record; a larger operation is sent as fragments. A quarter keeps the ring flowing. */
export function ringRecordBytesMax(capacityBytes: number): number {
  return capacityBytes >>> 2;
}

export const recordTypePadding = 0;
export const recordTypeOperation = 1;
/** A piece of an operation too large for one record: total length u32, then bytes. */
export const recordTypeFragment = 2;

/** Completion status of one operation, in the status area. */
export const statusOk = 0;
export const statusPartitionFull = 1;
export const statusInternalError = 2;
/** A prepared transaction holds a key of the write, or a transaction failed validation. */
export const statusConflict = 3;
/**
 * The owner's log could not take the write: the disk is full (ENOSPC), the disk quota is exhausted
 * (EDQUOT), or the file system is read-only (EROFS). Nothing of the write was applied.
 */
export const statusDiskFull = 4;
export const statusDiskQuota = 5;
export const statusReadOnlyFileSystem = 6;
/** Replication: this database lost its leadership; the write was not applied anywhere. */
export const statusDeposed = 7;
/**
 * Replication: the stream did not acknowledge the write in time. It was not applied here; the
 * stream may hold it (a follower, and this database once it catches up, would then apply it).
 */
export const statusReplicationFailed = 8;
/**
 * Replication: the write's log record is larger than one message of the replication log can carry
 * (the servers' max_payload less room for headers). Refused alone, before it was logged: the other
 * writes of its pass go on.
 */
export const statusTooLargeToReplicate = 9;
/**
 * A transaction part needs frames its partition's buffer pool gets back only from a page set, and
 * no set is written while another prepared transaction's intents are in the tree: refused like a
 * conflict, but it names no key. Its coordinator retries it without counting it against `retries`.
 */
export const statusWaitsForPageSet = 10;
/**
 * A page the write had to read failed verification (its checksum or page id): the page file is
 * damaged there. Refused before it was logged; the owner's log names the page.
 */
export const statusDamagedPage = 11;
