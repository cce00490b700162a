import { isLightningError } from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { storageCondition } from '../storage/storage-errors.js';
import { flushOwnerLogs, type SegmentRemoval } from '../storage/wal/index.js';
import type { DurabilityMode, OwnedPartition } from './owner-loop.js';
import { checkpointPagedPartition, type PagedCheckpointResult } from './paged-checkpoint.js';
import type { PagedTree } from './paged-tree.js';
import { checkpointStartLsn } from './partition-checkpoint.js';
import { refusalStatus } from './pass-rollback.js';

/** A partition over a page file, as its owner holds it. */
export interface PagedPartition extends OwnedPartition {
  pages: PagedTree;
}

/** A set starts in the background once this share of a pool's frames is dirty. */
const dirtyShareHighWater = 0.5;
/** After a set failed (a full disk, say), the next is tried no sooner than this. */
const retryAfterFailureMs = 1000;
/** Tombstones swept per partition between two passes (each removal is a write of its own). */
const sweepCellsPerStep = 64;

interface Waiting {
  resolve(result: PagedCheckpointResult): void;
  reject(error: unknown): void;
}

/**
 * Writes an owner's paged partitions' page sets, always between two of the owner's passes: then the
 * tree holds every record its log has below `log.nextLsn` and nothing staged, so a set at that LSN is
 * exact (PagedTree.writePages). A set the checkpoint scheduler asks for is also the partition's
 * checkpoint: recorded in its manifest, log segments it makes unnecessary removed
 * (checkpointPagedPartition); the others only write the pages.
 *
 * A set is written when a pass could not stage a write for want of frames (the loop defers the write
 * and waits for the set), in the background once half a pool's frames are dirty (so writes rarely
 * wait), and when the checkpoint scheduler asks. Three rules keep a set exact:
 * - no set while a prepared transaction's intents are in the tree: a replay from its prepare would not
 *   take them out, and the head an intent replaced lives only in the version store, which is not
 *   written. The set waits for the decisions, and meanwhile the partition takes no new prepare
 *   (`roomOwed`): under a steady flow of them some would always be in the tree;
 * - in 'relaxed' and 'none' the log is synced first, or a power loss could keep pages whose records
 *   the log lost, and the partition's LSNs would go back;
 * - one set at a time per owner, since sets remove log segments.
 * Between passes it also sweeps tombstones a page file kept from an earlier run, a few at a time.
 */
export class PageSets {
  readonly #partitions: Map<number, PagedPartition>;
  readonly #databaseDirectory: string;
  readonly #durability: DurabilityMode;
  readonly #mvcc: MvccState;
  readonly #segmentRemoval: SegmentRemoval;
  readonly #onError: (error: unknown) => void;
  /** Wakes the owner's loop, asleep on its doorbell. */
  readonly #wake: () => void;
  /** Partitions a pass found short of frames: their sets come before the next pass. */
  readonly #roomWanted = new Set<number>();
  /** Of those, the partitions whose set a prepared transaction's intents held back (`roomOwed`). */
  readonly #heldBack = new Set<number>();
  /** Checkpoints asked for, per partition. */
  readonly #requests = new Map<number, Waiting[]>();
  /** Where each partition's tombstone sweep goes on, for partitions with tombstones to sweep. */
  readonly #sweeps = new Map<number, Uint8Array>();
  /** Partitions with sets that only wrote pages since their last checkpoint in this run. */
  readonly #setsSinceCheckpoint = new Set<number>();
  #inFlight: Promise<void> | null = null;
  /** True when the last look found a set that must wait for a decision, or for a failure's backoff. */
  #blocked = false;
  /** No set starts before this time (Date.now()): the last one failed. */
  #retryAt = 0;
  /**
   * The ring status that refuses writes waiting for room while the disk refuses sets (full, over
   * quota, read-only): they would otherwise wait until space returns. Null once a set is written.
   */
  #refusal: number | null = null;

  constructor(
    partitions: Map<number, PagedPartition>,
    databaseDirectory: string,
    durability: DurabilityMode,
    mvcc: MvccState,
    segmentRemoval: SegmentRemoval,
    onError: (error: unknown) => void,
    wake: () => void,
  ) {
    this.#wake = wake;
    this.#partitions = partitions;
    this.#databaseDirectory = databaseDirectory;
    this.#durability = durability;
    this.#mvcc = mvcc;
    this.#segmentRemoval = segmentRemoval;
    this.#onError = onError;
    for (const [partition, owned] of partitions)
      if (owned.tree.tombstoneCount > 0) this.#sweeps.set(partition, new Uint8Array(0));
  }

  /** For the owner's stall report: whether checkpoints are asked for, and the state of every pool. */
  describe(): { requests: boolean; text: string } {
    const pools = [...this.#partitions].map(
      ([partition, owned]) =>
        `partition ${partition}: ${owned.pages.pool.dirtyPageCount()} of ${owned.pages.pool.framesMax} frames dirty` +
        (owned.versioned.oldestLsnToReplay() === null ? '' : ', a prepared transaction in the tree'),
    );
    const text =
      `room wanted for [${[...this.#roomWanted].join(', ')}], checkpoints asked for [${[...this.#requests.keys()].join(', ')}], ` +
      `a set under way: ${this.#inFlight !== null}, blocked: ${this.#blocked}, ` +
      `next try in ${Math.max(0, this.#retryAt - Date.now())} ms; ${pools.join('; ')}`;
    return { requests: this.#requests.size > 0, text };
  }

  /** A pass could not stage a write of `partition` for want of frames: a set comes first. */
  wantRoom(partition: number): void {
    if (this.#partitions.has(partition)) this.#roomWanted.add(partition);
  }

  /**
   * True while `partition` owes a set for room that a prepared transaction's intents held back, and
   * the disk does not refuse sets: the partition then takes no new prepare (OperationApplier), so
   * the prepared transactions drain and the set is written. (A set owed for version cleanup or the
   * tombstone sweep, with no intents in the way, is written before the next pass: nothing to hold
   * back.) While the disk refuses sets, writes waiting for room are refused instead (`refusal`).
   */
  roomOwed(partition: number): boolean {
    return this.#heldBack.has(partition) && this.#refusal === null;
  }

  /** True while a set is owed before deferred writes can go on, and nothing stops it being written. */
  get roomPending(): boolean {
    return this.#roomWanted.size > 0 && !this.#blocked;
  }

  /** The status refusing a write that waits for room while the disk refuses sets, or null. */
  get refusal(): number | null {
    return this.#refusal;
  }

  /** A set failed: try again after a pause; a full disk refuses the writes that wait for room. */
  #failed(error: unknown): void {
    this.#retryAt = Date.now() + retryAfterFailureMs;
    const errno = storageCondition(error);
    this.#refusal = errno === null ? null : refusalStatus(errno);
    this.#onError(error);
  }

  /** True when a set is owed and must wait for a prepared transaction's decision. */
  get waiting(): boolean {
    return this.#blocked;
  }

  /** True while there is work between passes that needs no new write to arrive. */
  get busy(): boolean {
    // A request waits for the set under way, which wakes the loop when it ends.
    const requests = this.#requests.size > 0 && !this.#blocked && this.#inFlight === null;
    return this.roomPending || this.#sweeps.size > 0 || requests;
  }

  /** A checkpoint of `partition`: the next set written for it, from the next gap between passes. */
  requestCheckpoint(partition: number): Promise<PagedCheckpointResult> {
    return new Promise((resolve, reject) => {
      const waiting = this.#requests.get(partition) ?? [];
      waiting.push({ resolve, reject });
      this.#requests.set(partition, waiting);
      this.#wake();
    });
  }

  /**
   * At a clean close, once the loop stopped and the log is synced: a checkpoint of every partition
   * with changed pages, or with sets since its last checkpoint, so the next open neither replays nor
   * reads any of the log (a partition holding a prepared transaction keeps its log tail instead). A
   * set that only wrote pages leaves the log it covers to be read past at the next open: 265 MB of it
   * after a load of 10 million records, 4.6 s of the reopen. A failure is reported; the log still
   * holds every write.
   */
  async writeAll(): Promise<void> {
    await this.idle();
    let checkpoints = 0;
    for (const [partition, owned] of this.#partitions) {
      if (owned.versioned.oldestLsnToReplay() !== null) continue;
      if (owned.pages.pool.dirtyPageCount() === 0 && !this.#setsSinceCheckpoint.has(partition)) continue;
      await this.#start(partition, owned, true);
      await this.idle();
      checkpoints++;
    }
    const log = this.#partitions.values().next().value?.log;
    if (checkpoints === 0 || log === undefined) return;
    // The segment the checkpoints cover goes too (once every partition in it is past it): the next
    // open reads a log with nothing in it, where it would read up to a segment's worth of records
    // only to find them all below where the pages are.
    try {
      await log.writer.startNextSegment();
      await this.#segmentRemoval.removeObsolete((other) =>
        checkpointStartLsn(this.#databaseDirectory, other),
      );
    } catch (error) {
      this.#onError(error);
    }
  }

  /** Resolves when no set is being written. */
  async idle(): Promise<void> {
    while (this.#inFlight !== null) await this.#inFlight;
  }

  /**
   * Called by the loop between passes: writes the sets owed (waiting for those a pass needs room
   * from), starts those the pools' dirty pages call for, and sweeps tombstones.
   */
  async betweenPasses(): Promise<void> {
    this.#blocked = false;
    for (const [partition, owned] of this.#partitions) {
      const room = this.#roomWanted.has(partition);
      const wanted =
        room ||
        this.#requests.has(partition) ||
        owned.pages.pool.dirtyPageCount() >= owned.pages.pool.framesMax * dirtyShareHighWater;
      if (!wanted) continue;
      if (this.#inFlight !== null) {
        // One at a time: a write that waits for room waits for the set under way first.
        if (!room) continue;
        await this.idle();
      }
      if (owned.versioned.oldestLsnToReplay() !== null || Date.now() < this.#retryAt) {
        this.#blocked ||= room || this.#requests.has(partition);
        if (room && owned.versioned.oldestLsnToReplay() !== null) this.#heldBack.add(partition);
        continue;
      }
      await this.#start(partition, owned);
      if (room) {
        await this.idle();
        this.#roomWanted.delete(partition);
        this.#heldBack.delete(partition);
      }
    }
    this.#sweep();
  }

  /** Syncs the log if the mode leaves it unsynced, then captures and writes one set (in the background). */
  async #start(partition: number, owned: PagedPartition, checkpoint = false): Promise<void> {
    if (this.#durability !== 'sync') {
      try {
        await flushOwnerLogs([owned.log], true);
      } catch (error) {
        this.#failed(error);
        return;
      }
    }
    const waiting = this.#requests.get(partition) ?? [];
    this.#requests.delete(partition);
    // The pages are captured in this call's first synchronous step. A set nobody asked to be a
    // checkpoint (for room, in the background) only writes the pages: recovery starts from
    // the page file's own redo LSN, and the manifest's record, with its sync and the log segments'
    // removal, waits for the checkpoint scheduler.
    const pagesOnly = waiting.length === 0 && !checkpoint;
    if (pagesOnly) this.#setsSinceCheckpoint.add(partition);
    const writing: Promise<PagedCheckpointResult | null | undefined> = pagesOnly
      ? owned.pages.writePages(owned.log.nextLsn, this.#mvcc.now()).then(() => undefined)
      : checkpointPagedPartition(
          this.#databaseDirectory,
          owned.pages,
          owned.log,
          this.#segmentRemoval,
          owned.log.nextLsn,
          this.#mvcc.now(),
        );
    this.#inFlight = writing.then(
      (result) => {
        this.#inFlight = null;
        this.#refusal = null;
        // A set was under way already (none can be: one at a time): ask again, before the wake below.
        if (result === null) for (const w of waiting) this.#requeue(partition, w);
        if (this.#requests.size > 0) this.#wake();
        if (result === undefined || result === null) return;
        this.#setsSinceCheckpoint.delete(partition);
        for (const w of waiting) w.resolve(result);
      },
      (error: unknown) => {
        this.#inFlight = null;
        // The log still holds every write.
        for (const w of waiting) w.reject(error);
        this.#failed(error);
        if (this.#requests.size > 0) this.#wake();
      },
    );
  }

  #requeue(partition: number, waiting: Waiting): void {
    const list = this.#requests.get(partition) ?? [];
    list.push(waiting);
    this.#requests.set(partition, list);
  }

  /**
   * Removes a few tombstones of each partition that has some left from an earlier run. A walk that
   * meets a page failing verification as it loads (a damaged page of a page file) ends for this run,
   * its tombstones left where they are (each read as an absent key): the walk reads before it
   * changes anything, and a merge with a damaged sibling is left undone (TreeReshape).
   */
  #sweep(): void {
    for (const [partition, from] of this.#sweeps) {
      const owned = this.#partitions.get(partition)!;
      // The walk reads every page: it ends as soon as the last tombstone is gone.
      let next: Uint8Array | null;
      try {
        next =
          owned.tree.tombstoneCount === 0 ? null : owned.versioned.sweepTombstones(from, sweepCellsPerStep);
      } catch (error) {
        if (!isLightningError(error, 'ERR_CORRUPTION')) throw error;
        console.error(
          `lightning-db owner: the tombstone sweep of partition ${partition} stopped: ${error.message}`,
        );
        next = null;
      }
      if (next === null) this.#sweeps.delete(partition);
      else if (Buffer.compare(next, from) === 0) this.wantRoom(partition);
      else this.#sweeps.set(partition, next);
    }
  }
}
