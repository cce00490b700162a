import { join } from 'node:path';
import { checksumWords } from '../shared-memory/checksum.js';
import { syncDirectory } from './durable-file.js';
import { fileLayer, type LayerFileHandle } from './file-layer.js';
import { storageConditionError } from './storage-errors.js';
import { ensureDirectory } from './wal/wal-files.js';

/**
 * The decision logs of two-phase commits: one file per thread slot, `<db>/transactions/slot-NN.log`,
 * appended by the thread that coordinates the commit. A record says "transaction T committed":
 *
 *   magic u32 ("DCSN") | format version u16 | 0 u16 | transaction id u64 | checksum u32 | 0 u32
 *
 * all little-endian, 24 bytes. A transaction is committed once its record is durable; participants
 * that find a prepare without a decision in their own log at recovery look here, and presume abort
 * when no record names it. A torn last record (a crash mid-append) is ignored: that decision was
 * never durable, so no caller was told the transaction committed.
 */
const recordBytes = 24;
const magic = 0x4e_53_43_44; // "DCSN"
export const decisionLogFormatVersion = 1;

export function decisionDirectory(databaseDirectory: string): string {
  return join(databaseDirectory, 'transactions');
}

function decisionFile(databaseDirectory: string, slot: number): string {
  return join(decisionDirectory(databaseDirectory), `slot-${String(slot).padStart(2, '0')}.log`);
}

function recordChecksum(view: DataView): number {
  return (
    checksumWords([
      view.getUint32(0, true),
      view.getUint32(4, true),
      view.getUint32(8, true),
      view.getUint32(12, true),
    ]) | 0
  );
}

/** Every transaction id the decision logs of a database record as committed. */
export async function readCommittedTransactions(databaseDirectory: string): Promise<Set<number>> {
  const committed = new Set<number>();
  const directory = decisionDirectory(databaseDirectory);
  let names: string[];
  try {
    names = await fileLayer().readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return committed;
    throw error;
  }
  for (const name of names.filter((n) => n.endsWith('.log'))) {
    const handle = await fileLayer().open(join(directory, name), 'r');
    try {
      const bytes = await handle.readFile();
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let at = 0; at + recordBytes <= bytes.length; at += recordBytes) {
        const record = new DataView(bytes.buffer, bytes.byteOffset + at, recordBytes);
        if (record.getUint32(0, true) !== magic || record.getInt32(16, true) !== recordChecksum(record))
          break;
        committed.add(view.getUint32(at + 8, true) + view.getUint32(at + 12, true) * 0x1_0000_0000);
      }
    } finally {
      await handle.close();
    }
  }
  return committed;
}

/** Removes every decision log: done at open, once every partition logged its in-doubt outcomes. */
export async function removeDecisionLogs(databaseDirectory: string): Promise<void> {
  const directory = decisionDirectory(databaseDirectory);
  await fileLayer().rm(directory, { recursive: true, force: true });
}

/**
 * One thread's decision log. Appends from concurrent commits of the thread are grouped: one write and
 * one fdatasync for every decision waiting when the previous sync ends.
 *
 * Decisions are synced in every durability mode: a participant applies a decision once it is
 * published, and may log it, checkpoint it and report itself done with it; if the decision could
 * then vanish in a power loss, presumed abort would undo the transaction in the partitions that had
 * not logged it and keep it in the others. 'relaxed' and 'none' may lose the newest transactions,
 * never half of one.
 */
export class DecisionLog {
  readonly #databaseDirectory: string;
  readonly #slot: number;
  #handle: LayerFileHandle | null = null;
  #bytes = 0;
  #waiting: { transactionId: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  #writing = false;
  /** Set when a refused append could not be cut back: the file's end is unknown, so no more appends. */
  #failure: Error | null = null;

  constructor(databaseDirectory: string, slot: number) {
    this.#databaseDirectory = databaseDirectory;
    this.#slot = slot;
  }

  /** Resolves once the decision is durable. */
  append(transactionId: number): Promise<void> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ transactionId, resolve, reject });
      if (!this.#writing) void this.#writeWaiting();
    });
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Empties the log. Only safe when every transaction it names has been logged as decided by all of
   * its participants (the caller knows: their status entries were freed).
   */
  async truncate(): Promise<void> {
    const handle = this.#handle;
    if (handle === null || this.#writing) return;
    // Appends made meanwhile wait for the cut: one written before it lands would be cut with it, and
    // its transaction's caller told it committed.
    this.#writing = true;
    try {
      await handle.truncate(0);
      await handle.datasync();
      this.#bytes = 0;
    } catch (error) {
      // The file is as long as it is now; a later failed append cuts back to that, never past it.
      try {
        this.#bytes = (await handle.stat()).size;
      } catch (statError) {
        this.#failure = new Error('the decision log could not be emptied, nor its length read back', {
          cause: new AggregateError([error, statError]),
        });
      }
      throw error;
    } finally {
      this.#writing = false;
      if (this.#waiting.length > 0) void this.#writeWaiting();
    }
  }

  async close(): Promise<void> {
    while (this.#writing) await new Promise((resolve) => setImmediate(resolve));
    await this.#handle?.close();
    this.#handle = null;
  }

  async #writeWaiting(): Promise<void> {
    this.#writing = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        const handle = await this.#open();
        const bytes = new Uint8Array(batch.length * recordBytes);
        batch.forEach(({ transactionId }, i) => {
          const view = new DataView(bytes.buffer, i * recordBytes, recordBytes);
          view.setUint32(0, magic, true);
          view.setUint16(4, decisionLogFormatVersion, true);
          view.setUint32(8, transactionId >>> 0, true);
          view.setUint32(12, Math.floor(transactionId / 0x1_0000_0000), true);
          view.setInt32(16, recordChecksum(view), true);
        });
        await handle.write(bytes, 0, bytes.length);
        this.#bytes += bytes.length;
        await handle.datasync();
        for (const waiter of batch) waiter.resolve();
      } catch (error) {
        const refusal = await this.#cutBack(error);
        for (const waiter of batch) waiter.reject(refusal);
      }
    }
    this.#writing = false;
  }

  /**
   * After a failed append: cuts the file back to its last whole record, so that a record that partly
   * landed (the disk filled up mid-write) neither commits a transaction its coordinator aborts nor
   * hides the records appended after it (readers stop at the first bad record). Returns the error
   * the waiters get: ERR_DISK_FULL / ERR_READ_ONLY naming the file when the disk refused the write.
   */
  async #cutBack(error: unknown): Promise<unknown> {
    const file = decisionFile(this.#databaseDirectory, this.#slot);
    try {
      if (this.#handle !== null) {
        await this.#handle.truncate(this.#bytes);
        await this.#handle.datasync();
      }
    } catch (cutError) {
      this.#failure = new Error(`the decision log ${file} could not be cut back after a failed append`, {
        cause: new AggregateError([error, cutError]),
      });
    }
    return storageConditionError(error, `writing the decision log ${file}`) ?? error;
  }

  async #open(): Promise<LayerFileHandle> {
    if (this.#handle !== null) return this.#handle;
    const directory = decisionDirectory(this.#databaseDirectory);
    // A new directory's own entry must survive a crash too: ensureDirectory syncs its parent.
    await ensureDirectory(directory);
    const file = decisionFile(this.#databaseDirectory, this.#slot);
    // Appending: a thread that held this slot before may have left decisions still needed.
    const handle = await fileLayer().open(file, 'a');
    // Its size first: a failed append is cut back to it, and must never cut what was there.
    this.#bytes = (await handle.stat()).size;
    this.#handle = handle;
    // The new file's entry must survive a crash for its records to.
    await syncDirectory(directory);
    return handle;
  }
}
