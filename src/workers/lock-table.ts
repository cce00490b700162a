import { bytesName } from '../shared-memory/index.js';
import { type KeyInterval, keyWithin } from '../shared-memory/tree/range-options.js';

interface KeyLock {
  reference: number;
  write: boolean;
  key: Uint8Array;
}

/**
 * The locks of one partition's prepared transactions, kept by its owner only (no other thread writes
 * the partition, so no other thread needs them): the keys a prepared transaction will write, and
 * under serializable isolation the keys and ranges it read. Until its decision, a write to any of
 * them, or a read of a key it will write, conflicts and fails fast.
 */
export class LockTable {
  readonly #keys = new Map<string, KeyLock>();
  readonly #ranges: { reference: number; range: KeyInterval }[] = [];

  get empty(): boolean {
    return this.#keys.size === 0 && this.#ranges.length === 0;
  }

  lockKey(key: Uint8Array, reference: number, write: boolean): void {
    const name = bytesName(key);
    const held = this.#keys.get(name);
    if (held === undefined || write) this.#keys.set(name, { reference, write, key });
  }

  lockRange(range: KeyInterval, reference: number): void {
    this.#ranges.push({ reference, range });
  }

  /** Drops every lock of a transaction. */
  unlock(reference: number, keys: readonly Uint8Array[]): void {
    for (const key of keys) {
      const name = bytesName(key);
      if (this.#keys.get(name)?.reference === reference) this.#keys.delete(name);
    }
    for (let i = this.#ranges.length - 1; i >= 0; i--) {
      if (this.#ranges[i]!.reference === reference) this.#ranges.splice(i, 1);
    }
  }

  /** True if another transaction holds `key` in a way that forbids writing it. */
  blocksWrite(key: Uint8Array, reference: number): boolean {
    if (this.empty) return false;
    const held = this.#keys.get(bytesName(key));
    if (held !== undefined && held.reference !== reference) return true;
    for (const { reference: holder, range } of this.#ranges) {
      if (holder !== reference && keyWithin(key, range)) return true;
    }
    return false;
  }

  /** True if another transaction will write `key`, so a read of it cannot be validated. */
  blocksRead(key: Uint8Array, reference: number): boolean {
    if (this.#keys.size === 0) return false;
    const held = this.#keys.get(bytesName(key));
    return held?.write === true && held.reference !== reference;
  }

  /** True if another transaction will write some key within `range`. */
  blocksRangeRead(range: KeyInterval, reference: number): boolean {
    for (const held of this.#keys.values()) {
      if (held.write && held.reference !== reference && keyWithin(held.key, range)) return true;
    }
    return false;
  }
}
