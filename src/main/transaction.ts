import {
  compareBytes,
  keyToBytes,
  LightningError,
  type RangeOptions,
  valueToBytes,
} from '../shared-memory/index.js';
import {
  type RangeRead,
  rangeHasLower,
  rangeHasUpper,
  rangeLowerInclusive,
  rangeUpperInclusive,
} from '../shared-memory/ring/transaction-codec.js';
import { parseRangeOptions } from '../shared-memory/tree/range-options.js';
import type { Snapshot } from './snapshot.js';

/** A write buffered by a transaction: a put (value) or a delete (null). */
export interface BufferedWrite {
  key: Uint8Array;
  value: Uint8Array | null;
}

function keyName(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/**
 * What the function given to `db.transaction()` works with: reads from the transaction's snapshot
 * (and its own buffered writes), writes buffered until commit. Every key read and every range scanned
 * is recorded: under serializable isolation the owners check at commit that none of them changed.
 */
export class Transaction {
  /** 0 on the first try, then 1, 2, ... on retries after conflicts. */
  readonly attempt: number;
  readonly #snapshot: Snapshot;
  readonly #writes = new Map<string, BufferedWrite>();
  readonly #reads = new Map<string, Uint8Array>();
  readonly #ranges: RangeRead[] = [];
  #finished = false;

  /** @internal Made by db.transaction(). */
  constructor(snapshot: Snapshot, attempt: number) {
    this.#snapshot = snapshot;
    this.attempt = attempt;
  }

  /** The snapshot's read timestamp. */
  get timestamp(): bigint {
    return this.#snapshot.timestamp;
  }

  get(key: Uint8Array | string): Buffer | undefined {
    this.#assertActive();
    const bytes = keyToBytes(key);
    const name = keyName(bytes);
    const own = this.#writes.get(name);
    if (own !== undefined) return own.value === null ? undefined : Buffer.from(own.value);
    if (!this.#reads.has(name)) this.#reads.set(name, bytes.slice());
    return this.#snapshot.get(bytes);
  }

  getString(key: Uint8Array | string): string | undefined {
    return this.get(key)?.toString('utf8');
  }

  put(key: Uint8Array | string, value: Uint8Array | string): void {
    this.#assertActive();
    const keyBytes = keyToBytes(key).slice();
    this.#writes.set(keyName(keyBytes), { key: keyBytes, value: valueToBytes(value).slice() });
  }

  del(key: Uint8Array | string): void {
    this.#assertActive();
    const keyBytes = keyToBytes(key).slice();
    this.#writes.set(keyName(keyBytes), { key: keyBytes, value: null });
  }

  /** Entries within the bounds at the snapshot, with this transaction's own writes applied. */
  range(options?: RangeOptions): IterableIterator<[Buffer, Buffer]> {
    this.#assertActive();
    const bounds = parseRangeOptions(options);
    let flags = 0;
    if (bounds.lower !== null) flags |= rangeHasLower | (bounds.lowerInclusive ? rangeLowerInclusive : 0);
    if (bounds.upper !== null) flags |= rangeHasUpper | (bounds.upperInclusive ? rangeUpperInclusive : 0);
    const empty = new Uint8Array(0);
    this.#ranges.push({
      flags,
      lower: bounds.lower?.slice() ?? empty,
      upper: bounds.upper?.slice() ?? empty,
    });
    const direction = bounds.reverse ? -1 : 1;
    const own = [...this.#writes.values()]
      .filter((write) => withinBounds(write.key, bounds))
      .sort((a, b) => direction * compareBytes(a.key, 0, a.key.length, b.key, 0, b.key.length));
    const stored = this.#snapshot.range({ ...options, limit: undefined });
    return mergeOwnWrites(stored, own, direction, bounds.limit);
  }

  /** @internal The buffered writes, reads and ranges, for the commit. */
  get writes(): BufferedWrite[] {
    return [...this.#writes.values()];
  }

  get reads(): Uint8Array[] {
    return [...this.#reads.values()];
  }

  get ranges(): RangeRead[] {
    return this.#ranges;
  }

  /** @internal After the function returned: any further use is a bug in the caller's code. */
  finish(): void {
    this.#finished = true;
  }

  #assertActive(): void {
    if (this.#finished) {
      throw new LightningError('ERR_CLOSED', 'the transaction has finished: use tx only inside its function');
    }
  }
}

function withinBounds(
  key: Uint8Array,
  bounds: {
    lower: Uint8Array | null;
    lowerInclusive: boolean;
    upper: Uint8Array | null;
    upperInclusive: boolean;
  },
): boolean {
  if (bounds.lower !== null) {
    const order = compareBytes(key, 0, key.length, bounds.lower, 0, bounds.lower.length);
    if (order < 0 || (order === 0 && !bounds.lowerInclusive)) return false;
  }
  if (bounds.upper !== null) {
    const order = compareBytes(key, 0, key.length, bounds.upper, 0, bounds.upper.length);
    if (order > 0 || (order === 0 && !bounds.upperInclusive)) return false;
  }
  return true;
}

/** Merges a sorted scan with sorted own writes: own puts replace or add entries, own deletes hide them. */
function* mergeOwnWrites(
  stored: Iterator<[Buffer, Buffer]>,
  own: BufferedWrite[],
  direction: number,
  limit: number,
): Generator<[Buffer, Buffer]> {
  let remaining = limit;
  let next = stored.next();
  let o = 0;
  while (remaining > 0) {
    const write = own[o];
    if (next.done === true && write === undefined) return;
    let order: number;
    if (next.done === true) order = 1;
    else if (write === undefined) order = -1;
    else {
      const key = next.value[0];
      order = direction * compareBytes(key, 0, key.length, write.key, 0, write.key.length);
    }
    if (order < 0) {
      yield next.value as [Buffer, Buffer];
      remaining--;
      next = stored.next();
      continue;
    }
    if (order === 0) next = stored.next();
    o++;
    if (write!.value === null) continue;
    yield [Buffer.from(write!.key), Buffer.from(write!.value)];
    remaining--;
  }
}
