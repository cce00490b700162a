import { assert } from '../assert.js';
import { checksumWords } from '../checksum.js';
import { LightningError } from '../errors.js';
import {
  kRingCapacityBytes,
  kRingChecksum,
  kRingCompletedSeq,
  kRingFieldCount,
  kRingFormatVersion,
  kRingFullAvailablePages,
  kRingFullEntries,
  kRingFullNeededPages,
  kRingFullPageSizeBytes,
  kRingFullPagesMax,
  kRingFullPool,
  kRingFullRewrite,
  kRingMagic,
  kRingReadOffset,
  kRingStatusSlots,
  kRingWriteOffset,
  recordTypeFragment,
  recordTypeOperation,
  recordTypePadding,
  ringCapacityBytesDefault,
  ringFormatVersion,
  ringHeaderBytes,
  ringMagic,
  ringRecordAlignBytes,
  ringRecordBytesMax,
  ringRecordHeaderBytes,
  ringStatusSlotsDefault,
} from './ring-layout.js';

assert(kRingFieldCount * 4 <= ringHeaderBytes, 'the ring header holds its fields');

/** What an owner found when it refused an operation for want of room in its partition. */
export interface PartitionFullDetail {
  neededPages: number;
  availablePages: number;
  pagesMax: number;
  pageSizeBytes: number;
  /** The refusal was a buffer pool's: the pages would not fit its frames (memoryMaxBytes). */
  pool?: boolean;
  /** Entries of the refused write, when known: a single one cannot be split into smaller writes. */
  entries?: number;
  /** The write fits now, but deleting or overwriting its value later would not (a pool's). */
  rewrite?: boolean;
}

/**
 * A single-producer, single-consumer ring of records in a SharedArrayBuffer: the data plane between
 * one caller thread and one partition-owner worker. The producer writes a record's bytes, then
 * publishes them by storing the write offset; the consumer reads up to that offset, then frees the
 * space by storing the read offset. Each side writes only its own word, so no compare-and-swap is
 * needed; the seq-cst stores order the plain byte writes before them.
 */
export class CommandRing {
  readonly sab: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly capacityBytes: number;
  readonly statusSlots: number;
  readonly recordBytesMax: number;
  /** Byte offset of the status area: one status byte per in-flight operation. */
  readonly statusStart: number;

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.i32 = new Int32Array(sab);
    this.u8 = new Uint8Array(sab);
    this.capacityBytes = this.i32[kRingCapacityBytes]!;
    this.statusSlots = this.i32[kRingStatusSlots]!;
    this.recordBytesMax = ringRecordBytesMax(this.capacityBytes);
    this.statusStart = ringHeaderBytes + this.capacityBytes;
  }

  /** The detail the owner recorded with the last operation of this ring it refused as full. */
  lastPartitionFull(): PartitionFullDetail {
    const i32 = this.i32;
    return {
      neededPages: Atomics.load(i32, kRingFullNeededPages) >>> 0,
      availablePages: Atomics.load(i32, kRingFullAvailablePages) >>> 0,
      pagesMax: Atomics.load(i32, kRingFullPagesMax) >>> 0,
      pageSizeBytes: Atomics.load(i32, kRingFullPageSizeBytes) >>> 0,
      pool: Atomics.load(i32, kRingFullPool) === 1,
      entries: Atomics.load(i32, kRingFullEntries) >>> 0,
      rewrite: Atomics.load(i32, kRingFullRewrite) === 1,
    };
  }

  static create(capacityBytes = ringCapacityBytesDefault, statusSlots = ringStatusSlotsDefault): CommandRing {
    assert(
      capacityBytes >= 4096 && (capacityBytes & (capacityBytes - 1)) === 0,
      'ring capacity is a power of two',
    );
    assert(statusSlots >= 16 && (statusSlots & (statusSlots - 1)) === 0, 'status slots are a power of two');
    const sab = new SharedArrayBuffer(ringHeaderBytes + capacityBytes + statusSlots);
    const i32 = new Int32Array(sab);
    i32[kRingMagic] = ringMagic;
    i32[kRingFormatVersion] = ringFormatVersion;
    i32[kRingCapacityBytes] = capacityBytes;
    i32[kRingStatusSlots] = statusSlots;
    i32[kRingChecksum] = checksumWords(i32.subarray(0, kRingChecksum)) | 0;
    return new CommandRing(sab);
  }

  /** Attaches to a ring made by another thread, verifying its header. */
  static attach(sab: unknown): CommandRing {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < ringHeaderBytes) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'not a command ring: expected a SharedArrayBuffer');
    }
    const i32 = new Int32Array(sab, 0, ringHeaderBytes >>> 2);
    if (
      i32[kRingMagic] !== ringMagic ||
      i32[kRingChecksum] !== (checksumWords(i32.subarray(0, kRingChecksum)) | 0)
    ) {
      throw new LightningError('ERR_CORRUPTION', 'command ring header: bad magic number or checksum');
    }
    if (i32[kRingFormatVersion] !== ringFormatVersion) {
      throw new LightningError(
        'ERR_FORMAT_VERSION',
        `command ring format version ${i32[kRingFormatVersion]}`,
      );
    }
    return new CommandRing(sab);
  }

  completedSeq(): number {
    return Atomics.load(this.i32, kRingCompletedSeq);
  }
}

function writeU32(u8: Uint8Array, at: number, value: number): void {
  u8[at] = value;
  u8[at + 1] = value >>> 8;
  u8[at + 2] = value >>> 16;
  u8[at + 3] = value >>> 24;
}

/** Rounds a record size up to the ring's alignment. */
function alignRecord(bytes: number): number {
  return (bytes + ringRecordAlignBytes - 1) & ~(ringRecordAlignBytes - 1);
}

/** The producer's side of a ring. One thread only. */
export class RingProducer {
  readonly ring: CommandRing;
  /** Local copy of the write offset: only this side writes it. */
  #write: number;
  #pendingStart = -1;
  #pendingLength = 0;

  constructor(ring: CommandRing) {
    this.ring = ring;
    this.#write = Atomics.load(ring.i32, kRingWriteOffset);
  }

  /**
   * Reserves a record with room for `payloadBytes` and returns the byte offset (in `ring.u8`) to
   * write the payload at, or -1 if the ring has no room now. Call `publish()` after writing.
   */
  reserve(payloadBytes: number, type: number = recordTypeOperation): number {
    const ring = this.ring;
    const recordBytes = alignRecord(ringRecordHeaderBytes + payloadBytes);
    assert(recordBytes <= ring.recordBytesMax, 'record within the ring limit');
    const capacity = ring.capacityBytes;
    const used = (this.#write - Atomics.load(ring.i32, kRingReadOffset)) | 0;
    const position = this.#write & (capacity - 1);
    const tail = capacity - position;
    const padding = tail < recordBytes ? tail : 0;
    if (used + padding + recordBytes > capacity) return -1;
    if (padding > 0) {
      this.#writeHeader(position, padding, recordTypePadding);
      this.#write = (this.#write + padding) | 0;
    }
    const start = this.#write & (capacity - 1);
    this.#writeHeader(start, recordBytes, type);
    this.#pendingStart = start;
    this.#pendingLength = recordBytes;
    return ringHeaderBytes + start + ringRecordHeaderBytes;
  }

  /** Makes the reserved record (and any padding before it) visible to the consumer. */
  publish(): void {
    assert(this.#pendingStart >= 0, 'publish after reserve');
    this.#write = (this.#write + this.#pendingLength) | 0;
    this.#pendingStart = -1;
    Atomics.store(this.ring.i32, kRingWriteOffset, this.#write);
  }

  /**
   * Sends an encoded operation that may be larger than one record as a series of fragments.
   * Returns the number of bytes of `encoded` sent so far (call again with `sentBytes` when the ring
   * has room again); all of it when done.
   */
  sendFragments(encoded: Uint8Array, sentBytes: number): number {
    // A fragment's payload: total length u32, chunk length u32, chunk bytes.
    const chunkMax = this.ring.recordBytesMax - ringRecordHeaderBytes - 8;
    let sent = sentBytes;
    while (sent < encoded.length) {
      const chunk = Math.min(chunkMax, encoded.length - sent);
      const at = this.reserve(8 + chunk, recordTypeFragment);
      if (at < 0) return sent;
      const u8 = this.ring.u8;
      writeU32(u8, at, encoded.length);
      writeU32(u8, at + 4, chunk);
      u8.set(encoded.subarray(sent, sent + chunk), at + 8);
      this.publish();
      sent += chunk;
    }
    return sent;
  }

  #writeHeader(position: number, recordBytes: number, type: number): void {
    const u8 = this.ring.u8;
    const at = ringHeaderBytes + position;
    writeU32(u8, at, recordBytes);
    u8[at + 4] = type;
  }
}

/** The consumer's side of a ring: the partition owner. One thread only. */
export class RingConsumer {
  readonly ring: CommandRing;
  #read: number;
  /** Outputs of `next()`. */
  recordType = 0;
  payloadStart = 0;
  payloadBytes = 0;

  constructor(ring: CommandRing) {
    this.ring = ring;
    this.#read = Atomics.load(ring.i32, kRingReadOffset);
  }

  /** True if the producer has published records not yet consumed. */
  hasRecords(): boolean {
    return Atomics.load(this.ring.i32, kRingWriteOffset) !== this.#read;
  }

  /**
   * Moves to the next published record, skipping padding; false if there is none. The record stays
   * valid until `release()`.
   */
  next(): boolean {
    const ring = this.ring;
    const write = Atomics.load(ring.i32, kRingWriteOffset);
    while (write !== this.#read) {
      const at = ringHeaderBytes + (this.#read & (ring.capacityBytes - 1));
      const u8 = ring.u8;
      const recordBytes = (u8[at]! | (u8[at + 1]! << 8) | (u8[at + 2]! << 16) | (u8[at + 3]! << 24)) >>> 0;
      assert(
        recordBytes >= ringRecordHeaderBytes && recordBytes <= ring.capacityBytes && (recordBytes & 7) === 0,
        'ring record length is sane',
      );
      this.#read = (this.#read + recordBytes) | 0;
      const type = u8[at + 4]!;
      if (type === recordTypePadding) continue;
      this.recordType = type;
      this.payloadStart = at + ringRecordHeaderBytes;
      this.payloadBytes = recordBytes - ringRecordHeaderBytes;
      return true;
    }
    return false;
  }

  /**
   * Skips every record published and not yet consumed (their producer died) and frees their space.
   * Returns how many bytes were skipped.
   */
  skipPublished(): number {
    const write = Atomics.load(this.ring.i32, kRingWriteOffset);
    const skipped = (write - this.#read) | 0;
    this.#read = write;
    this.release();
    return skipped;
  }

  /** Frees the space of every record consumed so far. */
  release(): void {
    Atomics.store(this.ring.i32, kRingReadOffset, this.#read);
    // A producer blocked on space (e.g. mid-way through a fragmented operation) waits on this word.
    Atomics.notify(this.ring.i32, kRingReadOffset);
  }

  /** Records the status of operation `seq` and publishes completion of every operation up to it. */
  setStatus(seq: number, status: number): void {
    const ring = this.ring;
    ring.u8[ring.statusStart + (seq & (ring.statusSlots - 1))] = status;
  }

  /** Records why an operation is refused as full; before its completion is published. */
  recordPartitionFull(detail: PartitionFullDetail): void {
    const i32 = this.ring.i32;
    Atomics.store(i32, kRingFullNeededPages, Math.min(detail.neededPages, 0xffff_ffff) | 0);
    Atomics.store(i32, kRingFullAvailablePages, detail.availablePages | 0);
    Atomics.store(i32, kRingFullPagesMax, detail.pagesMax | 0);
    Atomics.store(i32, kRingFullPageSizeBytes, detail.pageSizeBytes | 0);
    Atomics.store(i32, kRingFullPool, detail.pool === true ? 1 : 0);
    Atomics.store(i32, kRingFullEntries, (detail.entries ?? 0) | 0);
    Atomics.store(i32, kRingFullRewrite, detail.rewrite === true ? 1 : 0);
  }

  /** The status recorded for operation `seq` (not yet completed). */
  statusOf(seq: number): number {
    const ring = this.ring;
    return ring.u8[ring.statusStart + (seq & (ring.statusSlots - 1))]!;
  }

  complete(seq: number): void {
    Atomics.store(this.ring.i32, kRingCompletedSeq, seq);
    Atomics.notify(this.ring.i32, kRingCompletedSeq);
  }
}
