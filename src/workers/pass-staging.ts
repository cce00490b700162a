import { bytesName } from '../shared-memory/index.js';
import type { BatchEntry } from '../shared-memory/ring/operation-codec.js';
import { type DecodedTransaction, isolationSerializable } from '../shared-memory/ring/transaction-codec.js';
import { keyWithin } from '../shared-memory/tree/range-options.js';
import { noReservation, type PassReservation } from './pass-reservation.js';

/** Where one staged operation's bytes lie, and what it is. */
export interface StagedOperation {
  partition: number;
  /** The buffer holding its bytes: the staging buffer (`PassStaging.bytes`) when null. */
  source: Uint8Array | null;
  start: number;
  end: number;
  /** LSN of the log record that carries it (the prepare record, for a prepare). */
  lsn: number;
}

const initialBytes = 1 << 16;

/**
 * The operations an owner's pass has accepted, logged and not yet applied.
 *
 * The pass is: stage (validate, reserve, append to the log) → write and sync the log → apply what was
 * staged to the trees → publish. Between staging and applying, the operations live here: their bytes
 * are copied out of the command rings (so ring space is reused while the log syncs) into one buffer
 * per pass, which is reused, so staging allocates nothing per operation in the steady state.
 *
 * Staged writes are not in the trees yet, so a transaction validated later in the same pass cannot
 * see them there: the keys staged so far are kept per partition for it (built only once a transaction
 * is validated, so passes of plain writes pay nothing for them).
 */
export class PassStaging {
  #buffer = new Uint8Array(initialBytes);
  #filled = 0;
  readonly operations: StagedOperation[] = [];
  /** Per partition, every write staged in this pass and what they may allocate (reserveForPass). */
  readonly #reserved = new Map<number, PassReservation>();
  /** Per partition, the names of keys staged so far; null until a transaction needs them. */
  #stagedKeys: Map<number, Set<string>> | null = null;
  /** How many of `operations` the key sets cover. */
  #keysCovered = 0;
  /** Decodes a staged operation's entries, for the key sets. */
  readonly #entriesOf: (operation: StagedOperation) => readonly BatchEntry[];

  constructor(entriesOf: (operation: StagedOperation) => readonly BatchEntry[]) {
    this.#entriesOf = entriesOf;
  }

  get empty(): boolean {
    return this.operations.length === 0;
  }

  /** The staging buffer, holding the operations whose `source` is null; valid until `clear()`. */
  get bytes(): Uint8Array {
    return this.#buffer;
  }

  /** The buffer holding a staged operation's bytes, at [operation.start, operation.end). */
  bytesOf(operation: StagedOperation): Uint8Array {
    return operation.source ?? this.#buffer;
  }

  /** What the operations staged for `partition` in this pass may allocate when they apply. */
  reserved(partition: number): Readonly<PassReservation> | null {
    return this.#reserved.get(partition) ?? noReservation;
  }

  /**
   * Keeps an accepted operation; `reserved` is what its application may allocate. Bytes in a
   * SharedArrayBuffer (a command ring, whose space is reused once the pass has read it) are copied
   * into the staging buffer; bytes in an ordinary buffer (an operation reassembled from fragments, or
   * one that waited for a lock) belong to the pass already and are kept where they are, so a batch of
   * many megabytes is not copied again, nor does it leave the staging buffer that large.
   */
  add(
    partition: number,
    source: Uint8Array,
    start: number,
    end: number,
    lsn: number,
    reserved: Readonly<PassReservation> | null,
  ): void {
    if (!(source.buffer instanceof SharedArrayBuffer)) {
      this.operations.push({ partition, source, start, end, lsn });
      this.#addReserved(partition, reserved);
      return;
    }
    const length = end - start;
    if (this.#filled + length > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#filled + length));
      grown.set(this.#buffer.subarray(0, this.#filled));
      this.#buffer = grown;
    }
    this.#buffer.set(source.subarray(start, end), this.#filled);
    this.operations.push({ partition, source: null, start: this.#filled, end: this.#filled + length, lsn });
    this.#filled += length;
    this.#addReserved(partition, reserved);
  }

  /** `reserved`: the pass's reservation for the partition with this operation (reserveForPass). */
  #addReserved(partition: number, reserved: Readonly<PassReservation> | null): void {
    if (reserved !== null) this.#reserved.set(partition, reserved);
  }

  /**
   * True if a write staged earlier in this pass touches what the transaction part depends on: its
   * writes, and under serializable isolation its reads and scanned ranges. Such a write commits after
   * the part's read timestamp, so the part conflicts, exactly as if the write were already applied.
   */
  touchesStaged(part: DecodedTransaction): boolean {
    if (this.operations.length === 0) return false;
    const keys = this.#keysOf(part.partition);
    if (keys.size === 0) return false;
    for (const entry of part.writes) if (keys.has(bytesName(entry.key))) return true;
    if (part.isolation !== isolationSerializable) return false;
    for (const key of part.reads) if (keys.has(bytesName(key))) return true;
    if (part.ranges.length === 0) return false;
    for (const name of keys) {
      const key = Buffer.from(name, 'latin1');
      for (const range of part.ranges) if (keyWithin(key, range)) return true;
    }
    return false;
  }

  /** Forgets everything staged: called once the pass applied it. The buffer is kept for reuse. */
  clear(): void {
    this.operations.length = 0;
    this.#filled = 0;
    this.#reserved.clear();
    this.#stagedKeys = null;
    this.#keysCovered = 0;
  }

  #keysOf(partition: number): ReadonlySet<string> {
    this.#stagedKeys ??= new Map();
    const all = this.#stagedKeys;
    const operations = this.operations;
    for (; this.#keysCovered < operations.length; this.#keysCovered++) {
      const operation = operations[this.#keysCovered]!;
      let keys = all.get(operation.partition);
      if (keys === undefined) {
        keys = new Set();
        all.set(operation.partition, keys);
      }
      for (const entry of this.#entriesOf(operation)) keys.add(bytesName(entry.key));
    }
    return all.get(partition) ?? emptyKeys;
  }
}

const emptyKeys: ReadonlySet<string> = new Set();
