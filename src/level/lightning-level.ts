import { type AbstractDatabaseOptions, AbstractLevel } from 'abstract-level';
import { type BatchOperation, type Database, isLightningError, type OpenOptions, open } from '../index.js';
import { LevelError, toLevelError } from './level-errors.js';
import {
  type IteratorSource,
  type LevelIteratorOptions,
  LightningIterator,
  LightningKeyIterator,
  LightningValueIterator,
  toFormat,
} from './lightning-iterators.js';
import { LightningSnapshot, snapshotOf } from './lightning-snapshot.js';
import { type LevelRangeOptions, RangeCursor, type StoreData } from './range-cursor.js';

/** Options of `new LightningLevel()`: Level's, plus lightning-db's open options but `create`. */
export interface LightningLevelOptions<K = string, V = string>
  extends AbstractDatabaseOptions<K, V>,
    Omit<OpenOptions, 'create'> {}

/** What abstract-level passes to the private methods: the store format of keys and values. */
interface FormatOptions {
  keyEncoding: string;
  valueEncoding?: string;
  snapshot?: unknown;
}

interface LevelOperation {
  type: 'put' | 'del';
  key: StoreData;
  value?: StoreData;
}

/** The manifest abstract-level's constructor takes. */
type LevelManifest = ConstructorParameters<typeof AbstractLevel>[0];

/**
 * lightning-db's open options, which the constructor takes out of its options; everything else is
 * Level's (including options of the caller's own, which Level hands to hooks). Typed as a record of
 * every OpenOptions key but `create`, so an option added to lightning-db must be listed here.
 */
const lightningOptionNames: Record<keyof Omit<OpenOptions, 'create'>, true> = {
  partitions: true,
  workers: true,
  workersPerNode: true,
  pinWorkers: true,
  durability: true,
  syncIntervalMs: true,
  checkpointWalBytes: true,
  pageSizeBytes: true,
  partitionBytesMax: true,
  memoryMaxBytes: true,
  threadsMax: true,
  readOnly: true,
  replication: true,
  failpoints: true,
  fileLayer: true,
};

/** Keys deleted per atomic batch by clear(): bounds the memory a large clear holds at once. */
const clearBatchKeys = 1024;

/**
 * An abstract-level database over lightning-db, so Level's ecosystem (sublevels, encodings, hooks,
 * level-* modules) works on it. Everything goes through lightning-db's public API: reads are its
 * synchronous get (so `getSync` works), writes its put/del/batch (a Level batch is one atomic
 * lightning-db batch, even across partitions), iterators its snapshot range scans.
 */
export class LightningLevel<K = string, V = string> extends AbstractLevel<Buffer | string, K, V> {
  readonly #location: string;
  readonly #openOptions: OpenOptions;
  #database: Database | null = null;

  constructor(location: string, options?: LightningLevelOptions<K, V>) {
    if (typeof location !== 'string' || location === '') {
      throw new TypeError("The first argument 'location' must be a non-empty string");
    }
    const levelOptions: Record<string, unknown> = {};
    const openOptions: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(options ?? {})) {
      (Object.hasOwn(lightningOptionNames, name) ? openOptions : levelOptions)[name] = value;
    }
    // Cast: level-supports' manifest type predates getSync and has.
    const manifest = {
      encodings: { buffer: true, utf8: true },
      // Declared only for what the Level suite checks here; see docs/level.md.
      createIfMissing: true,
      errorIfExists: true,
      permanence: true,
      implicitSnapshots: true,
      explicitSnapshots: true,
      seek: true,
      getSync: true,
      has: true,
      signals: { iterators: false },
    };
    super(manifest as LevelManifest, levelOptions as AbstractDatabaseOptions<K, V>);
    this.#location = location;
    this.#openOptions = openOptions as OpenOptions;
  }

  /** The directory of the database. */
  get location(): string {
    return this.#location;
  }

  /** The lightning-db database underneath, for what Level has no words for (transactions, stats). */
  get database(): Database {
    if (this.#database === null) {
      throw new LevelError('LEVEL_DATABASE_NOT_OPEN', 'Database is not open');
    }
    return this.#database;
  }

  async _open(options: { createIfMissing: boolean; errorIfExists: boolean }): Promise<void> {
    if (options.errorIfExists) {
      // lightning-db has no "fail if it exists" mode: an open that may not create tells.
      const existing = await openIfExists(this.#location, this.#openOptions);
      if (existing !== null) {
        await existing.close();
        throw new LevelError('LEVEL_DATABASE_EXISTS', `Database already exists at ${this.#location}`);
      }
    }
    try {
      this.#database = await open(this.#location, { ...this.#openOptions, create: options.createIfMissing });
    } catch (error) {
      if (!options.createIfMissing && isMissingDatabase(error)) {
        throw new LevelError('LEVEL_DATABASE_MISSING', `Database does not exist at ${this.#location}`, error);
      }
      throw error;
    }
  }

  async _close(): Promise<void> {
    const database = this.#database;
    this.#database = null;
    await database?.close();
  }

  async _get(key: StoreData, options: FormatOptions): Promise<StoreData | undefined> {
    return this._getSync(key, options);
  }

  _getSync(key: StoreData, options: FormatOptions): StoreData | undefined {
    const value = this.#read(key, options.snapshot);
    return value === undefined ? undefined : toFormat(value, options.valueEncoding);
  }

  async _getMany(keys: StoreData[], options: FormatOptions): Promise<(StoreData | undefined)[]> {
    return this.#atOneSnapshot(options.snapshot, keys.length, (read) =>
      keys.map((key) => {
        const value = read(key);
        return value === undefined ? undefined : toFormat(value, options.valueEncoding);
      }),
    );
  }

  async _has(key: StoreData, options: FormatOptions): Promise<boolean> {
    return this.#read(key, options.snapshot) !== undefined;
  }

  async _hasMany(keys: StoreData[], options: FormatOptions): Promise<boolean[]> {
    return this.#atOneSnapshot(options.snapshot, keys.length, (read) =>
      keys.map((key) => read(key) !== undefined),
    );
  }

  async _put(key: StoreData, value: StoreData): Promise<void> {
    try {
      await this.database.put(key, value);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  async _del(key: StoreData): Promise<void> {
    try {
      await this.database.del(key);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  async _batch(operations: LevelOperation[]): Promise<void> {
    const batch: BatchOperation[] = operations.map((operation) =>
      operation.type === 'put'
        ? { type: 'put', key: operation.key, value: operation.value as StoreData }
        : { type: 'del', key: operation.key },
    );
    try {
      await this.database.batch(batch);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /**
   * Deletes the keys of the range as they were when clear() was called (read at a snapshot), in
   * atomic batches of `clearBatchKeys`: a clear is not atomic as a whole, which Level allows.
   */
  async _clear(options: LevelRangeOptions & { snapshot?: unknown }): Promise<void> {
    let cursor: RangeCursor;
    try {
      cursor = new RangeCursor(this.database, snapshotOf(options.snapshot), options);
    } catch (error) {
      throw toLevelError(error);
    }
    try {
      for (;;) {
        const batch: BatchOperation[] = [];
        for (let entry = cursor.next(); entry !== undefined; entry = cursor.next()) {
          batch.push({ type: 'del', key: entry[0] });
          if (batch.length === clearBatchKeys) break;
        }
        if (batch.length === 0) return;
        await this.database.batch(batch);
      }
    } finally {
      cursor.close();
    }
  }

  _iterator(options: LevelIteratorOptions & { snapshot?: unknown }): LightningIterator {
    return new LightningIterator(this, this.#iteratorSource(options), options);
  }

  _keys(options: LevelIteratorOptions & { snapshot?: unknown }): LightningKeyIterator {
    return new LightningKeyIterator(this, this.#iteratorSource(options), options);
  }

  _values(options: LevelIteratorOptions & { snapshot?: unknown }): LightningValueIterator {
    return new LightningValueIterator(this, this.#iteratorSource(options), options);
  }

  _snapshot(options: { owner: object }): LightningSnapshot {
    return new LightningSnapshot(options, this.database.snapshot());
  }

  #iteratorSource(options: { snapshot?: unknown }): IteratorSource {
    return { database: this.database, snapshot: snapshotOf(options.snapshot) };
  }

  #read(key: StoreData, snapshotOption: unknown): Buffer | undefined {
    try {
      return (snapshotOf(snapshotOption) ?? this.database).get(key);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /**
   * Runs `fn` with a reader that reads at one snapshot: the given one, or (for more than one key) one
   * taken for the call, so getMany never mixes states of a write applied between two of its reads.
   */
  #atOneSnapshot<T>(
    snapshotOption: unknown,
    keyCount: number,
    fn: (read: (key: StoreData) => Buffer | undefined) => T,
  ): T {
    const given = snapshotOf(snapshotOption);
    const snapshot = given ?? (keyCount > 1 ? this.database.snapshot() : null);
    const reader = snapshot ?? this.database;
    try {
      return fn((key) => reader.get(key));
    } catch (error) {
      throw toLevelError(error);
    } finally {
      if (given === null) snapshot?.release();
    }
  }
}

/** Opens the database at `location` if there is one; null if there is none. */
async function openIfExists(location: string, options: OpenOptions): Promise<Database | null> {
  try {
    return await open(location, { ...options, create: false });
  } catch (error) {
    if (isMissingDatabase(error)) return null;
    throw error;
  }
}

/** True for open()'s error when `create: false` finds no database. */
function isMissingDatabase(error: unknown): boolean {
  return isLightningError(error, 'ERR_BAD_ARGUMENT') && error.message.includes('no database at');
}
