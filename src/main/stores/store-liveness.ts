import { LightningError } from '../../shared-memory/index.js';
import { type BatchEntry, operationDel } from '../../shared-memory/ring/operation-codec.js';
import { decodeRecord, recordKey } from './catalog-records.js';

/**
 * How a Store object on any thread learns that its store was dropped, on another thread or its own.
 *
 * Every thread of a database shares one counter of committed drops (kDatabaseStoreDrops in the
 * database control block). `dropStore` commits the catalog change, then bumps the counter, and only
 * then deletes the store's entries. A Store remembers the count at which it last saw its own record
 * in the catalog; while the count is unchanged no drop has committed since, so a check costs one
 * Atomics.load. When it has changed, the Store reads its record again: present with its id, the
 * store is live (ids are never reused, so a record with the same id means it was never dropped);
 * otherwise it was dropped, and every later call fails with ERR_STORE_DROPPED.
 *
 * An operation checks before it starts and again after it read or wrote. A read that saw no change
 * read entries no drop had begun to delete (the deletes start after the bump). A write in flight
 * while its store was dropped may land after the drop deleted the entries: the check after it sees
 * the bump, so the write deletes again what it put (under an id nothing will use again) and
 * rejects with ERR_STORE_DROPPED.
 */

/** What the check needs of the database on this thread (Database implements it). */
export interface StoreDropSource {
  readKey(keyBytes: Uint8Array, scratch: null): Buffer | undefined;
  /** The drops committed since the database opened, for every thread (one Atomics.load). */
  storeDrops(): number;
  writeEntries(entries: BatchEntry[]): Promise<void>;
  partitionOf(key: Uint8Array): number;
}

export function storeDroppedError(name: string, id: number): LightningError {
  return new LightningError(
    'ERR_STORE_DROPPED',
    `the store ${JSON.stringify(name)} (id ${id}) was dropped; db.store(${JSON.stringify(name)}) gives the store under that name now`,
  );
}

/** The liveness of one store as one thread sees it; shared by every Store view of it there. */
export class StoreLiveness {
  readonly id: number;
  readonly name: string;
  readonly #source: StoreDropSource;
  readonly #recordKey: Uint8Array;
  /** The drop count at which the record was last seen with this id. */
  #verifiedDrops: number;
  #dropped = false;

  /** `verifiedDrops`: the drop count loaded before the record was read. */
  constructor(source: StoreDropSource, id: number, name: string, verifiedDrops: number) {
    this.#source = source;
    this.id = id;
    this.name = name;
    this.#recordKey = recordKey(name);
    this.#verifiedDrops = verifiedDrops;
  }

  get dropped(): boolean {
    return this.#dropped;
  }

  /** This thread dropped the store: every use fails from now on. */
  markDropped(): void {
    this.#dropped = true;
  }

  /** Throws ERR_STORE_DROPPED once the store is dropped. O(1) unless a drop committed since the last check. */
  assertLive(): void {
    if (this.#dropped) throw storeDroppedError(this.name, this.id);
    const drops = this.#source.storeDrops();
    if (drops === this.#verifiedDrops) return;
    // Loaded before the record is read: a drop that commits after the read bumps it again.
    const found = this.#source.readKey(this.#recordKey, null);
    if (found !== undefined && decodeRecord(found).id === this.id) {
      this.#verifiedDrops = drops;
      return;
    }
    this.#dropped = true;
    throw storeDroppedError(this.name, this.id);
  }

  /**
   * `written` (a write of this store's keys, `puts` the keys it put), checked once it is applied:
   * if the store was dropped meanwhile, its puts are deleted again and it rejects.
   */
  async afterWrite(written: Promise<unknown>, puts: readonly Uint8Array[]): Promise<void> {
    await written;
    try {
      this.assertLive();
    } catch (error) {
      await deleteKeys(this.#source, puts).catch(() => {});
      throw error;
    }
  }
}

/** Deletes `keys`, one batch per partition: atomic in each, and harmless to repeat. */
export async function deleteKeys(source: StoreDropSource, keys: readonly Uint8Array[]): Promise<void> {
  const byPartition = new Map<number, BatchEntry[]>();
  for (const key of keys) {
    const partition = source.partitionOf(key);
    let entries = byPartition.get(partition);
    if (entries === undefined) {
      entries = [];
      byPartition.set(partition, entries);
    }
    entries.push({ kind: operationDel, key, value: null });
  }
  await Promise.all([...byPartition.values()].map((entries) => source.writeEntries(entries)));
}
