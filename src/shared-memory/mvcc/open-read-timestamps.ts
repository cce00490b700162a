/**
 * The read timestamps of one thread's open snapshots, kept by that thread alone: it publishes only
 * their minimum, one shared word, so an owner deciding whether to keep old versions reads one word
 * per thread instead of every snapshot slot.
 *
 * The oracle only grows and a thread registers one snapshot at a time, so a thread's timestamps
 * arrive in non-decreasing order: they form an ascending queue of distinct timestamps with a count
 * each. Releasing any snapshot decrements its count; the minimum is the first timestamp whose count
 * is not zero, so finding the next minimum after releasing the oldest costs no scan of the others.
 */
export class OpenReadTimestamps {
  #timestamps: number[] = [];
  #counts: number[] = [];
  #head = 0;

  get empty(): boolean {
    return this.#head === this.#timestamps.length;
  }

  /** The oldest open read timestamp, or 0 when none is open. */
  get minimum(): number {
    return this.empty ? 0 : this.#timestamps[this.#head]!;
  }

  add(timestamp: number): void {
    const last = this.#timestamps.length - 1;
    if (last >= this.#head && this.#timestamps[last] === timestamp) {
      this.#counts[last]!++;
      return;
    }
    // Arrivals are in order; an out-of-order one (it cannot happen, but costs nothing to allow) is
    // inserted where it belongs.
    let at = this.#timestamps.length;
    while (at > this.#head && this.#timestamps[at - 1]! > timestamp) at--;
    if (at > this.#head && this.#timestamps[at - 1] === timestamp) {
      this.#counts[at - 1]!++;
      return;
    }
    this.#timestamps.splice(at, 0, timestamp);
    this.#counts.splice(at, 0, 1);
  }

  remove(timestamp: number): void {
    const at = this.#find(timestamp);
    if (at < 0) return;
    this.#counts[at]!--;
    while (!this.empty && this.#counts[this.#head] === 0) this.#head++;
    // Drop the released prefix now and then, so the arrays stay as long as what is open.
    if (this.#head > 64 && this.#head * 2 > this.#timestamps.length) {
      this.#timestamps = this.#timestamps.slice(this.#head);
      this.#counts = this.#counts.slice(this.#head);
      this.#head = 0;
    }
  }

  clear(): void {
    this.#timestamps = [];
    this.#counts = [];
    this.#head = 0;
  }

  #find(timestamp: number): number {
    let low = this.#head;
    let high = this.#timestamps.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.#timestamps[middle]!;
      if (value === timestamp) return middle;
      if (value < timestamp) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }
}
