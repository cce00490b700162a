/**
 * The part of classic-level's API the benchmarks use. classic-level is installed into
 * bench/node_modules on first use (bench/lib/peers.ts), not with the repository, so its calls are
 * typed here and the benchmarks type-check and build without it.
 */
declare module 'classic-level' {
  interface ClassicLevelOptions {
    keyEncoding?: 'buffer' | 'utf8' | 'view';
    valueEncoding?: 'buffer' | 'utf8' | 'view';
  }

  interface WriteOptions {
    /** Sync LevelDB's log before the write is acknowledged. */
    sync?: boolean;
  }

  interface ChainedBatch<K, V> {
    put(key: K, value: V): this;
    write(options?: WriteOptions): Promise<void>;
  }

  interface IteratorOptions<K> {
    gte?: K;
    limit?: number;
  }

  class ClassicLevel<K, V> {
    constructor(location: string, options?: ClassicLevelOptions);
    open(): Promise<void>;
    get(key: K): Promise<V | undefined>;
    getMany(keys: K[]): Promise<(V | undefined)[]>;
    put(key: K, value: V, options?: WriteOptions): Promise<void>;
    batch(): ChainedBatch<K, V>;
    iterator(options?: IteratorOptions<K>): { all(): Promise<[K, V][]> };
    keys(): { all(): Promise<K[]> };
    close(): Promise<void>;
  }
}
