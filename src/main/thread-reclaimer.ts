import { open as openFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CommandRing,
  databaseStateOpen,
  kDatabaseDeaths,
  kDatabaseState,
  kSlotClaim,
  kSlotDead,
  kSlotThread,
  kWorkerDoorbell,
  kWorkerState,
  slotReclaiming,
  slotWord,
  workerStateCrashed,
  workerStateStopped,
} from '../shared-memory/index.js';
import { type MvccState, txPreparing } from '../shared-memory/mvcc/mvcc-state.js';
import type { BufferPool } from '../shared-memory/pool/buffer-pool.js';
import { kRingResetRequest } from '../shared-memory/ring/ring-layout.js';
import { decisionDirectory, readCommittedTransactions } from '../storage/decision-log.js';
import { freeThreadSlot } from './thread-slots.js';

/**
 * A thread that died with a decision write in flight: its teardown lets the write finish (Node waits
 * for a dying thread's file requests), and when its death was reported from its own exit handler,
 * that teardown may still be running. The reclaimer waits this long before reading the decision logs.
 */
const decisionWriteGraceMs = 1000;
/** How long one wait for the owners lasts before the reclaimer looks again whether it should stop. */
const ownerWaitSliceMs = 250;
/** The reclaimer looks for dead slots at least this often, should a death report's wake-up be missed. */
const deathsPollMs = 5000;

/** What the reclaimer works on: the opener's view of the database. */
export interface ReclaimerParts {
  path: string;
  threadsMax: number;
  databaseControl: Int32Array;
  workerControls: Int32Array[];
  /** rings[worker][slot] and rings[worker][threadsMax + slot] belong to thread slot `slot`. */
  rings: CommandRing[][];
  mvcc: MvccState;
  /** The buffer pools of partitions over page files, as this thread attached them (none in arenas). */
  pools: readonly BufferPool[];
}

/**
 * Runs on the thread that opened the database and gives back what a dead thread held. A death is
 * reported in the database control block (thread-liveness.ts), and the reclaimer then, for that slot:
 * gives back the page latches it held in the partitions' buffer pools (a thread ended while it loaded
 * a page would otherwise leave the page locked, and an owner that needs it waiting); closes its
 * commit window; frees its snapshot slots, so version cleanup resumes; has each owner
 * forget the records the thread left in its rings (applied ones stay applied; the others, never
 * acknowledged to anyone alive, are dropped, along with an operation half sent in fragments); decides
 * its undecided two-phase transactions, commit where its decision is in a decision log, presumed
 * abort otherwise; and frees the slot for the next thread.
 *
 * It waits on a shared word, which does not keep the process alive.
 */
export class ThreadReclaimer {
  readonly #parts: ReclaimerParts;
  #stopped = false;
  #running: Promise<void> | null = null;
  /** Slots reclaimed since open (for tests and stats). */
  reclaimed = 0;

  constructor(parts: ReclaimerParts) {
    this.#parts = parts;
  }

  start(): void {
    this.#running = this.#run();
  }

  /** Stops at the next step; resolves once it has. */
  async stop(): Promise<void> {
    this.#stopped = true;
    Atomics.notify(this.#parts.databaseControl, kDatabaseDeaths);
    await this.#running;
  }

  async #run(): Promise<void> {
    const control = this.#parts.databaseControl;
    while (!this.#stopping()) {
      const deaths = Atomics.load(control, kDatabaseDeaths);
      for (let slot = 0; slot < this.#parts.threadsMax && !this.#stopping(); slot++) {
        const dead = Atomics.load(control, slotWord(slot, kSlotDead));
        if (dead === 0 || dead !== Atomics.load(control, slotWord(slot, kSlotClaim))) continue;
        try {
          await this.#reclaim(slot, dead);
        } catch (error) {
          // The slot stays marked as being reclaimed: unusable, rather than handed on half undone.
          console.error(`lightning-db: reclaiming thread slot ${slot} from a dead thread failed`, error);
        }
      }
      const wait = Atomics.waitAsync(control, kDatabaseDeaths, deaths, deathsPollMs);
      if (wait.async) await wait.value;
    }
  }

  #stopping(): boolean {
    return this.#stopped || Atomics.load(this.#parts.databaseControl, kDatabaseState) !== databaseStateOpen;
  }

  async #reclaim(slot: number, generation: number): Promise<void> {
    const { databaseControl, mvcc, workerControls } = this.#parts;
    const claim = slotWord(slot, kSlotClaim);
    const thread = Atomics.load(databaseControl, slotWord(slot, kSlotThread)) - 1;
    if (Atomics.compareExchange(databaseControl, claim, generation, slotReclaiming) !== generation) return;
    // First: an owner waiting for a latch the thread held could not get to its rings' reset.
    if (thread >= 0) this.#recoverLatches(thread);
    const committer = workerControls.length + slot;
    // A window left open would make every new snapshot wait for it.
    mvcc.closeWindow(committer);
    mvcc.releaseThreadSnapshots(slot);
    if (!(await this.#resetRings(slot))) return;
    await this.#decideTransactions(slot, committer);
    freeThreadSlot(databaseControl, slot);
    this.reclaimed++;
  }

  /** Gives back the pool latches and holder slots of the thread `thread` (its threadId). */
  #recoverLatches(thread: number): void {
    // A thread that waited on one of those latches may have given them back already (buffer-pool.ts).
    for (const pool of this.#parts.pools) pool.recoverThread(thread);
  }

  /** Has every owner forget what the slot's rings hold; false if the database closed meanwhile. */
  async #resetRings(slot: number): Promise<boolean> {
    const { rings, workerControls, threadsMax } = this.#parts;
    const slotRings = rings.map((perWorker) => [perWorker[slot]!, perWorker[threadsMax + slot]!]);
    for (const [worker, pair] of slotRings.entries()) {
      for (const ring of pair) Atomics.store(ring.i32, kRingResetRequest, 1);
      ringDoorbell(workerControls[worker]!);
    }
    for (const [worker, pair] of slotRings.entries()) {
      for (const ring of pair) {
        while (Atomics.load(ring.i32, kRingResetRequest) !== 0) {
          if (this.#stopping()) return false;
          // A crashed or stopped owner serves no ring again: nothing of this one can reach it.
          const state = Atomics.load(workerControls[worker]!, kWorkerState);
          if (state === workerStateCrashed || state === workerStateStopped) break;
          const wait = Atomics.waitAsync(ring.i32, kRingResetRequest, 1, ownerWaitSliceMs);
          if (wait.async && (await wait.value) === 'timed-out') ringDoorbell(workerControls[worker]!);
        }
      }
    }
    return true;
  }

  /**
   * Decides the slot's undecided two-phase transactions. Its rings are reset, so no prepare of them
   * is still on its way: the participants that prepared have counted themselves, and the decision is
   * final. A transaction whose decision is in a decision log committed (the coordinator may have told
   * no one, but a recovery would commit it); any other is aborted, as recovery would presume.
   */
  async #decideTransactions(slot: number, committer: number): Promise<void> {
    const { mvcc, path, workerControls } = this.#parts;
    const undecided = mvcc.undecidedTransactionsOf(slot);
    if (undecided.length === 0) return;
    if (undecided.some((transaction) => transaction.decisionLogging)) await sleep(decisionWriteGraceMs);
    const committed = await readCommittedTransactions(path);
    let synced = false;
    for (const { reference } of undecided) {
      if (mvcc.transactionState(reference) !== txPreparing) continue;
      if (committed.has(mvcc.transactionId(reference))) {
        // The record may be written and not yet synced: it must be durable before anyone acts on it.
        if (!synced) await syncDecisionLogs(path);
        synced = true;
        const commitTimestamp = mvcc.openWindow(committer);
        mvcc.decide(reference, true, commitTimestamp);
        mvcc.closeWindow(committer);
      } else {
        mvcc.decide(reference, false, 0);
        if (mvcc.participants(reference) === 0) mvcc.freeTransaction(reference);
      }
    }
    for (const control of workerControls) ringDoorbell(control);
  }
}

function ringDoorbell(control: Int32Array): void {
  Atomics.add(control, kWorkerDoorbell, 1);
  Atomics.notify(control, kWorkerDoorbell);
}

/** Syncs every decision log, so a decision read from one stays true after a power loss. */
async function syncDecisionLogs(path: string): Promise<void> {
  const directory = decisionDirectory(path);
  for (const name of (await readdir(directory)).filter((n) => n.endsWith('.log'))) {
    const handle = await openFile(join(directory, name), 'r+');
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }
}
