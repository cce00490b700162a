import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import {
  encodeRecord,
  flushBytesMax,
  type H32Raw,
  isWalRecordType,
  lsnMax,
  recordBytes,
  recordPayloadBytesMax,
  type WalRecordType,
} from './wal-format.js';

/** The framing buffer starts small and grows by doubling. */
const framedBytesInitial = 64 * 1024;
/** A buffer that grew past this for a large batch is dropped after its write instead of kept. */
const framedBytesRetainMax = 8 * 1024 * 1024;

/**
 * What `take` hands the writer: `bytes` bytes of `buffer` to write, holding `records` records, and
 * the last LSN of each partition among them.
 */
export interface FramedBatch {
  readonly buffer: Buffer;
  readonly bytes: number;
  readonly records: number;
  readonly lastLsns: ReadonlyMap<number, number>;
}

/**
 * Frames appended records in memory until the writer takes them for one write call. The LSNs are the
 * caller's (each partition keeps its own sequence); the framer only checks they are safe integers.
 * Two buffers take turns: the one being written is out of reach of `append`, so appends go on while
 * a write is in flight, and no record is copied twice.
 */
export class RecordFramer {
  readonly #h32Raw: H32Raw;
  #buffer: Buffer = Buffer.allocUnsafe(framedBytesInitial);
  #bytes = 0;
  #spare: Buffer | null = null;
  #records = 0;
  #lastLsns = new Map<number, number>();

  constructor(h32Raw: H32Raw) {
    this.#h32Raw = h32Raw;
  }

  get pendingBytes(): number {
    return this.#bytes;
  }

  /**
   * Frames one record per payload for `partition`, all of `type`, with consecutive LSNs from
   * `firstLsn`. All-or-nothing: arguments are checked before anything is framed. O(total payload
   * bytes) for the copy and the checksums.
   */
  append(
    partition: number,
    firstLsn: number,
    type: WalRecordType,
    payloads: readonly Uint8Array[],
  ): { firstLsn: number; lastLsn: number } {
    if (!isWalRecordType(type))
      throw new LightningError('ERR_BAD_ARGUMENT', `unknown WAL record type ${type}`);
    if (!Array.isArray(payloads) || payloads.length === 0) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'append needs a non-empty array of payloads');
    }
    let bytes = 0;
    for (const payload of payloads) {
      if (!(payload instanceof Uint8Array)) {
        throw new LightningError('ERR_BAD_ARGUMENT', 'a payload must be a Uint8Array');
      }
      if (payload.length > recordPayloadBytesMax) {
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `a WAL record payload is at most ${recordPayloadBytesMax} bytes, got ${payload.length}`,
        );
      }
      bytes += recordBytes(payload.length);
    }
    // The bound keeps every segment within segmentBytesMax, which readers rely on.
    if (this.#bytes + bytes > flushBytesMax) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `appending ${bytes} bytes would leave more than ${flushBytesMax} bytes unflushed: flush first`,
      );
    }
    const lastLsn = firstLsn + payloads.length - 1;
    assert(Number.isSafeInteger(firstLsn) && firstLsn >= 1 && lastLsn <= lsnMax, 'LSNs stay safe integers');
    this.#reserve(bytes);
    let offset = this.#bytes;
    let lsn = firstLsn;
    for (const payload of payloads) {
      offset = encodeRecord(this.#h32Raw, this.#buffer, offset, partition, lsn++, type, payload);
    }
    assert(offset === this.#bytes + bytes, 'records framed where reserved');
    this.#bytes = offset;
    this.#records += payloads.length;
    this.#lastLsns.set(partition, lastLsn);
    return { firstLsn, lastLsn };
  }

  /** Hands over everything framed so far (null if nothing) and starts framing into the other buffer. */
  take(): FramedBatch | null {
    if (this.#bytes === 0) return null;
    const batch = {
      buffer: this.#buffer,
      bytes: this.#bytes,
      records: this.#records,
      lastLsns: this.#lastLsns,
    };
    this.#buffer = this.#spare ?? Buffer.allocUnsafe(framedBytesInitial);
    this.#spare = null;
    this.#bytes = 0;
    this.#records = 0;
    this.#lastLsns = new Map();
    return batch;
  }

  /** The records framed and not yet taken, as a copy (the replication leader ships them). */
  copyPending(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.#buffer, 0, this.#bytes);
  }

  /** Forgets every record framed and not yet taken (their LSNs are rolled back by their callers). */
  discardPending(): void {
    this.#bytes = 0;
    this.#records = 0;
    this.#lastLsns = new Map();
  }

  /** Gives back a taken buffer once its write finished, so the next batch reuses it. */
  recycle(buffer: Buffer): void {
    if (buffer.length <= framedBytesRetainMax) this.#spare = buffer;
  }

  /** Grows the current buffer to hold `bytes` more, keeping what it holds. */
  #reserve(bytes: number): void {
    const needed = this.#bytes + bytes;
    if (needed <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.min(flushBytesMax, Math.max(needed, this.#buffer.length * 2)));
    this.#buffer.copy(grown, 0, 0, this.#bytes);
    this.#buffer = grown;
  }
}
