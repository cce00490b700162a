/**
 * The part of lmdb-js's API the benchmarks use. lmdb-js is installed into bench/node_modules on first
 * use (bench/lib/peers.ts), not with the repository, so its calls are typed here and the benchmarks
 * type-check and build without it.
 */
declare module 'lmdb' {
  interface RootDatabaseOptions {
    path: string;
    compression?: boolean;
    keyEncoding?: 'binary' | 'ordered-binary' | 'uint32';
    encoding?: 'binary' | 'string' | 'json' | 'msgpack' | 'cbor';
    overlappingSync?: boolean;
    noSync?: boolean;
  }

  interface RangeOptions<K> {
    start?: K;
    end?: K;
    limit?: number;
  }

  interface RootDatabase<V, K> {
    /** A copy of the value's bytes, read synchronously from the memory map. */
    getBinary(key: K): Buffer | undefined;
    /** Inside a transaction callback, writes into the running transaction. */
    putSync(key: K, value: V): void;
    /** Batched with every put issued in the same event turn into one write transaction. */
    put(key: K, value: V): Promise<boolean>;
    getRange(options: RangeOptions<K>): Iterable<{ key: K; value: V }>;
    transaction<T>(action: () => T): Promise<T>;
    transactionSync<T>(action: () => T): T;
    /** Resolves when earlier writes are committed and synced. */
    readonly flushed: Promise<boolean>;
    getCount(): number;
    close(): Promise<void>;
  }

  function open<V, K>(options: RootDatabaseOptions): RootDatabase<V, K>;
  const v8AccelerationEnabled: boolean;
}
