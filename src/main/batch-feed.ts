import { assert } from '../shared-memory/assert.js';

/**
 * A bounded queue from one producer to one `for await` consumer: the producer's `push` waits while
 * `capacity` batches are queued, so a fast reader cannot run ahead of a slow writer by more than that.
 * Either side can abort: the consumer's iteration then throws the error, and so does every later
 * `push`, so neither side waits forever for one that failed.
 */
export class BatchFeed<T> implements AsyncIterable<T> {
  readonly #capacity: number;
  readonly #queue: T[] = [];
  #ended = false;
  #failure: { error: unknown } | null = null;
  #wakeConsumer: (() => void) | null = null;
  #wakeProducer: (() => void) | null = null;

  constructor(capacity: number) {
    assert(Number.isInteger(capacity) && capacity >= 1, 'a feed holds at least one batch');
    this.#capacity = capacity;
  }

  /** Queues `batch`, waiting for room first. Rejects once the feed was aborted. */
  async push(batch: T): Promise<void> {
    assert(!this.#ended, 'no push after end()');
    while (this.#failure === null && this.#queue.length >= this.#capacity) {
      await new Promise<void>((resolve) => {
        this.#wakeProducer = resolve;
      });
    }
    if (this.#failure !== null) throw this.#failure.error;
    this.#queue.push(batch);
    this.#wake('consumer');
  }

  /** No more batches: the consumer's iteration ends once it has taken the queued ones. */
  end(): void {
    this.#ended = true;
    this.#wake('consumer');
  }

  /** Fails both sides with `error`; the first abort wins. */
  abort(error: unknown): void {
    this.#failure ??= { error };
    this.#wake('consumer');
    this.#wake('producer');
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      if (this.#failure !== null) throw this.#failure.error;
      const batch = this.#queue.shift();
      if (batch !== undefined) {
        this.#wake('producer');
        yield batch;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wakeConsumer = resolve;
      });
    }
  }

  #wake(side: 'consumer' | 'producer'): void {
    const wake = side === 'consumer' ? this.#wakeConsumer : this.#wakeProducer;
    if (side === 'consumer') this.#wakeConsumer = null;
    else this.#wakeProducer = null;
    wake?.();
  }
}
