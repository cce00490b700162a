import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Entries a for-await scan returns between two yields to the event loop. Reading them is
 * synchronous (shared memory), so without a yield a long scan would hold the event loop for its
 * whole length and a timer-driven abort (AbortSignal.timeout) could never fire during it.
 */
export const entriesPerTurn = 256;

/**
 * The error an aborted scan throws, shaped as Node's own APIs shape theirs (name 'AbortError', code
 * 'ABORT_ERR', the signal's reason as its cause), so `error.name === 'AbortError'` checks written
 * for fetch or streams work here too.
 */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';

  constructor(options?: { cause?: unknown }) {
    super('The operation was aborted', options);
    this.name = 'AbortError';
  }
}

export function abortError(signal: AbortSignal): AbortError {
  return new AbortError({ cause: signal.reason });
}

/**
 * A synchronous scan driven by for-await: each step is the scan's own `next()`, and every
 * `entriesPerTurn` steps it waits for the next turn of the event loop first. Leaving the loop early
 * (`break`, `return`, a throw in its body) ends the scan and releases its snapshot.
 */
export class AsyncScan<T> implements AsyncIterableIterator<T> {
  readonly #scan: Iterator<T>;
  #untilYield = entriesPerTurn;

  constructor(scan: Iterator<T>) {
    this.#scan = scan;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    if (--this.#untilYield === 0) {
      this.#untilYield = entriesPerTurn;
      await nextTurn();
    }
    return this.#scan.next();
  }

  async return(): Promise<IteratorResult<T>> {
    return this.#scan.return?.() ?? { done: true, value: undefined };
  }
}
