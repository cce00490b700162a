/**
 * YCSB keys: key number k is named "user" + fnvhash64(k) in decimal (CoreWorkload.buildKeyName with
 * hashed inserts), zero-padded to 19 digits so every key has the same length and byte order equals
 * numeric order. The hash scatters consecutive key numbers over the key space, so a load in key-number
 * order writes in random key order.
 *
 * All keys of a run are written once, before the clock starts, into one byte table. A store then cuts
 * its key out of the table per operation, in the form it takes natively (a Buffer view, or a string),
 * as a server would from a request: that per-operation cost is the same for every store.
 */
import { fnvHash64Decimal } from './generators.js';

const prefix = 'user';
/** fnvhash64 is at most 2^63: 19 decimal digits. */
const digits = 19;
export const keyBytes = prefix.length + digits;

export function keyName(keyNumber: number): string {
  return prefix + fnvHash64Decimal(keyNumber).padStart(digits, '0');
}

export class KeyTable {
  readonly bytes: Buffer;
  readonly capacity: number;

  /** Fills `memory` (or a new buffer) with the names of key numbers 0..capacity-1. */
  constructor(capacity: number, memory?: ArrayBufferLike) {
    this.capacity = capacity;
    const needed = capacity * keyBytes;
    if (memory !== undefined && memory.byteLength < needed) {
      throw new Error(`key table memory holds ${memory.byteLength} bytes, needs ${needed}`);
    }
    this.bytes = memory === undefined ? Buffer.alloc(needed) : Buffer.from(memory, 0, needed);
  }

  /** Writes every key name into the table (a few hundred ms per million keys). */
  fill(): this {
    for (let k = 0; k < this.capacity; k++) this.bytes.write(keyName(k), k * keyBytes, 'latin1');
    return this;
  }

  /** Key k as a view into the table (no copy). */
  buffer(k: number): Buffer {
    const offset = k * keyBytes;
    return this.bytes.subarray(offset, offset + keyBytes);
  }

  /** Key k as a fresh string: its hash is not cached yet, as for a key parsed from a request. */
  string(k: number): string {
    const offset = k * keyBytes;
    return this.bytes.toString('latin1', offset, offset + keyBytes);
  }

  /** Byte order of key k against `other` (keyBytes bytes at `otherOffset`). */
  compareWith(k: number, other: Buffer, otherOffset: number): number {
    const offset = k * keyBytes;
    return this.bytes.compare(other, otherOffset, otherOffset + keyBytes, offset, offset + keyBytes);
  }
}
