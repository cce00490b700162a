import { compareBytes } from '../shared-memory/index.js';
import {
  type RangeRead,
  rangeHasLower,
  rangeHasUpper,
  rangeLowerInclusive,
  rangeUpperInclusive,
} from '../shared-memory/ring/transaction-codec.js';

interface KeyLock {
  reference: number;
  write: boolean;
}

/**
 * The locks of one partition's prepared transactions, kept by its owner only (no other thread writes
 * the partition, so no other thread needs them): the keys a prepared transaction will write, and
 * under serializable isolation the keys and ranges it read. Until its decision, a write to any of
 * them, or a read of a key it will write, conflicts and fails fast.
 */
export class LockTable {
  readonly #keys = new Map<string, KeyLock>();
  readonly #ranges: { reference: number; range: RangeRead }[] = [];

  get empty(): boolean {
    return this.#keys.size === 0 && this.#ranges.length === 0;
  }

  lockKey(key: Uint8Array, reference: number, write: boolean): void {
    const name = keyName(key);
    const held = this.#keys.get(name);
    if (held === undefined || write) this.#keys.set(name, { reference, write });
  }

  lockRange(range: RangeRead, reference: number): void {
    this.#ranges.push({ reference, range });
  }

  /** Drops every lock of a transaction. */
  unlock(reference: number, keys: readonly Uint8Array[]): void {
    for (const key of keys) {
      const name = keyName(key);
      if (this.#keys.get(name)?.reference === reference) this.#keys.delete(name);
    }
    for (let i = this.#ranges.length - 1; i >= 0; i--) {
      if (this.#ranges[i]!.reference === reference) this.#ranges.splice(i, 1);
    }
  }

  /** True if another transaction holds `key` in a way that forbids writing it. */
  blocksWrite(key: Uint8Array, reference: number): boolean {
    if (this.empty) return false;
    const held = this.#keys.get(keyName(key));
    if (held !== undefined && held.reference !== reference) return true;
    for (const { reference: holder, range } of this.#ranges) {
      if (holder !== reference && rangeContains(range, key)) return true;
    }
    return false;
  }

  /** True if another transaction will write `key`, so a read of it cannot be validated. */
  blocksRead(key: Uint8Array, reference: number): boolean {
    if (this.#keys.size === 0) return false;
    const held = this.#keys.get(keyName(key));
    return held?.write === true && held.reference !== reference;
  }

  /** True if another transaction will write some key within `range`. */
  blocksRangeRead(range: RangeRead, reference: number): boolean {
    for (const [name, held] of this.#keys) {
      if (held.write && held.reference !== reference && rangeContains(range, Buffer.from(name, 'latin1')))
        return true;
    }
    return false;
  }
}

function keyName(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export function rangeContains(range: RangeRead, key: Uint8Array): boolean {
  if ((range.flags & rangeHasLower) !== 0) {
    const order = compareBytes(key, 0, key.length, range.lower, 0, range.lower.length);
    if (order < 0 || (order === 0 && (range.flags & rangeLowerInclusive) === 0)) return false;
  }
  if ((range.flags & rangeHasUpper) !== 0) {
    const order = compareBytes(key, 0, key.length, range.upper, 0, range.upper.length);
    if (order > 0 || (order === 0 && (range.flags & rangeUpperInclusive) === 0)) return false;
  }
  return true;
}
