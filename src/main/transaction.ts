import { bytesName, compareBytes, LightningError } from '../shared-memory/index.js';
import { type KeyInterval, keyWithin, type RangeBounds } from '../shared-memory/tree/range-options.js';
import type { Bytes, Out } from './api/encoding-types.js';
import { type Encodings, encodeBounds, encodeKeyCopy, encodeValue, noEncodings } from './api/encodings.js';
import type { KeyRange } from './api/scan-options.js';
import type { Snapshot } from './snapshot.js';
import type { Store } from './stores/store.js';
import { assertOutsideStoreRegion, defaultRangeBounds, storeRegionFirstByte } from './stores/store-keys.js';
import { TransactionStore } from './stores/store-views.js';

/** A write buffered by a transaction: a put (value) or a delete (null). */
export interface BufferedWrite {
  key: Uint8Array;
  value: Uint8Array | null;
}

/**
 * What the function given to `db.transaction()` works with: reads from the transaction's snapshot
 * (and its own buffered writes), writes buffered until commit. Every key read and every range scanned
 * is recorded: under serializable isolation the owners check at commit that none of them changed.
 */
export class Transaction<K = Bytes, V = Bytes> {
  /**
   * 0 on the first try, then 1, 2, ... on each retry: after a conflict, or (over a buffer pool) after
   * waiting for a page set, which does not count against `retries`.
   */
  readonly attempt: number;
  readonly #snapshot: Snapshot;
  readonly #writes = new Map<string, BufferedWrite>();
  readonly #reads = new Map<string, Uint8Array>();
  readonly #ranges: KeyInterval[] = [];
  #finished = false;
  #encodings: Encodings = noEncodings;

  /** @internal Made by db.transaction(). */
  constructor(snapshot: Snapshot, attempt: number) {
    this.#snapshot = snapshot;
    this.attempt = attempt;
  }

  /** @internal Makes the transaction encode keys and values as its database does. */
  withEncodings<K2, V2>(encodings: Encodings): Transaction<K2, V2> {
    this.#encodings = encodings;
    return this as unknown as Transaction<K2, V2>;
  }

  /** The snapshot's read timestamp. */
  get timestamp(): bigint {
    return this.#snapshot.timestamp;
  }

  get(key: K): Out<V> | undefined {
    const value = this.#read(key);
    const codec = this.#encodings.values;
    return (value === undefined || codec === null ? value : codec.decode(value)) as Out<V> | undefined;
  }

  /** The stored bytes of the value under `key` as UTF-8, whatever the value encoding. */
  getString(key: K): string | undefined {
    return this.#read(key)?.toString('utf8');
  }

  #read(key: K): Buffer | undefined {
    this.#assertActive();
    const bytes = encodeKeyCopy(this.#encodings.keys, key);
    if (bytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(bytes);
    return this.readKey(bytes);
  }

  /** @internal A read of any key, the store region's included (for named stores). */
  readKey(bytes: Uint8Array): Buffer | undefined {
    this.#assertActive();
    const name = bytesName(bytes);
    const own = this.#writes.get(name);
    if (own !== undefined) return own.value === null ? undefined : Buffer.from(own.value);
    if (!this.#reads.has(name)) this.#reads.set(name, bytes.slice());
    return this.#snapshot.readKey(bytes);
  }

  put(key: K, value: V): void {
    this.#assertActive();
    const keyBytes = encodeKeyCopy(this.#encodings.keys, key);
    if (keyBytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(keyBytes);
    this.writeKey(keyBytes, encodeValue(this.#encodings.values, value));
  }

  del(key: K): void {
    this.#assertActive();
    const keyBytes = encodeKeyCopy(this.#encodings.keys, key);
    if (keyBytes[0] === storeRegionFirstByte) assertOutsideStoreRegion(keyBytes);
    this.writeKey(keyBytes, null);
  }

  /** @internal Buffers a put (a value) or a delete (null) of any key, the store region's included. */
  writeKey(keyBytes: Uint8Array, value: Uint8Array | null): void {
    this.#assertActive();
    const key = keyBytes.slice();
    this.#writes.set(bytesName(key), { key, value: value === null ? null : value.slice() });
  }

  /** Entries within the bounds at the snapshot, with this transaction's own writes applied. */
  range(options?: KeyRange<K>): IterableIterator<[Out<K>, Out<V>]> {
    this.#assertActive();
    const merged = this.rangeWithin(defaultRangeBounds(encodeBounds(this.#encodings.keys, options)));
    const { keys, values } = this.#encodings;
    if (keys === null && values === null) return merged as IterableIterator<[Out<K>, Out<V>]>;
    return decodeEntries(merged, this.#encodings) as IterableIterator<[Out<K>, Out<V>]>;
  }

  /** @internal `range` within bounds parsed already, which may lie in the store region. */
  rangeWithin(bounds: RangeBounds): IterableIterator<[Buffer, Buffer]> {
    this.#assertActive();
    this.#ranges.push({
      lower: bounds.lower?.slice() ?? null,
      lowerInclusive: bounds.lowerInclusive,
      upper: bounds.upper?.slice() ?? null,
      upperInclusive: bounds.upperInclusive,
    });
    const direction = bounds.reverse ? -1 : 1;
    const own = [...this.#writes.values()]
      .filter((write) => keyWithin(write.key, bounds))
      .sort((a, b) => direction * compareBytes(a.key, 0, a.key.length, b.key, 0, b.key.length));
    const stored = this.#snapshot.rangeWithin({ ...bounds, limit: Infinity });
    return mergeOwnWrites(stored, own, direction, bounds.limit);
  }

  /** Named store `store` within this transaction: get, getString, put, del and range, keys without its prefix. */
  store<SK, SV>(store: Store<SK, SV>): TransactionStore<SK, SV> {
    this.#assertActive();
    return new TransactionStore(this as unknown as Transaction, this.#snapshot.source, store);
  }

  /** @internal The buffered writes, reads and ranges, for the commit. */
  get writes(): BufferedWrite[] {
    return [...this.#writes.values()];
  }

  get reads(): Uint8Array[] {
    return [...this.#reads.values()];
  }

  get ranges(): KeyInterval[] {
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

function* decodeEntries(
  entries: Iterable<[Buffer, Buffer]>,
  encodings: Encodings,
): Generator<[unknown, unknown]> {
  const { keys, values } = encodings;
  for (const [key, value] of entries) {
    yield [keys === null ? key : keys.decode(key), values === null ? value : values.decode(value)];
  }
}
