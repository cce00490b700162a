import { LightningError } from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';

/**
 * A registered snapshot slot of this thread, and how many snapshots read under its protection. The
 * read timestamp registered in it keeps every version that a read at it, or at any later timestamp,
 * could need: owners keep a replaced version while any registered timestamp is older than the
 * replacement.
 */
interface SlotLease {
  readonly slot: number;
  readonly timestamp: number;
  holders: number;
}

/** One snapshot's hold: its own read timestamp, and the lease (at or below it) that protects it. */
export interface SnapshotHold {
  readonly timestamp: number;
  lease: SlotLease;
  /** A `db.range()` scan's: may be moved to an older scan's lease when slots run out. */
  readonly scan: boolean;
  released: boolean;
  /** A scan's hold registered with the garbage-collection backstop (it outlived its task). */
  guarded: boolean;
}

/**
 * Scans waiting for the end of the task to be checked by the backstop, at most: past this many, the
 * ones still open are registered at once, so a long synchronous loop of scans keeps no more alive.
 */
const unguardedScansMax = 256;

/**
 * This thread's snapshot slots in the shared reader-slot table. Each snapshot, transaction and scan
 * registers a slot of its own, released with it; one dropped without release is reclaimed when the
 * garbage collector finds it (and counted as leaked, since until then it held back version cleanup).
 *
 * A scan releases its own snapshot when it ends, and most scans end in the task that started them:
 * registering each with the collector (a FinalizationRegistry entry, then its removal) would cost
 * them for nothing. So a scan is registered only if it is still open when its task ends (a
 * microtask checks the scans started since), which is when it can be abandoned unseen.
 *
 * Scans left unfinished (neither run to the end nor `return()`ed) hold their slots until the garbage
 * collector runs, which may be too late: so when no slot is free, every open scan is moved onto the
 * slot of the oldest scan, and the others are freed. That is safe because the oldest scan's timestamp
 * is at or below every other scan's, and the thread publishes only the minimum of its timestamps, so
 * the versions every scan needs are kept all the same. The cost: those scans then hold back version
 * cleanup from the oldest one's timestamp until the last of them ends.
 */
export class SnapshotRegistry {
  readonly #mvcc: MvccState;
  readonly #thread: number;
  readonly #free: number[] = [];
  /** Holds of open scans: the ones a shortage of slots may move. Never the scans themselves. */
  readonly #scans = new Set<SnapshotHold>();
  #leaked = 0;
  /** Scans started in this task, and their holds: registered with the collector if still open after. */
  readonly #unguardedScans: object[] = [];
  readonly #unguardedHolds: SnapshotHold[] = [];
  #guardScheduled = false;
  readonly #guardUnguarded = (): void => {
    this.#guardScheduled = false;
    const scans = this.#unguardedScans;
    const holds = this.#unguardedHolds;
    for (let i = 0; i < holds.length; i++) {
      const hold = holds[i]!;
      if (hold.released) continue;
      hold.guarded = true;
      this.#finalizer.register(scans[i]!, { hold, counted: true }, scans[i]!);
    }
    scans.length = 0;
    holds.length = 0;
  };
  /** Set once the thread closed its database: its slot (and snapshot slots) may be another's now. */
  #closed = false;
  readonly #finalizer = new FinalizationRegistry<{ hold: SnapshotHold; counted: boolean }>((held) => {
    if (this.#closed || held.hold.released) return;
    if (held.counted) this.#leaked++;
    this.release(held.hold);
  });

  constructor(mvcc: MvccState, thread: number) {
    this.#mvcc = mvcc;
    this.#thread = thread;
    for (let slot = mvcc.slotsPerThread - 1; slot >= 0; slot--) this.#free.push(slot);
  }

  /** Snapshots and scans dropped without release and reclaimed by the garbage collector. */
  get leaked(): number {
    return this.#leaked;
  }

  /** Registers a snapshot (`scan`: a db.range() scan's) and returns its hold. */
  acquire(scan: boolean): SnapshotHold {
    if (this.#free.length === 0) this.#consolidateScans();
    const slot = this.#free.pop();
    if (slot === undefined) {
      throw new LightningError(
        'ERR_TOO_MANY_SNAPSHOTS',
        `this thread holds ${this.#mvcc.slotsPerThread} open snapshots and transactions; release some`,
      );
    }
    let timestamp: number;
    try {
      timestamp = this.#mvcc.registerSnapshot(this.#thread, slot);
    } catch (error) {
      // registerSnapshot left the shared slot free.
      this.#free.push(slot);
      throw error;
    }
    const hold: SnapshotHold = {
      timestamp,
      lease: { slot, timestamp, holders: 1 },
      scan,
      released: false,
      guarded: false,
    };
    if (scan) this.#scans.add(hold);
    return hold;
  }

  /** Ends `hold`: its slot is freed once no other hold reads under it. Idempotent. */
  release(hold: SnapshotHold): void {
    if (hold.released) return;
    hold.released = true;
    this.#scans.delete(hold);
    this.#unpin(hold.lease);
  }

  /**
   * Puts a scan that owns `hold` under the garbage-collection backstop if it is still open when the
   * current task ends (counted as leaked if the collector then finds it unreleased). O(1).
   */
  guardScan(scan: object, hold: SnapshotHold): void {
    if (hold.released) return;
    if (this.#unguardedHolds.length >= unguardedScansMax) this.#guardUnguarded();
    this.#unguardedScans.push(scan);
    this.#unguardedHolds.push(hold);
    if (this.#guardScheduled) return;
    this.#guardScheduled = true;
    queueMicrotask(this.#guardUnguarded);
  }

  /** Ends a scan's hold (see `guardScan`). Idempotent. */
  releaseScan(scan: object, hold: SnapshotHold): void {
    if (hold.guarded) {
      hold.guarded = false;
      this.#finalizer.unregister(scan);
    }
    this.release(hold);
  }

  /** Reclaims `owner`'s hold if it is garbage-collected while still holding it. */
  watch(owner: object, hold: SnapshotHold, countAsLeak: boolean): void {
    this.#finalizer.register(owner, { hold, counted: countAsLeak }, owner);
  }

  unwatch(owner: object): void {
    this.#finalizer.unregister(owner);
  }

  /** Frees every slot of this thread (it is closing); later releases of its snapshots do nothing. */
  releaseAll(): void {
    this.#closed = true;
    this.#scans.clear();
    this.#mvcc.releaseThreadSnapshots(this.#thread);
  }

  /** Moves every open scan onto the oldest scan's lease, freeing the others' slots. */
  #consolidateScans(): void {
    let oldest: SlotLease | null = null;
    for (const hold of this.#scans) {
      if (oldest === null || hold.lease.timestamp < oldest.timestamp) oldest = hold.lease;
    }
    if (oldest === null) return;
    for (const hold of this.#scans) {
      if (hold.lease === oldest) continue;
      if (oldest.timestamp > hold.timestamp) {
        throw new LightningError(
          'ERR_INTERNAL',
          'a scan would move to a lease newer than its read timestamp',
        );
      }
      const previous = hold.lease;
      oldest.holders++;
      hold.lease = oldest;
      this.#unpin(previous);
    }
  }

  #unpin(lease: SlotLease): void {
    lease.holders--;
    if (lease.holders > 0 || this.#closed) return;
    this.#mvcc.releaseSnapshot(this.#thread, lease.slot);
    this.#free.push(lease.slot);
  }
}
