import { performance } from 'node:perf_hooks';
import { assert } from '../shared-memory/assert.js';
import { LightningError } from '../shared-memory/errors.js';
import type { LeaseBucket } from './lease-bucket.js';
import { decodeLeaseValue, encodeLeaseValue, validateHolder } from './lease-value.js';
import { isWrongLastSequence, replicationError } from './nats-errors.js';
import {
  leaseAttemptFraction,
  leaseKeyDefault,
  leaseMarginFraction,
  leaseRenewFraction,
  leaseRetryFraction,
} from './replication-limits.js';

/**
 * A leader lease: one KV entry that at most one holder at a time believes it holds.
 *
 * Taken with `create` (which fails while anyone else's entry exists), kept with
 * `update(key, value, revision)` (which fails if anyone wrote since our last write), and lost when
 * a renewal is not confirmed in time. The KV revision at which it was created is its term: terms
 * only grow, across holders too, because revisions are the bucket stream's sequence numbers.
 *
 * Why a holder may trust it: the servers remove the entry one TTL after they stored our last
 * write, and they stored it after we sent it, so no one can `create` it before (send time + TTL).
 * We believe we hold it until (send time of the last confirmed renewal + TTL − margin), on our own
 * monotonic clock; the margin covers the server's clock running faster than ours. Past that moment
 * `isHeld()` is false at once, whether or not a timer has run: a process that was frozen
 * (SIGSTOP, a long GC pause, a suspended VM) sees it the instant it runs again.
 *
 * What it does not do alone: fence. A deposed holder may still be between `isHeld()` and a write;
 * the replication log rejects that write by its expected sequence (see log-publisher.ts).
 */

export interface LeaderLeaseOptions {
  /** Who is taking the lease (a name for people and logs: host, pid, ...). */
  holder: string;
  /** The key in the bucket: 'leader' unless told. */
  key?: string;
  /** A monotonic clock in milliseconds (performance.now unless told): tests may drive it. */
  clock?: () => number;
}

/** Called once when the lease is lost, with the reason (an ERR_DEPOSED LightningError). */
export type LeaseLostListener = (reason: LightningError) => void;

/** What the bucket says about a lease, as any process may read it. */
export interface LeaseState {
  readonly holder: string;
  readonly term: number;
  /** The entry's current revision (grows with every renewal). */
  readonly revision: number;
}

/** Reads the lease entry: undefined when nobody holds it (no entry, or a deleted one). */
export async function readLeaderLease(
  bucket: LeaseBucket,
  key = leaseKeyDefault,
): Promise<LeaseState | undefined> {
  let entry: Awaited<ReturnType<typeof bucket.kv.get>>;
  try {
    entry = await bucket.kv.get(key);
  } catch (error) {
    throw replicationError(`reading lease ${bucket.name}/${key}`, error);
  }
  if (entry === null || entry.operation !== 'PUT') return undefined;
  const value = decodeLeaseValue(entry.value, `${bucket.name}/${key} revision ${entry.revision}`);
  return {
    holder: value.holder,
    term: value.term === 0 ? entry.revision : value.term,
    revision: entry.revision,
  };
}

export class LeaderLease {
  readonly holder: string;
  readonly key: string;
  /** The revision at which this holder created the entry: larger than any earlier holder's. */
  readonly term: number;
  readonly #bucket: LeaseBucket;
  readonly #clock: () => number;
  readonly #listeners = new Set<LeaseLostListener>();
  /** The entry's revision after our last confirmed write: what the next `update` must find. */
  #revision: number;
  /** On #clock: the lease is ours until then, unless lost earlier. */
  #heldUntilMs: number;
  #lost: LightningError | undefined;
  #released = false;
  #renewing = false;
  #renewCount = 0;
  #renewTimer: NodeJS.Timeout | undefined;
  #lapseTimer: NodeJS.Timeout | undefined;

  private constructor(
    bucket: LeaseBucket,
    holder: string,
    key: string,
    clock: () => number,
    revision: number,
    sentAtMs: number,
  ) {
    this.#bucket = bucket;
    this.holder = holder;
    this.key = key;
    this.#clock = clock;
    this.term = revision;
    this.#revision = revision;
    this.#heldUntilMs = sentAtMs + this.#validityMs;
    this.#armLapseTimer();
    this.#scheduleRenewal(bucket.ttlMs * leaseRenewFraction);
  }

  /**
   * Takes the lease if nobody holds it: ERR_LOCKED (naming the holder and term) if someone does,
   * ERR_REPLICATION if the servers do not answer. The lease then renews itself until `release()` or
   * until it is lost.
   */
  static async acquire(bucket: LeaseBucket, options: LeaderLeaseOptions): Promise<LeaderLease> {
    validateHolder(options.holder);
    const key = options.key ?? leaseKeyDefault;
    const clock = options.clock ?? (() => performance.now());
    const sentAtMs = clock();
    let revision: number;
    try {
      revision = await bucket.kv.create(key, encodeLeaseValue({ holder: options.holder, term: 0 }));
    } catch (error) {
      if (!isWrongLastSequence(error)) throw replicationError(`taking lease ${bucket.name}/${key}`, error);
      const current = await readLeaderLease(bucket, key);
      const by =
        current === undefined
          ? 'another holder (it lapsed since)'
          : `${current.holder}, term ${current.term}`;
      throw new LightningError('ERR_LOCKED', `lease ${bucket.name}/${key} is held by ${by}`, {
        cause: error,
      });
    }
    return new LeaderLease(bucket, options.holder, key, clock, revision, sentAtMs);
  }

  /** True while the lease is certainly ours; false from the first moment it may not be. */
  isHeld(): boolean {
    if (this.#lost !== undefined || this.#released) return false;
    if (this.#clock() >= this.#heldUntilMs) {
      this.#lose('no renewal was confirmed in time');
      return false;
    }
    return true;
  }

  /** Throws ERR_DEPOSED unless the lease is held: for the start of anything only a leader may do. */
  assertHeld(): void {
    if (!this.isHeld()) {
      throw this.#lost ?? new LightningError('ERR_DEPOSED', `lease ${this.key} was released`);
    }
  }

  /** Why the lease was lost (ERR_DEPOSED), or undefined while held or after release(). */
  get lostReason(): LightningError | undefined {
    return this.#lost;
  }

  /** The entry's revision after our last confirmed renewal. */
  get revision(): number {
    return this.#revision;
  }

  /** How many renewals the servers confirmed. */
  get renewals(): number {
    return this.#renewCount;
  }

  /** How long (on the lease's clock) the lease is certainly ours from now: 0 when not held. */
  remainingMs(): number {
    return this.isHeld() ? this.#heldUntilMs - this.#clock() : 0;
  }

  /**
   * Calls `listener` once when the lease is lost (a renewal not confirmed in time, or the entry
   * taken over), never after release(). Returns a function that removes the listener.
   */
  onLost(listener: LeaseLostListener): () => void {
    if (this.#lost !== undefined) {
      const reason = this.#lost;
      queueMicrotask(() => listener(reason));
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the reason when the lease is lost (never, after release()). */
  whenLost(): Promise<LightningError> {
    return new Promise((resolve) => this.onLost(resolve));
  }

  /**
   * Stops renewing and, if the lease is still ours, deletes the entry (only at our revision) so a
   * candidate can take it at once instead of after a TTL. Never throws for a server that does not
   * answer: the entry then lapses by itself.
   */
  async release(): Promise<void> {
    if (this.#released) return;
    const held = this.isHeld();
    this.#released = true;
    this.#stopTimers();
    this.#listeners.clear();
    if (held) await this.#deleteAt(this.#revision);
  }

  /** The part of the TTL a confirmed write lets us trust. */
  get #validityMs(): number {
    return this.#bucket.ttlMs * (1 - leaseMarginFraction);
  }

  #scheduleRenewal(delayMs: number): void {
    clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => void this.#renew(), delayMs);
    this.#renewTimer.unref();
  }

  #armLapseTimer(): void {
    clearTimeout(this.#lapseTimer);
    // isHeld() declares the loss when it runs; the timer is for the listeners of an idle holder.
    this.#lapseTimer = setTimeout(() => this.isHeld(), Math.max(0, this.#heldUntilMs - this.#clock()) + 1);
    this.#lapseTimer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#renewing || !this.isHeld()) return;
    this.#renewing = true;
    const sentAtMs = this.#clock();
    const timeoutMs = Math.max(
      1,
      Math.floor(Math.min(this.#heldUntilMs - sentAtMs, this.#bucket.ttlMs * leaseAttemptFraction)),
    );
    try {
      const value = encodeLeaseValue({ holder: this.holder, term: this.term });
      const revision = await this.#bucket.kv.update(this.key, value, this.#revision, timeoutMs);
      if (this.#lost !== undefined || this.#released) {
        // Confirmed too late: the lease was already given up. Hand the entry back rather than keep
        // a candidate waiting for one more TTL (only at this revision: never someone else's entry).
        if (this.#lost !== undefined) await this.#deleteAt(revision);
        return;
      }
      this.#revision = revision;
      this.#renewCount++;
      // Only now, and measured from before the send: the deadline never rests on an unconfirmed write.
      this.#heldUntilMs = sentAtMs + this.#validityMs;
      this.#armLapseTimer();
      this.#scheduleRenewal(this.#bucket.ttlMs * leaseRenewFraction);
    } catch (error) {
      if (isWrongLastSequence(error)) {
        await this.#afterRevisionMismatch(error);
      } else if (this.isHeld()) {
        // A timeout or a lost connection: retry until the lease lapses (the lapse timer reports it).
        this.#scheduleRenewal(this.#bucket.ttlMs * leaseRetryFraction);
      }
    } finally {
      this.#renewing = false;
    }
  }

  /**
   * A renewal found the entry at another revision. An earlier attempt whose answer was lost (a
   * timeout, a dropped connection) may have landed: if the entry still names this holder and term,
   * it is ours at a newer revision. Adopting it does not extend the deadline (when that write was
   * stored is unknown); the next renewal, sent at once, does. Anything else is a takeover.
   */
  async #afterRevisionMismatch(error: unknown): Promise<void> {
    let current: LeaseState | undefined;
    try {
      current = await readLeaderLease(this.#bucket, this.key);
    } catch {
      if (this.isHeld()) this.#scheduleRenewal(this.#bucket.ttlMs * leaseRetryFraction);
      return;
    }
    if (
      current === undefined ||
      current.holder !== this.holder ||
      current.term !== this.term ||
      current.revision <= this.#revision
    ) {
      this.#lose('another holder took the lease over', error);
      return;
    }
    this.#revision = current.revision;
    if (this.isHeld()) this.#scheduleRenewal(0);
  }

  async #deleteAt(revision: number): Promise<void> {
    try {
      await this.#bucket.kv.delete(this.key, { previousSeq: revision });
    } catch {
      // Not ours any more, or the servers do not answer: either way the entry lapses by itself.
    }
  }

  #lose(why: string, cause?: unknown): void {
    if (this.#lost !== undefined) return;
    assert(!this.#released, 'a released lease cannot be lost');
    this.#lost = new LightningError(
      'ERR_DEPOSED',
      `lease ${this.#bucket.name}/${this.key} (term ${this.term}, holder ${this.holder}) lost: ${why}`,
      cause === undefined ? undefined : { cause },
    );
    this.#stopTimers();
    const reason = this.#lost;
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    // Asynchronously: isHeld() may declare the loss in the middle of a caller's own work.
    queueMicrotask(() => {
      for (const listener of listeners) listener(reason);
    });
  }

  #stopTimers(): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#lapseTimer);
  }
}
