import type { MessagePort } from 'node:worker_threads';

/** What the replication leader answered for one shipped batch. */
export type ShipReply =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'ERR_DEPOSED' | 'ERR_REPLICATION'; readonly message: string };

/** What an owner sends the replication leader on its port. */
export type ShipRequest =
  | { readonly kind: 'records'; readonly records: Uint8Array }
  /** The stream has records this owner's log could not take (a full disk): the leader must step down. */
  | { readonly kind: 'diverged'; readonly message: string };

/**
 * An owner's side of replication: before a pass's records are written to the owner's log, they are
 * shipped to the thread that publishes the replication log, and the pass waits for its answer. The
 * records reach the local log only once the stream holds them, so a leader's log never has a tail
 * the stream lacks: a leader that loses its lease, or crashes, has nothing to take back, only the
 * stream's later records to catch up with. One request at a time: the pass waits for its reply.
 */
export class LogShipper {
  readonly #port: MessagePort;
  readonly #waiting: ((reply: ShipReply) => void)[] = [];
  /** The largest framed record a message of the log can carry: larger writes are refused alone. */
  readonly recordBytesMax: number;

  constructor(port: MessagePort, recordBytesMax: number) {
    this.#port = port;
    this.recordBytesMax = recordBytesMax;
    port.on('message', (reply: ShipReply) => this.#waiting.shift()?.(reply));
  }

  /** Ships a copy of the pass's framed records; resolves with the leader's answer. */
  ship(records: Uint8Array): Promise<ShipReply> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      const request: ShipRequest = { kind: 'records', records };
      this.#port.postMessage(request, [records.buffer as ArrayBuffer]);
    });
  }

  /** Tells the leader that records the stream acknowledged did not reach this owner's log. */
  diverged(message: string): void {
    const request: ShipRequest = { kind: 'diverged', message };
    this.#port.postMessage(request);
  }

  close(): void {
    this.#port.close();
    for (const resolve of this.#waiting.splice(0)) {
      resolve({ ok: false, code: 'ERR_REPLICATION', message: 'replication stopped' });
    }
  }
}
