import type { BatchOperation, Database } from '../database.js';
import type { Store } from '../stores/store.js';

/**
 * Writes a stream of puts as per-partition batches with a bounded window of batches in flight: one
 * batch is one ring record and one log write for its owner, so a bulk load costs far fewer round
 * trips than one put per entry, and the window keeps every owner busy without unbounded memory.
 * Order is kept per key: the entries of one partition go out in the order they were added, on one
 * ring, and the owner applies them in that order. With a named store, the entries are that store's,
 * routed by the keys they are stored under.
 */

/** Entries per batch: enough to amortise the ring and log per-record costs. */
const batchEntriesMax = 256;
/** Bytes per batch: a quarter of a ring area travels unfragmented. */
const batchBytesMax = 128 * 1024;
/** Batches in flight across all partitions before adding waits for the oldest. */
const inFlightMax = 64;

export class PartitionLoader {
  readonly #db: Database;
  readonly #store: Store | null;
  readonly #pending: BatchOperation[][];
  readonly #pendingBytes: number[];
  readonly #inFlight: Promise<void>[] = [];
  #failure: { error: unknown } | null = null;

  private constructor(db: Database, store: Store | null, partitions: number) {
    this.#db = db;
    this.#store = store;
    this.#pending = Array.from({ length: partitions }, () => []);
    this.#pendingBytes = new Array<number>(partitions).fill(0);
  }

  /** A loader into `store` of `db`, or into its default store for null. */
  static async create(db: Database, store: Store | null = null): Promise<PartitionLoader> {
    const partitions = db.stats().partitions;
    return new PartitionLoader(db, store, partitions);
  }

  /**
   * Queues a put. Returns a promise to await before adding more when the window is full (null
   * otherwise, so the caller does not pay a microtask per entry). A failed batch rejects the next
   * promise returned, or `finish()`.
   */
  add(key: Buffer, value: Buffer): Promise<void> | null {
    const store = this.#store;
    const partition = this.#db.partitionOf(store === null ? key : store.keyOf(key));
    const pending = this.#pending[partition]!;
    pending.push(store === null ? { type: 'put', key, value } : { type: 'put', key, value, store });
    this.#pendingBytes[partition]! += key.length + value.length;
    if (pending.length < batchEntriesMax && this.#pendingBytes[partition]! < batchBytesMax) return null;
    this.#send(partition);
    return this.#inFlight.length >= inFlightMax ? this.#waitForOldest() : null;
  }

  /** Sends what is queued and waits for every batch; throws the first failure. */
  async finish(): Promise<void> {
    for (let partition = 0; partition < this.#pending.length; partition++) {
      if (this.#pending[partition]!.length > 0) this.#send(partition);
    }
    while (this.#inFlight.length > 0) await this.#waitForOldest();
    this.#throwIfFailed();
  }

  #send(partition: number): void {
    const batch = this.#pending[partition]!;
    this.#pending[partition] = [];
    this.#pendingBytes[partition] = 0;
    // The rejection is kept, not left unhandled: it is thrown to the caller at its next wait.
    const sent = this.#db.batch(batch).catch((error: unknown) => {
      this.#failure ??= { error };
    });
    this.#inFlight.push(sent);
  }

  async #waitForOldest(): Promise<void> {
    await this.#inFlight.shift();
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure.error;
  }
}
