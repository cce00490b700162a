import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import type { Database, Snapshot } from '../index.js';
import { toLevelError } from './level-errors.js';
import { type LevelRangeOptions, RangeCursor, type StoreData } from './range-cursor.js';

/** The options abstract-level passes to `_iterator`, `_keys` and `_values`. */
export interface LevelIteratorOptions extends LevelRangeOptions {
  keys?: boolean;
  values?: boolean;
  keyEncoding: string;
  valueEncoding?: string;
}

/** Where an iterator reads: the database, and the explicit snapshot it was given (or null). */
export interface IteratorSource {
  database: Database;
  snapshot: Snapshot | null;
}

/** Buffers as the store format asks: strings for 'utf8', Buffers otherwise. */
export function toFormat(bytes: Buffer, encoding: string | undefined): StoreData {
  return encoding === 'utf8' ? bytes.toString('utf8') : bytes;
}

/**
 * Reads up to `size` items from the cursor, each made by `pick`. All of it is synchronous work on
 * shared memory, so one call yields a whole batch without waiting on anything.
 */
function take<T>(cursor: RangeCursor, size: number, pick: (entry: [Buffer, Buffer]) => T): T[] {
  const items: T[] = [];
  while (items.length < size) {
    const entry = cursor.next();
    if (entry === undefined) break;
    items.push(pick(entry));
  }
  return items;
}

function openCursor(source: IteratorSource, options: LevelIteratorOptions): RangeCursor {
  try {
    return new RangeCursor(source.database, source.snapshot, options);
  } catch (error) {
    throw toLevelError(error);
  }
}

/** Entries `[key, value]`; a key or value the caller asked not to get is undefined. */
export class LightningIterator extends AbstractIterator<object, StoreData, StoreData> {
  readonly #cursor: RangeCursor;
  readonly #pick: (entry: [Buffer, Buffer]) => [StoreData | undefined, StoreData | undefined];

  constructor(db: object, source: IteratorSource, options: LevelIteratorOptions) {
    // The cursor first: a bad range throws before the iterator registers with its database.
    const cursor = openCursor(source, options);
    super(db, options);
    this.#cursor = cursor;
    const { keyEncoding, valueEncoding } = options;
    const keys = options.keys !== false;
    const values = options.values !== false;
    this.#pick = ([key, value]) => [
      keys ? toFormat(key, keyEncoding) : undefined,
      values ? toFormat(value, valueEncoding) : undefined,
    ];
  }

  async _next(): Promise<[StoreData | undefined, StoreData | undefined] | undefined> {
    const entry = this.#cursor.next();
    return entry === undefined ? undefined : this.#pick(entry);
  }

  async _nextv(size: number): Promise<[StoreData | undefined, StoreData | undefined][]> {
    return take(this.#cursor, size, this.#pick);
  }

  async _all(): Promise<[StoreData | undefined, StoreData | undefined][]> {
    return take(this.#cursor, this.limit - this.count, this.#pick);
  }

  _seek(target: StoreData): void {
    this.#cursor.seek(target, this.limit - this.count);
  }

  async _close(): Promise<void> {
    this.#cursor.close();
  }
}

/** Keys only. */
export class LightningKeyIterator extends AbstractKeyIterator<object, StoreData> {
  readonly #cursor: RangeCursor;
  readonly #pick: (entry: [Buffer, Buffer]) => StoreData;

  constructor(db: object, source: IteratorSource, options: LevelIteratorOptions) {
    // The cursor first: a bad range throws before the iterator registers with its database.
    const cursor = openCursor(source, options);
    super(db, options);
    this.#cursor = cursor;
    const { keyEncoding } = options;
    this.#pick = ([key]) => toFormat(key, keyEncoding);
  }

  async _next(): Promise<StoreData | undefined> {
    const entry = this.#cursor.next();
    return entry === undefined ? undefined : this.#pick(entry);
  }

  async _nextv(size: number): Promise<StoreData[]> {
    return take(this.#cursor, size, this.#pick);
  }

  async _all(): Promise<StoreData[]> {
    return take(this.#cursor, this.limit - this.count, this.#pick);
  }

  _seek(target: StoreData): void {
    this.#cursor.seek(target, this.limit - this.count);
  }

  async _close(): Promise<void> {
    this.#cursor.close();
  }
}

/** Values only. */
export class LightningValueIterator extends AbstractValueIterator<object, StoreData, StoreData> {
  readonly #cursor: RangeCursor;
  readonly #pick: (entry: [Buffer, Buffer]) => StoreData;

  constructor(db: object, source: IteratorSource, options: LevelIteratorOptions) {
    // The cursor first: a bad range throws before the iterator registers with its database.
    const cursor = openCursor(source, options);
    super(db, options);
    this.#cursor = cursor;
    const { valueEncoding } = options;
    this.#pick = ([, value]) => toFormat(value, valueEncoding);
  }

  async _next(): Promise<StoreData | undefined> {
    const entry = this.#cursor.next();
    return entry === undefined ? undefined : this.#pick(entry);
  }

  async _nextv(size: number): Promise<StoreData[]> {
    return take(this.#cursor, size, this.#pick);
  }

  async _all(): Promise<StoreData[]> {
    return take(this.#cursor, this.limit - this.count, this.#pick);
  }

  _seek(target: StoreData): void {
    this.#cursor.seek(target, this.limit - this.count);
  }

  async _close(): Promise<void> {
    this.#cursor.close();
  }
}
