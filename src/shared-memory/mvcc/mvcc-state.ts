import { checksumWords } from '../checksum.js';
import { LightningError } from '../errors.js';
import { OpenReadTimestamps } from './open-read-timestamps.js';

/**
 * The database-wide MVCC state, one SharedArrayBuffer every thread maps: the timestamp oracle, the
 * commit windows in progress, the snapshot (reader-slot) table, and the transaction status table.
 * Every field is a 64-bit word, read and written with Atomics (sequentially consistent).
 *
 *   word 0: magic i32 | format version i32        word 1: checksum i32 | committers i32
 *   word 2: snapshot slots per thread i32 | threads i32
 *   word 3: transaction entries i32 | 0
 *   word 4: the oracle: the last commit timestamp handed out
 *   word 5: open snapshots, all threads
 *   then: one commit window per committer (owners first, then thread slots): 0, or the lowest
 *         timestamp the committer may be installing
 *   then: one oldest-snapshot word per thread: 0 none open, 1 registering, else the oldest read
 *         timestamp among the thread's open snapshots (the thread alone writes it)
 *   then: the snapshot slots, `slotsPerThread` per thread: 0 free, 1 registering, else a read timestamp
 *   then: five words per transaction entry: state i32 | generation i32, commit timestamp,
 *         participants that have not applied the decision yet, coordinating thread slot + 1 (0: none)
 *         with the decision-logging flag in bit 32, transaction id
 *
 * Why commit windows: a committer takes a timestamp, then installs its writes; a snapshot must not
 * pick a read timestamp at or above a timestamp whose writes are half installed. A committer also
 * decides, when it takes its timestamp, whether any snapshot could still need the versions it
 * replaces; a snapshot that registered too late for that decision waits until the window closes,
 * then reads at a timestamp that includes it. Windows are short (one chunk of a batch), so the wait is.
 *
 * A committer learns the oldest open snapshot from the per-thread oldest-snapshot words, one per
 * thread: each thread keeps its open read timestamps to itself (OpenReadTimestamps) and publishes
 * their minimum, set to 1 (registering) before a registration's waits begin when the thread had none
 * open, so the argument above holds word by word.
 */
const magic = 0x4d_56_43_43; // "MVCC"
/** 2: per-thread oldest-snapshot words; transaction entries record their coordinator and id. */
export const mvccFormatVersion = 2;
const headerWords = 6;
const wOracle = 4;
const wOpenSnapshots = 5;
const entryWords = 5;
const entryCoordinator = 3;
const entryTransactionId = 4;
/** In the coordinator word: the coordinator is making the decision durable in its decision log. */
const decisionLoggingFlag = 1n << 32n;

export const txFree = 0;
export const txPreparing = 1;
export const txCommitted = 2;
export const txAborted = 3;
/**
 * What commitTimestamp returns for a transaction whose status entry was freed: every participant had
 * applied its decision, so its intents are gone and a reader must read the head again.
 */
export const transactionEnded = -1;

export interface MvccSizes {
  committers: number;
  threads: number;
  slotsPerThread: number;
  transactionEntries: number;
}

export const snapshotSlotsPerThreadDefault = 1024;
export const transactionEntriesDefault = 4096;
/** A snapshot that cannot register for this long is facing a committer that died mid-window. */
const windowWaitBudgetMs = 10_000;

export class MvccState {
  readonly sab: SharedArrayBuffer;
  readonly #i64: BigInt64Array;
  readonly #i32: Int32Array;
  readonly committers: number;
  readonly threads: number;
  readonly slotsPerThread: number;
  readonly transactionEntries: number;
  readonly #windowsAt: number;
  readonly #oldestAt: number;
  readonly #slotsAt: number;
  readonly #entriesAt: number;
  /** Open read timestamps of the threads this instance registers snapshots for (its own thread). */
  readonly #openReads = new Map<number, OpenReadTimestamps>();

  private constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.#i64 = new BigInt64Array(sab);
    this.#i32 = new Int32Array(sab);
    this.committers = this.#i32[3]!;
    this.slotsPerThread = this.#i32[4]!;
    this.threads = this.#i32[5]!;
    this.transactionEntries = this.#i32[6]!;
    this.#windowsAt = headerWords;
    this.#oldestAt = this.#windowsAt + this.committers;
    this.#slotsAt = this.#oldestAt + this.threads;
    this.#entriesAt = this.#slotsAt + this.threads * this.slotsPerThread;
  }

  static create(sizes: MvccSizes): MvccState {
    const words =
      headerWords +
      sizes.committers +
      sizes.threads +
      sizes.threads * sizes.slotsPerThread +
      sizes.transactionEntries * entryWords;
    const sab = new SharedArrayBuffer(words * 8);
    const i32 = new Int32Array(sab);
    i32[0] = magic;
    i32[1] = mvccFormatVersion;
    i32[3] = sizes.committers;
    i32[4] = sizes.slotsPerThread;
    i32[5] = sizes.threads;
    i32[6] = sizes.transactionEntries;
    i32[2] = checksumWords([i32[0]!, i32[1]!, i32[3]!, i32[4]!, i32[5]!, i32[6]!]) | 0;
    const state = new MvccState(sab);
    // Timestamp 1 is everything recovered at open; snapshots and commits start above it.
    Atomics.store(state.#i64, wOracle, 1n);
    return state;
  }

  static attach(sab: unknown): MvccState {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < headerWords * 8) {
      throw new LightningError('ERR_BAD_ARGUMENT', 'not an MVCC block: expected a SharedArrayBuffer');
    }
    const i32 = new Int32Array(sab, 0, headerWords * 2);
    if (
      i32[0] !== magic ||
      i32[2] !== (checksumWords([i32[0]!, i32[1]!, i32[3]!, i32[4]!, i32[5]!, i32[6]!]) | 0)
    ) {
      throw new LightningError('ERR_CORRUPTION', 'MVCC block: bad magic number or checksum');
    }
    if (i32[1] !== mvccFormatVersion) {
      throw new LightningError('ERR_FORMAT_VERSION', `MVCC block format version ${i32[1]}`);
    }
    return new MvccState(sab);
  }

  /** The last commit timestamp handed out. */
  now(): number {
    return Number(Atomics.load(this.#i64, wOracle));
  }

  /**
   * Raises the last timestamp handed out to at least `timestamp`, at open, before any snapshot or
   * commit window: cells recovered from a page file keep the commit timestamps of an earlier run, and
   * a snapshot taken below them would take them for newer than itself and miss them. Never lowers it.
   */
  startAbove(timestamp: number): void {
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new LightningError('ERR_BAD_ARGUMENT', `startAbove: ${String(timestamp)} is not a timestamp`);
    }
    const i64 = this.#i64;
    const wanted = BigInt(timestamp);
    for (let current = Atomics.load(i64, wOracle); current < wanted; ) {
      const seen = Atomics.compareExchange(i64, wOracle, current, wanted);
      if (seen === current) return;
      current = seen;
    }
  }

  /**
   * Opens a commit window for `committer` and returns its commit timestamp. Until `closeWindow`, no
   * snapshot reads at or above it.
   */
  openWindow(committer: number): number {
    const i64 = this.#i64;
    Atomics.store(i64, this.#windowsAt + committer, Atomics.load(i64, wOracle) + 1n);
    return Number(Atomics.add(i64, wOracle, 1n) + 1n);
  }

  closeWindow(committer: number): void {
    Atomics.store(this.#i64, this.#windowsAt + committer, 0n);
  }

  /**
   * The oldest read timestamp any thread has registered (1 while one is registering), or Infinity if
   * no snapshot is open. A committer calls it after `openWindow`. Reads one word per thread.
   */
  oldestSnapshot(): number {
    const i64 = this.#i64;
    if (Atomics.load(i64, wOpenSnapshots) === 0n) return Number.POSITIVE_INFINITY;
    let oldest = Number.POSITIVE_INFINITY;
    const end = this.#oldestAt + this.threads;
    for (let w = this.#oldestAt; w < end; w++) {
      const value = Atomics.load(i64, w);
      if (value !== 0n && Number(value) < oldest) oldest = Number(value);
    }
    return oldest;
  }

  openSnapshots(): number {
    return Number(Atomics.load(this.#i64, wOpenSnapshots));
  }

  /**
   * Registers a snapshot in slot `slot` of thread `thread` and returns its read timestamp: every
   * commit at or below it is completely installed, and no committer that could still replace a
   * version it needs without keeping it is running. If it throws, the slot is left free.
   */
  registerSnapshot(thread: number, slot: number): number {
    const i64 = this.#i64;
    const word = this.#slotWord(thread, slot);
    const open = this.#openReadsOf(thread);
    // The thread's oldest-snapshot word says "registering" before the count makes owners look at it.
    // A thread with a snapshot open already publishes an older timestamp than this one will get.
    const first = open.empty;
    if (first) Atomics.store(i64, this.#oldestAt + thread, 1n);
    Atomics.store(i64, word, 1n);
    Atomics.add(i64, wOpenSnapshots, 1n);
    let readTimestamp: bigint;
    try {
      // Windows open now may have decided before this registration was visible: let them close.
      this.#waitForWindows(0);
      readTimestamp = Atomics.load(i64, wOracle);
      // Windows opened since, at or below the read timestamp, may still be installing: let them close.
      this.#waitForWindows(Number(readTimestamp));
    } catch (error) {
      // The registration never happened: undo it here, so a release always names a real snapshot.
      if (Atomics.exchange(i64, word, 0n) !== 0n) Atomics.sub(i64, wOpenSnapshots, 1n);
      if (first) Atomics.store(i64, this.#oldestAt + thread, 0n);
      throw error;
    }
    Atomics.store(i64, word, readTimestamp);
    open.add(Number(readTimestamp));
    Atomics.store(i64, this.#oldestAt + thread, BigInt(open.minimum));
    return Number(readTimestamp);
  }

  releaseSnapshot(thread: number, slot: number): void {
    const i64 = this.#i64;
    const held = Atomics.exchange(i64, this.#slotWord(thread, slot), 0n);
    if (held === 0n) return;
    Atomics.sub(i64, wOpenSnapshots, 1n);
    const open = this.#openReadsOf(thread);
    open.remove(Number(held));
    Atomics.store(i64, this.#oldestAt + thread, BigInt(open.minimum));
  }

  /**
   * Frees every snapshot slot of a thread: the thread is closing its database, or it died and
   * another thread reclaims its slot (its own bookkeeping died with it).
   */
  releaseThreadSnapshots(thread: number): void {
    const i64 = this.#i64;
    for (let slot = 0; slot < this.slotsPerThread; slot++) {
      if (Atomics.exchange(i64, this.#slotWord(thread, slot), 0n) !== 0n)
        Atomics.sub(i64, wOpenSnapshots, 1n);
    }
    this.#openReads.get(thread)?.clear();
    Atomics.store(i64, this.#oldestAt + thread, 0n);
  }

  /** The oldest read timestamp thread `thread` publishes: 0 none open, 1 registering. */
  threadOldestSnapshot(thread: number): number {
    return Number(Atomics.load(this.#i64, this.#oldestAt + thread));
  }

  #openReadsOf(thread: number): OpenReadTimestamps {
    let open = this.#openReads.get(thread);
    if (open === undefined) {
      open = new OpenReadTimestamps();
      this.#openReads.set(thread, open);
    }
    return open;
  }

  /** Waits until every window open now whose low bound is <= `atMost` (0: every window) has closed. */
  #waitForWindows(atMost: number): void {
    const i64 = this.#i64;
    const from = this.#windowsAt;
    let started = 0;
    for (let c = 0; c < this.committers; c++) {
      const seen = Atomics.load(i64, from + c);
      if (seen === 0n || (atMost !== 0 && Number(seen) > atMost)) continue;
      let spins = 0;
      while (Atomics.load(i64, from + c) === seen) {
        if (++spins % 4096 !== 0) continue;
        const now = performance.now();
        if (started === 0) started = now;
        else if (now - started > windowWaitBudgetMs) {
          throw new LightningError(
            'ERR_INTERNAL',
            `a commit window stayed open for ${windowWaitBudgetMs} ms: its committer died mid-commit`,
          );
        }
      }
    }
  }

  #slotWord(thread: number, slot: number): number {
    return this.#slotsAt + thread * this.slotsPerThread + slot;
  }

  // The transaction status table.

  /**
   * Claims a free entry (state preparing) for transaction `transactionId`, coordinated by thread slot
   * `coordinator`, and returns its reference, or -1 if the table is full.
   */
  allocateTransaction(hint: number, coordinator = -1, transactionId = 0): number {
    const i32 = this.#i32;
    const entries = this.transactionEntries;
    for (let n = 0; n < entries; n++) {
      const index = (hint + n) % entries;
      const word = (this.#entriesAt + index * entryWords) * 2;
      if (Atomics.compareExchange(i32, word, txFree, txPreparing) !== txFree) continue;
      const generation = (Atomics.add(i32, word + 1, 1) + 1) >>> 0;
      Atomics.store(this.#i64, this.#entriesAt + index * entryWords + 1, 0n);
      Atomics.store(this.#i64, this.#entriesAt + index * entryWords + 2, 0n);
      const entry = this.#entriesAt + index * entryWords;
      Atomics.store(this.#i64, entry + entryTransactionId, BigInt(transactionId));
      Atomics.store(this.#i64, entry + entryCoordinator, BigInt(coordinator + 1));
      return generation * entries + index;
    }
    return -1;
  }

  /**
   * The state of a transaction by reference: txPreparing, txCommitted or txAborted; txFree when the
   * entry was freed (the transaction ended and its intents are gone: read again).
   */
  transactionState(reference: number): number {
    const entries = this.transactionEntries;
    const word = (this.#entriesAt + (reference % entries) * entryWords) * 2;
    const generation = Math.floor(reference / entries);
    // Read as a seqlock: the generation, the state, the generation again. A state read while the
    // generation is the reference's, before and after, is this transaction's (or, for the instant a
    // new claim takes a free entry before bumping its generation, txPreparing, which only makes a
    // reader look further back and check the head again).
    if (Atomics.load(this.#i32, word + 1) >>> 0 !== generation) return txFree;
    const state = Atomics.load(this.#i32, word);
    if (Atomics.load(this.#i32, word + 1) >>> 0 !== generation) return txFree;
    return state;
  }

  /**
   * The commit timestamp of a committed transaction (valid once its state reads txCommitted), or
   * transactionEnded if its entry was freed and claimed again meanwhile.
   *
   * The generation is checked before and after the timestamp is read, as a seqlock: a claim bumps
   * the generation before it resets the timestamp to 0, and the new transaction's decision sets
   * another, so a timestamp read between two matching generations is this transaction's. Without
   * the second check a reader could take the reset 0 for the commit timestamp and see a write
   * committed after its snapshot.
   */
  commitTimestamp(reference: number): number {
    const entries = this.transactionEntries;
    const base = this.#entriesAt + (reference % entries) * entryWords;
    const generation = Math.floor(reference / entries);
    if (Atomics.load(this.#i32, base * 2 + 1) >>> 0 !== generation) return transactionEnded;
    const timestamp = Number(Atomics.load(this.#i64, base + 1));
    if (Atomics.load(this.#i32, base * 2 + 1) >>> 0 !== generation) return transactionEnded;
    return timestamp;
  }

  /** Publishes the decision. A commit timestamp is set before the state, so readers see both. */
  decide(reference: number, committed: boolean, commitTimestamp: number): void {
    const index = reference % this.transactionEntries;
    const base = this.#entriesAt + index * entryWords;
    if (committed) Atomics.store(this.#i64, base + 1, BigInt(commitTimestamp));
    Atomics.store(this.#i32, base * 2, committed ? txCommitted : txAborted);
  }

  /** A participant applied the decision; the last one frees the entry. */
  participantDone(reference: number): void {
    const index = reference % this.transactionEntries;
    const base = this.#entriesAt + index * entryWords;
    if (Atomics.sub(this.#i64, base + 2, 1n) === 1n) {
      Atomics.store(this.#i64, base + entryCoordinator, 0n);
      Atomics.store(this.#i32, base * 2, txFree);
    }
  }

  /** Frees an entry no participant holds (a transaction that prepared nowhere). */
  freeTransaction(reference: number): void {
    const index = reference % this.transactionEntries;
    // A free entry names no coordinator, so one being claimed never shows its previous coordinator.
    Atomics.store(this.#i64, this.#entriesAt + index * entryWords + entryCoordinator, 0n);
    Atomics.store(this.#i32, (this.#entriesAt + index * entryWords) * 2, txFree);
  }

  /**
   * A participant prepared the transaction: it will apply the decision and call `participantDone`.
   * Participants count themselves, so a coordinator that dies mid-commit leaves the count exact.
   */
  joinTransaction(reference: number): void {
    const index = reference % this.transactionEntries;
    Atomics.add(this.#i64, this.#entriesAt + index * entryWords + 2, 1n);
  }

  /** Participants that prepared the transaction and have not applied its decision yet. */
  participants(reference: number): number {
    const index = reference % this.transactionEntries;
    return Number(Atomics.load(this.#i64, this.#entriesAt + index * entryWords + 2));
  }

  /** The id the coordinator gave the transaction (the one its decision log records). */
  transactionId(reference: number): number {
    const index = reference % this.transactionEntries;
    return Number(Atomics.load(this.#i64, this.#entriesAt + index * entryWords + entryTransactionId));
  }

  /**
   * Marks that the coordinator is writing the decision to its decision log (or has finished): a
   * thread that died with such a write in flight may still see it reach the file.
   */
  setDecisionLogging(reference: number, logging: boolean): void {
    const index = reference % this.transactionEntries;
    const word = this.#entriesAt + index * entryWords + entryCoordinator;
    if (logging) Atomics.or(this.#i64, word, decisionLoggingFlag);
    else Atomics.and(this.#i64, word, ~decisionLoggingFlag);
  }

  /**
   * The undecided transactions thread slot `thread` coordinates: references in state preparing that
   * name it, each with whether its decision was being logged.
   */
  undecidedTransactionsOf(thread: number): { reference: number; decisionLogging: boolean }[] {
    const found: { reference: number; decisionLogging: boolean }[] = [];
    const entries = this.transactionEntries;
    for (let index = 0; index < entries; index++) {
      const base = this.#entriesAt + index * entryWords;
      if (Atomics.load(this.#i32, base * 2) !== txPreparing) continue;
      const generation = Atomics.load(this.#i32, base * 2 + 1) >>> 0;
      const coordinator = Atomics.load(this.#i64, base + entryCoordinator);
      if ((coordinator & 0xffff_ffffn) !== BigInt(thread + 1)) continue;
      found.push({
        reference: generation * entries + index,
        decisionLogging: (coordinator & decisionLoggingFlag) !== 0n,
      });
    }
    return found;
  }
}
