import { statfs } from 'node:fs/promises';
import { isLightningError, kDatabaseWritesRefused } from '../shared-memory/index.js';
import { directoryFingerprint } from '../storage/directory-fingerprint.js';
import { acquireLock } from '../storage/lock-file.js';
import { storageCondition } from '../storage/storage-errors.js';
import { startWalRun } from '../storage/wal/index.js';

/** How often a database opened on a full disk looks for space to write again. */
export const writableAgainCheckMs = 1_000;
/**
 * Free space below which no attempt is made: taking the lock, a log per owner and the manifests'
 * marks need a few pages each, and an attempt that fails half-way costs a log file's first page.
 */
const freeBytesForAnAttempt = 256 * 1024;

/** What becoming writable again does, step by step; each step may fail on a still-full disk. */
export interface WritableAgainSteps {
  directory: string;
  /** Every owner starts writing, its new log in `walEpoch` (owners that write already do nothing). */
  becomeWritable(walEpoch: number): Promise<void>;
  /** What the opener left for a writable open: the torn tails to cut, the decision logs to drop. */
  finishOpen(): Promise<void>;
  /** The database's control block: its writes-refused word is cleared at the end. */
  databaseControl: Int32Array;
}

/**
 * A database opened on a full disk serves reads only; this makes it write again once space returns,
 * without a reopen. Every second (while refused) it checks the free space and, when there is room,
 * takes the directory's lock, checks that no other process wrote the database since it was opened
 * (the directory's fingerprint), has every owner start writing, cuts the torn tails and drops the
 * decision logs as a writable open would, and then lets every thread's writes through. A step the
 * disk refuses is tried again a second later; a lock held by another process or a database changed
 * by one ends the attempts (the database keeps serving reads; reopen it to write).
 */
export class WritableAgain {
  readonly #steps: WritableAgainSteps;
  readonly #fingerprint: string;
  #timer: NodeJS.Timeout | null = null;
  #attempt: Promise<void> | null = null;
  #releaseLock: (() => Promise<void>) | null = null;
  /** Why attempts ended for good, if they did. */
  #givenUp: string | null = null;

  /**
   * `fingerprint`: the directory's (directoryFingerprint), taken before the owners recovered what
   * they serve, so that any write by another process since is seen.
   */
  constructor(steps: WritableAgainSteps, fingerprint: string) {
    this.#steps = steps;
    this.#fingerprint = fingerprint;
  }

  /** Starts looking; the timer never keeps the process alive. */
  start(): void {
    Atomics.store(this.#steps.databaseControl, kDatabaseWritesRefused, 1);
    this.#timer = setInterval(() => {
      if (this.#attempt === null) this.#attempt = this.#try().finally(() => (this.#attempt = null));
    }, writableAgainCheckMs);
    this.#timer.unref();
  }

  /** Why the database will not write again without a reopen, or null. */
  get givenUp(): string | null {
    return this.#givenUp;
  }

  /** Stops looking (close()): waits for an attempt under way; returns the lock to release, if taken. */
  async stop(): Promise<(() => Promise<void>) | null> {
    this.#stopTimer();
    await this.#attempt;
    return this.#releaseLock;
  }

  async #try(): Promise<void> {
    try {
      if (!(await this.#hasRoom())) return;
      if (this.#releaseLock === null) {
        const release = await acquireLock(this.#steps.directory);
        if ((await directoryFingerprint(this.#steps.directory)) !== this.#fingerprint) {
          await release();
          this.#giveUp('another process changed the database while this one served reads');
          return;
        }
        this.#releaseLock = release;
      }
      // A new epoch for each attempt: a log a failed attempt began is an earlier run's torn log.
      await this.#steps.becomeWritable((await startWalRun(this.#steps.directory)).epoch);
      await this.#steps.finishOpen();
      this.#stopTimer();
      Atomics.store(this.#steps.databaseControl, kDatabaseWritesRefused, 0);
    } catch (error) {
      if (isLightningError(error, 'ERR_LOCKED')) this.#giveUp(error.message);
      else if (!isStillFull(error)) this.#giveUp(String(error));
    }
  }

  async #hasRoom(): Promise<boolean> {
    const space = await statfs(this.#steps.directory);
    return space.bavail * space.bsize >= freeBytesForAnAttempt;
  }

  #giveUp(reason: string): void {
    this.#givenUp = reason;
    this.#stopTimer();
    console.error(`lightning-db: ${this.#steps.directory} keeps serving reads only: ${reason}`);
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** A refusal by a disk that is still full or read-only: the next attempt may succeed. */
function isStillFull(error: unknown): boolean {
  return (
    isLightningError(error, 'ERR_DISK_FULL') ||
    isLightningError(error, 'ERR_READ_ONLY') ||
    storageCondition(error) !== null
  );
}
