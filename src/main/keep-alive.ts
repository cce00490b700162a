/**
 * Keeps the thread's event loop alive while writes are in flight. A pending Atomics.waitAsync does not
 * (on Node 20 the process exits under it), and owner workers are unref'd so that an idle open
 * database never holds a process open; so a thread with writes waiting holds one timer instead.
 */
export class KeepAlive {
  #holders = 0;
  #timer: NodeJS.Timeout | null = null;

  hold(): void {
    if (this.#holders++ === 0) this.#timer = setInterval(() => {}, 1 << 30);
  }

  release(): void {
    if (--this.#holders === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}
