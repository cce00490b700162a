import { isLightningError, LightningError } from '../../shared-memory/index.js';
import type { RangeBounds } from '../../shared-memory/tree/range-options.js';
import { type Encodings, loadEncoding } from '../api/encodings.js';
import {
  assertStoreName,
  counterKey,
  decodeCounter,
  decodeRecord,
  droppingBounds,
  droppingKey,
  encodeCounter,
  encodeRecord,
  recordBounds,
  recordKey,
  type StoreRecord,
} from './catalog-records.js';
import { Store, type StoreOptions } from './store.js';
import type { StoreHost } from './store-base.js';
import { prefixSuccessor, storeIdMax, storePrefix } from './store-keys.js';
import { deleteKeys, StoreLiveness } from './store-liveness.js';

/**
 * Creating, listing and dropping named stores: every change of the catalog is one transaction, so
 * threads that create the same store at once agree on one id, and a store is dropped (gone from the
 * catalog) all at once, before its entries are deleted.
 */

/** Entries deleted per step of a drop: one batch per partition of at most this many. */
const dropChunkEntries = 512;

/** A store as this thread knows it: its liveness, and the views handed out, by their encodings. */
interface KnownStore {
  live: StoreLiveness;
  views: Map<string, Store<unknown, unknown>>;
}

/** The stores this thread opened, per database, by name: one liveness per store and thread. */
const handedOut = new WeakMap<StoreHost, Map<string, KnownStore>>();

/**
 * A view of the store of `record` with `encodings`. Views with the same built-in encodings (or none)
 * are one object; a custom encoding makes a view of its own each time. An older store under the
 * same name (another id) is marked dropped.
 */
function storeOf(
  host: StoreHost,
  record: StoreRecord,
  drops: number,
  encodings: Encodings,
): Store<unknown, unknown> {
  let stores = handedOut.get(host);
  if (stores === undefined) {
    stores = new Map();
    handedOut.set(host, stores);
  }
  let known = stores.get(record.name);
  if (known === undefined || known.live.id !== record.id) {
    known?.live.markDropped();
    known = { live: new StoreLiveness(host, record.id, record.name, drops), views: new Map() };
    stores.set(record.name, known);
  }
  const { keys, values } = encodings;
  const shareable = keys?.name !== 'custom' && values?.name !== 'custom';
  const viewKey = `${keys?.name ?? ''}/${values?.name ?? ''}`;
  const view = shareable ? known.views.get(viewKey) : undefined;
  if (view !== undefined) return view;
  const store = new Store<unknown, unknown>(host, known.live, encodings);
  if (shareable) known.views.set(viewKey, store);
  return store;
}

function markDropped(host: StoreHost, record: StoreRecord): void {
  const stores = handedOut.get(host);
  const known = stores?.get(record.name);
  if (known !== undefined && known.live.id === record.id) {
    known.live.markDropped();
    stores!.delete(record.name);
  }
}

/** Every store's record, sorted by name bytes; synchronous, at a snapshot of the catalog. */
export function listStores(host: StoreHost): StoreRecord[] {
  const records: StoreRecord[] = [];
  for (const [, value] of host.rangeWithin(recordBounds())) records.push(decodeRecord(value));
  return records;
}

/** `db.store(name, options)`. */
export async function openStore(
  host: StoreHost,
  name: unknown,
  options: StoreOptions<unknown, unknown> | undefined,
): Promise<Store<unknown, unknown>> {
  assertStoreName(name);
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw new LightningError('ERR_BAD_ARGUMENT', 'store options must be an object');
  const create = options?.create ?? true;
  if (typeof create !== 'boolean')
    throw new LightningError('ERR_BAD_ARGUMENT', 'store option create must be a boolean');
  const encodings: Encodings = {
    keys: await loadEncoding(options?.keyEncoding, 'store option keyEncoding'),
    values: await loadEncoding(options?.valueEncoding, 'store option valueEncoding'),
  };
  await finishDrops(host);
  const key = recordKey(name);
  // Loaded before the record is read: see store-liveness.ts.
  const drops = host.storeDrops();
  const found = host.readKey(key, null);
  if (found !== undefined) return storeOf(host, decodeRecord(found), drops, encodings);
  if (!create) throw new LightningError('ERR_NOT_FOUND', `there is no store named ${JSON.stringify(name)}`);
  // Serializable: two threads that create the same store both read its (missing) record and the
  // counter; one commits, the other conflicts, runs again and finds the record.
  const record = await host.transactionBytes((tx) => {
    const existing = tx.readKey(key);
    if (existing !== undefined) return decodeRecord(existing);
    const counter = tx.readKey(counterKey);
    const id = counter === undefined ? 1 : decodeCounter(counter);
    if (id > storeIdMax) {
      throw new LightningError(
        'ERR_NOT_SUPPORTED',
        `${storeIdMax} stores have been created in this database; store ids are never reused`,
      );
    }
    const created = { id, name };
    tx.writeKey(counterKey, encodeCounter(id + 1));
    tx.writeKey(key, encodeRecord(created));
    return created;
  });
  return storeOf(host, record, drops, encodings);
}

/** `db.dropStore(name)`. */
export async function dropStore(host: StoreHost, name: unknown): Promise<void> {
  assertStoreName(name);
  await finishDrops(host);
  const key = recordKey(name);
  // One transaction moves the record aside: from its commit on, the store is gone for every thread
  // and the name is free; the entries are deleted afterwards, and the moved record says which id
  // they have until they are.
  const record = await host.transactionBytes((tx) => {
    const found = tx.readKey(key);
    if (found === undefined)
      throw new LightningError('ERR_NOT_FOUND', `there is no store named ${JSON.stringify(name)}`);
    const dropped = decodeRecord(found);
    tx.writeKey(key, null);
    tx.writeKey(droppingKey(dropped.id), found);
    return dropped;
  });
  // Counted before any entry is deleted: a Store on any thread that checks after this sees the
  // drop, and one that checked before reads entries not yet deleted (store-liveness.ts).
  host.countStoreDrop();
  markDropped(host, record);
  await eraseStore(host, record.id);
}

/**
 * Finishes the drops that were interrupted (by a crash, or a close) before every entry of the store
 * was deleted: their records are still in the catalog's dropping section. A database that cannot
 * write now (opened read-only, or on a full disk) leaves them for a later call: the dropped stores
 * are gone for readers either way.
 */
export async function finishDrops(host: StoreHost): Promise<void> {
  const ids: number[] = [];
  for (const [, value] of host.rangeWithin(droppingBounds())) ids.push(decodeRecord(value).id);
  try {
    for (const id of ids) await eraseStore(host, id);
  } catch (error) {
    if (isLightningError(error, 'ERR_READ_ONLY') || isLightningError(error, 'ERR_DISK_FULL')) return;
    throw error;
  }
}

/**
 * Deletes every entry of store `id` in steps: a scan of up to `dropChunkEntries` keys, then one
 * batch per partition (atomic in its owner, no two-phase commit), then the next scan from the last
 * key; then removes the store's dropping record. Deleting a key twice is harmless, so two threads
 * may finish the same drop at once.
 */
async function eraseStore(host: StoreHost, id: number): Promise<void> {
  const prefix = storePrefix(id);
  const bounds: RangeBounds = {
    lower: prefix,
    lowerInclusive: true,
    upper: prefixSuccessor(prefix),
    upperInclusive: false,
    reverse: false,
    limit: dropChunkEntries,
  };
  for (;;) {
    const keys: Uint8Array[] = [];
    for (const [key] of host.rangeWithin(bounds)) keys.push(key);
    if (keys.length === 0) break;
    await deleteKeys(host, keys);
    bounds.lower = keys[keys.length - 1]!;
    bounds.lowerInclusive = false;
  }
  await host.writeKey(droppingKey(id), null);
}
