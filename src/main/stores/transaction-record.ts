import type { Transaction } from '../transaction.js';
import { decodeRecord, recordKey } from './catalog-records.js';
import type { StoreBase } from './store-base.js';

/**
 * Throws ERR_STORE_DROPPED unless `store`'s catalog record, read within transaction `tx`, still names
 * its id. The read is recorded with the transaction's, so under serializable isolation a drop that
 * commits before the transaction does makes it conflict, run again, and fail here.
 */
export function assertStoreInTransaction(tx: Transaction, store: StoreBase): void {
  store.assertLive();
  const record = tx.readKey(recordKey(store.name));
  if (record === undefined || decodeRecord(record).id !== store.id) throw store.droppedError();
}
