import { assert } from '../shared-memory/assert.js';
import { bytesName } from '../shared-memory/index.js';
import { type KeyInterval, keyWithin } from '../shared-memory/tree/range-options.js';

/** No transaction holds the write lock of a key. */
const noWriter = -1;

/** Every hold on one key: any number of readers, at most one writer. */
interface KeyHolds {
  key: Uint8Array;
  /** Status references of the transactions that read the key. */
  readers: Set<number>;
  /** Status reference of the transaction that will write the key, or noWriter. */
  writer: number;
}

/**
 * The locks of one partition's prepared transactions, kept by its owner only (no other thread writes
 * the partition, so no other thread needs them): the keys a prepared transaction will write, and
 * under serializable isolation the keys and ranges it read. Until its decision, a write to any of
 * them, or a read of a key it will write, conflicts and fails fast.
 *
 * A key may be held by many transactions at once: every prepared reader keeps its own hold, so the
 * decision of one reader leaves the others' holds in place. Validation keeps readers and writers of
 * different transactions apart; a transaction that reads and writes a key holds it both ways, and
 * its own holds never block it.
 */
export class LockTable {
  readonly #keys = new Map<string, KeyHolds>();
  readonly #ranges: { reference: number; range: KeyInterval }[] = [];

  get empty(): boolean {
    return this.#keys.size === 0 && this.#ranges.length === 0;
  }

  /** Adds a hold of transaction `reference` on `key`, for writing or reading. O(1). */
  lockKey(key: Uint8Array, reference: number, write: boolean): void {
    const name = bytesName(key);
    let holds = this.#keys.get(name);
    if (holds === undefined) {
      holds = { key, readers: new Set(), writer: noWriter };
      this.#keys.set(name, holds);
    }
    if (!write) {
      holds.readers.add(reference);
      return;
    }
    assert(holds.writer === noWriter || holds.writer === reference, 'a key has at most one writer');
    holds.writer = reference;
  }

  lockRange(range: KeyInterval, reference: number): void {
    this.#ranges.push({ reference, range });
  }

  /** Drops every hold of a transaction on `keys` and every range it locked; others' holds stay. */
  unlock(reference: number, keys: readonly Uint8Array[]): void {
    for (const key of keys) {
      const name = bytesName(key);
      const holds = this.#keys.get(name);
      if (holds === undefined) continue;
      holds.readers.delete(reference);
      if (holds.writer === reference) holds.writer = noWriter;
      if (holds.readers.size === 0 && holds.writer === noWriter) this.#keys.delete(name);
    }
    for (let i = this.#ranges.length - 1; i >= 0; i--) {
      if (this.#ranges[i]!.reference === reference) this.#ranges.splice(i, 1);
    }
  }

  /** True if another transaction holds `key`, or a range around it, in any way: writing it must wait. */
  blocksWrite(key: Uint8Array, reference: number): boolean {
    if (this.empty) return false;
    const holds = this.#keys.get(bytesName(key));
    if (holds !== undefined && (writtenByOther(holds, reference) || readByOther(holds, reference)))
      return true;
    for (const { reference: holder, range } of this.#ranges) {
      if (holder !== reference && keyWithin(key, range)) return true;
    }
    return false;
  }

  /** True if another transaction will write `key`, so a read of it cannot be validated. */
  blocksRead(key: Uint8Array, reference: number): boolean {
    if (this.#keys.size === 0) return false;
    const holds = this.#keys.get(bytesName(key));
    return holds !== undefined && writtenByOther(holds, reference);
  }

  /** True if another transaction will write some key within `range`. O(keys held). */
  blocksRangeRead(range: KeyInterval, reference: number): boolean {
    for (const holds of this.#keys.values()) {
      if (writtenByOther(holds, reference) && keyWithin(holds.key, range)) return true;
    }
    return false;
  }
}

function writtenByOther(holds: KeyHolds, reference: number): boolean {
  return holds.writer !== noWriter && holds.writer !== reference;
}

function readByOther(holds: KeyHolds, reference: number): boolean {
  const readers = holds.readers;
  return readers.size > 1 || (readers.size === 1 && !readers.has(reference));
}
