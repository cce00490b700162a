/**
 * The owner's stall report: when writes wait on an owner (in its rings, deferred for room or for a
 * lock, or as checkpoint requests) and no pass has completed any for `LIGHTNING_OWNER_STALL_REPORT_MS`
 * milliseconds, the owner prints one line saying what its loop is doing and what the writes wait for,
 * then again at most once per period while the stall lasts. Off unless the variable is set: a stall is
 * a bug or a disk that stopped answering, and the line is what tells the two apart.
 *
 * Why a timer in the owner rather than stats(): a stalled owner may be inside an await that never
 * ends, and then it answers no message; a timer of its own thread still runs.
 */
export class OwnerStallReport {
  readonly #everyMs: number;
  readonly #describe: () => string | null;
  readonly #timer: ReturnType<typeof setInterval>;
  #lastProgress = performance.now();
  #lastReport = 0;

  /**
   * `describe` returns what the owner waits on, or null when nothing waits (then there is no stall).
   */
  private constructor(everyMs: number, describe: () => string | null) {
    this.#everyMs = everyMs;
    this.#describe = describe;
    this.#timer = setInterval(() => this.#check(), Math.max(100, Math.floor(everyMs / 4)));
    this.#timer.unref();
  }

  /** A report if the environment asks for one (a whole number of milliseconds > 0), else null. */
  static fromEnvironment(describe: () => string | null): OwnerStallReport | null {
    const raw = process.env.LIGHTNING_OWNER_STALL_REPORT_MS;
    if (raw === undefined || raw.trim() === '') return null;
    const everyMs = Number(raw);
    if (!Number.isSafeInteger(everyMs) || everyMs <= 0) {
      console.warn(
        `lightning-db owner: LIGHTNING_OWNER_STALL_REPORT_MS=${raw} is not a whole number > 0; ignored`,
      );
      return null;
    }
    return new OwnerStallReport(everyMs, describe);
  }

  /** A pass completed writes. */
  progress(): void {
    this.#lastProgress = performance.now();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    const waiting = this.#describe();
    const now = performance.now();
    if (waiting === null) {
      this.#lastProgress = now;
      return;
    }
    const stalledMs = now - this.#lastProgress;
    if (stalledMs < this.#everyMs || now - this.#lastReport < this.#everyMs) return;
    this.#lastReport = now;
    console.warn(`lightning-db owner: no write completed for ${Math.round(stalledMs)} ms; ${waiting}`);
  }
}
