import { LightningError } from '../shared-memory/errors.js';

/**
 * ERR_TX_CONFLICT for a transaction part its partition refused until its buffer pool writes a page
 * set (statusWaitsForPageSet): no key of it conflicted. Its coordinator retries the transaction
 * without counting a conflict, and a caller of the write channel that does not look for it sees the
 * conflict it always did.
 */
export class PageSetWaitError extends LightningError {
  constructor(shared: string) {
    super(
      'ERR_TX_CONFLICT',
      `the partition's buffer pool must write its pages before this transaction part fits, and ` +
        `another prepared transaction holds them back; retry${shared}`,
    );
  }
}
