import { LightningError } from '../../shared-memory/index.js';
import type { RangeBounds } from '../../shared-memory/tree/range-options.js';
import { xxh32 } from '../xxh32.js';
import { catalogStoreId, prefixedKey, storeIdMax, storePrefix } from './store-keys.js';

/**
 * The catalog of named stores, kept in the store region under store id 0 (prefix FF FF FF FF 00 00):
 *
 * - prefix + the store's name (UTF-8)   → the store's record: {"format":1,"id":..,"name":..,"checksum":..}
 * - prefix alone (the empty name)       → the id counter: {"format":1,"nextId":..,"checksum":..}
 * - prefix + 00 + the store's id (u16)  → the record of a store being dropped (its entries are being
 *                                         deleted); names never begin with a NUL, so these keys
 *                                         cannot collide with a name's
 *
 * Each record is JSON with a format number and the xxh32 of its other fields, so a damaged one is
 * reported as ERR_CORRUPTION instead of being trusted.
 */

export const catalogFormat = 1;
/** Longest store name, in UTF-8 bytes. */
export const storeNameBytesMax = 255;

export interface StoreRecord {
  readonly id: number;
  readonly name: string;
}

const catalogPrefix = storePrefix(catalogStoreId);
/** The id counter's key. */
export const counterKey: Uint8Array = catalogPrefix;
const droppingPrefix = prefixedKey(catalogPrefix, Uint8Array.of(0));

/** The key of the record of the store named `name`. */
export function recordKey(name: string): Uint8Array {
  return prefixedKey(catalogPrefix, Buffer.from(name, 'utf8'));
}

/** The key of the record of store `id` while it is being dropped. */
export function droppingKey(id: number): Uint8Array {
  return prefixedKey(droppingPrefix, Uint8Array.of(id >>> 8, id & 0xff));
}

/** Bounds of every store's record (names begin with a byte above 00), for a scan of the catalog. */
export function recordBounds(): RangeBounds {
  return {
    lower: prefixedKey(catalogPrefix, Uint8Array.of(1)),
    lowerInclusive: true,
    upper: storePrefix(catalogStoreId + 1),
    upperInclusive: false,
    reverse: false,
    limit: Infinity,
  };
}

/** Bounds of the records of stores being dropped. */
export function droppingBounds(): RangeBounds {
  return {
    lower: droppingPrefix,
    lowerInclusive: false,
    upper: prefixedKey(catalogPrefix, Uint8Array.of(1)),
    upperInclusive: false,
    reverse: false,
    limit: Infinity,
  };
}

/** Throws ERR_BAD_ARGUMENT unless `name` can name a store. */
export function assertStoreName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    const got = name === null ? 'null' : typeof name;
    throw new LightningError('ERR_BAD_ARGUMENT', `a store name must be a string, got ${got}`);
  }
  if (name.length === 0) throw new LightningError('ERR_BAD_ARGUMENT', 'a store name must not be empty');
  if (name.includes('\u0000'))
    throw new LightningError('ERR_BAD_ARGUMENT', 'a store name must not contain a NUL character');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > storeNameBytesMax) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `a store name is at most ${storeNameBytesMax} bytes of UTF-8; this one is ${bytes}`,
    );
  }
}

function sealed(fields: object): Uint8Array {
  const text = JSON.stringify(fields);
  return Buffer.from(JSON.stringify({ ...fields, checksum: xxh32(Buffer.from(text, 'utf8')) }), 'utf8');
}

/** Parses a catalog value and checks its format and checksum; `fields` lists its fields in order. */
function unsealed(bytes: Uint8Array, what: string, fields: readonly string[]): Record<string, unknown> {
  const fail = (why: string): never => {
    throw new LightningError('ERR_CORRUPTION', `the store catalog's ${what}: ${why}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return fail('not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return fail('not a JSON object');
  const record = parsed as Record<string, unknown>;
  if (record.format !== catalogFormat) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `the store catalog's ${what} has format ${String(record.format)}; this build reads format ${catalogFormat}`,
    );
  }
  const canonical: Record<string, unknown> = {};
  for (const field of fields) canonical[field] = record[field];
  if (record.checksum !== xxh32(Buffer.from(JSON.stringify(canonical), 'utf8'))) fail('checksum mismatch');
  return record;
}

export function encodeRecord(record: StoreRecord): Uint8Array {
  return sealed({ format: catalogFormat, id: record.id, name: record.name });
}

export function decodeRecord(bytes: Uint8Array): StoreRecord {
  const record = unsealed(bytes, 'record of a store', ['format', 'id', 'name']);
  const { id, name } = record;
  if (
    typeof id !== 'number' ||
    !Number.isInteger(id) ||
    id < 1 ||
    id > storeIdMax ||
    typeof name !== 'string'
  ) {
    throw new LightningError('ERR_CORRUPTION', `the store catalog holds a record with a bad id or name`);
  }
  return { id, name };
}

export function encodeCounter(nextId: number): Uint8Array {
  return sealed({ format: catalogFormat, nextId });
}

export function decodeCounter(bytes: Uint8Array): number {
  const { nextId } = unsealed(bytes, 'id counter', ['format', 'nextId']);
  if (typeof nextId !== 'number' || !Number.isInteger(nextId) || nextId < 1 || nextId > storeIdMax + 1) {
    throw new LightningError('ERR_CORRUPTION', `the store catalog's id counter is out of range`);
  }
  return nextId;
}
