import type { MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { PinningDecision, WorkerPlan } from '../numa/index.js';
import {
  type CommandRing,
  kWorkerState,
  type TreeHandle,
  workerStateCrashed,
  workerStateStopped,
} from '../shared-memory/index.js';
import type { MvccState } from '../shared-memory/mvcc/mvcc-state.js';
import { kRingCompletedSeq, kRingReadOffset } from '../shared-memory/ring/ring-layout.js';
import type { LogPosition } from '../storage/checkpoint/index.js';
import type { PartitionTreeHandle } from '../storage/page-file/paged-tree-handle.js';
import type { SkippedDamage, TornTail } from '../storage/wal/index.js';
import type { OwnerApi, WorkerPlacement } from '../workers/owner-protocol.js';
import type { CheckpointResult } from '../workers/partition-checkpoint.js';
import type { PartitionRecovery } from '../workers/partition-recovery.js';
import type { ResolvedOptions } from './open-options.js';
import { startOwnerWorker } from './owner-worker-start.js';
import { reviveLightningError } from './revive-error.js';

interface OwnerWorker {
  thread: Worker;
  api: Comlink.Remote<OwnerApi>;
  control: Int32Array;
  rings: CommandRing[];
  /** Rejects once the thread has exited, whenever that was (before start() too). */
  exited: Promise<never>;
}

/**
 * The partition-owner workers of a database opened by this thread: starts them, notices when one dies,
 * and stops them. A dead owner is marked crashed in its control block and every ring it served is
 * woken, so writers on every thread fail their pending writes instead of waiting forever.
 */
export class WorkerPool {
  readonly #workers: OwnerWorker[];
  readonly #mvcc: MvccState;
  readonly #plan: WorkerPlan;
  #stopping = false;

  private constructor(workers: OwnerWorker[], mvcc: MvccState, plan: WorkerPlan) {
    this.#workers = workers;
    this.#mvcc = mvcc;
    this.#plan = plan;
  }

  /**
   * Starts one thread per planned worker, which loads its modules while the caller goes on with its
   * own work (reading the directory, creating files); `start()` then hands each its partitions. The
   * threads run in parallel: none waits for another to load. `typeScriptModules`: the threads will
   * import a TypeScript module of the caller's (see startOwnerWorker).
   */
  static spawn(
    plan: WorkerPlan,
    rings: CommandRing[][],
    controls: Int32Array[],
    mvcc: MvccState,
    typeScriptModules = false,
  ): WorkerPool {
    const workers: OwnerWorker[] = plan.workers.map((planned) => {
      const thread = startOwnerWorker(typeScriptModules);
      return {
        thread,
        api: Comlink.wrap<OwnerApi>(nodeEndpoint(thread)),
        control: controls[planned.index]!,
        rings: rings[planned.index]!,
        exited: exitOf(thread),
      };
    });
    const pool = new WorkerPool(workers, mvcc, plan);
    for (const [index, worker] of workers.entries()) pool.#watch(worker, index);
    return pool;
  }

  /**
   * Gives every spawned worker its partitions to recover; resolves with the tree handle of every
   * partition and where each worker was placed. On failure every worker is stopped.
   */
  async start(
    path: string,
    partitions: number,
    options: ResolvedOptions,
    poolFrames: number | null,
    pinning: PinningDecision,
    committedTransactions: number[],
    walEpoch: number,
    logCoverage: (LogPosition | null)[],
  ): Promise<{
    trees: PartitionTreeHandle[];
    versionTrees: TreeHandle[];
    recoveries: PartitionRecovery[];
    tornTails: TornTail[];
    skippedDamage: SkippedDamage[];
    placements: WorkerPlacement[];
  }> {
    const plan = this.#plan;
    const workers = this.#workers;
    const trees: PartitionTreeHandle[] = new Array(partitions);
    const versionTrees: TreeHandle[] = new Array(partitions);
    const recoveries: PartitionRecovery[] = new Array(partitions);
    const tornTails: TornTail[] = [];
    const skippedDamage: SkippedDamage[] = [];
    const placements: WorkerPlacement[] = new Array(plan.workers.length);
    try {
      await Promise.all(
        plan.workers.map(async (planned) => {
          const worker = workers[planned.index]!;
          const started = await Promise.race([
            worker.api.start({
              workerIndex: planned.index,
              path,
              // A replicated database syncs its log as 'sync' does; the stream is the leader's business.
              durability: options.durability === 'replicated' ? 'sync' : options.durability,
              partitionCount: partitions,
              checkpointWalBytes: options.checkpointWalBytes,
              syncIntervalMs: options.syncIntervalMs,
              partitions: planned.partitions,
              pageSizeBytes: options.pageSizeBytes,
              partitionBytesMax: options.partitionBytesMax,
              poolFrames,
              rings: worker.rings.map((ring) => ring.sab),
              control: worker.control.buffer as SharedArrayBuffer,
              failpoints: options.failpoints,
              fileLayer: options.fileLayer,
              placement: { node: planned.node, cpus: planned.cpus, pinning },
              mvcc: this.#mvcc.sab,
              committedTransactions,
              walEpoch,
              logCoverage,
              readOnly: options.readOnly,
            }),
            this.#exited(worker),
          ]);
          placements[planned.index] = started.placement;
          tornTails.push(...started.tornTails);
          skippedDamage.push(...started.skippedDamage);
          planned.partitions.forEach((partition, i) => {
            trees[partition] = started.trees[i]!;
            versionTrees[partition] = started.versionTrees[i]!;
            recoveries[partition] = started.recoveries[i]!;
          });
        }),
      );
    } catch (error) {
      await this.stop();
      throw error;
    }
    // An open database must not keep the process alive by itself; writes in flight do (KeepAlive).
    for (const worker of workers) worker.thread.unref();
    return { trees, versionTrees, recoveries, tornTails, skippedDamage, placements };
  }

  /** Checkpoints every partition, each worker its own, in parallel. */
  async checkpoint(): Promise<CheckpointResult[]> {
    // The workers are unref'd; a pending control call must keep the process alive until it settles.
    for (const worker of this.#workers) worker.thread.ref();
    try {
      // Every worker settles before checkpoint() does, even when one fails early: a caller that sees
      // the rejection must not find another worker's checkpoint still being written (its .tmp file).
      const settled = await Promise.allSettled(
        this.#workers.map((worker) => Promise.race([worker.api.checkpoint(), this.#exited(worker)])),
      );
      const perWorker: CheckpointResult[][] = [];
      for (const outcome of settled) {
        if (outcome.status === 'rejected') throw outcome.reason;
        perWorker.push(outcome.value);
      }
      return perWorker.flat().sort((a, b) => a.partition - b.partition);
    } catch (error) {
      // A worker's LightningError (ERR_DISK_FULL, say) arrives as a plain Error: give it its type back.
      throw reviveLightningError(error) ?? error;
    } finally {
      if (!this.#stopping) for (const worker of this.#workers) worker.thread.unref();
    }
  }

  /**
   * Once every worker started (so read the earlier runs' logs): each may now remove their segments
   * at its checkpoints. Until then one that recovered first would remove a segment another was still
   * to read.
   */
  async earlierLogsRead(): Promise<void> {
    // Referenced while asked, as for `becomeWritable`: an open awaiting only this keeps the process up.
    for (const worker of this.#workers) worker.thread.ref();
    try {
      await Promise.all(
        this.#workers.map((worker) => Promise.race([worker.api.earlierLogsRead(), this.#exited(worker)])),
      );
    } catch (error) {
      throw reviveLightningError(error) ?? error;
    } finally {
      if (!this.#stopping) for (const worker of this.#workers) worker.thread.unref();
    }
  }

  /**
   * After a read-only start: every worker starts writing, its new log in `walEpoch` (a worker that
   * writes already does nothing). Rejects with the first failure once every worker has settled; the
   * workers that failed can be asked again.
   */
  async becomeWritable(walEpoch: number): Promise<void> {
    for (const worker of this.#workers) worker.thread.ref();
    try {
      const settled = await Promise.allSettled(
        this.#workers.map((worker) =>
          Promise.race([worker.api.becomeWritable(walEpoch), this.#exited(worker)]),
        ),
      );
      for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
    } catch (error) {
      throw reviveLightningError(error) ?? error;
    } finally {
      if (!this.#stopping) for (const worker of this.#workers) worker.thread.unref();
    }
  }

  /**
   * Replication: each worker ships its passes' records to its port before writing them (see
   * workers/log-shipper.ts), or, with `null`, stops shipping. Ports are transferred. A write whose
   * log record would be larger than `recordBytesMax` is refused alone.
   */
  async replicate(ports: (MessagePort | null)[] | null, recordBytesMax?: number): Promise<void> {
    await Promise.all(
      this.#workers.map((worker, i) => {
        const port = ports?.[i] ?? null;
        const call =
          port === null
            ? worker.api.replicate(null)
            : worker.api.replicate(Comlink.transfer(port, [port]), recordBytesMax);
        return Promise.race([call, this.#exited(worker)]);
      }),
    );
  }

  /** Lets every worker apply what it was sent, then ends the threads. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#workers.map(async (worker) => {
        worker.thread.ref();
        if (Atomics.load(worker.control, kWorkerState) !== workerStateCrashed) {
          try {
            await Promise.race([worker.api.shutdown(), this.#exited(worker)]);
          } catch {
            // A worker that died meanwhile has nothing left to apply.
          }
        }
        Atomics.store(worker.control, kWorkerState, workerStateStopped);
        wakeRings(worker.rings);
        worker.api[Comlink.releaseProxy]();
        await worker.thread.terminate();
      }),
    );
  }

  #watch(worker: OwnerWorker, index: number): void {
    const crashed = (reason: string): void => {
      if (this.#stopping) return;
      if (Atomics.load(worker.control, kWorkerState) === workerStateCrashed) return;
      Atomics.store(worker.control, kWorkerState, workerStateCrashed);
      // A commit window it left open would make every new snapshot wait for it.
      this.#mvcc.closeWindow(index);
      wakeRings(worker.rings);
      console.error(
        `lightning-db: partition-owner worker ${index} died (${reason}); its partitions refuse writes`,
      );
    };
    worker.thread.on('error', (error) => crashed(String(error)));
    worker.thread.on('exit', (code) => crashed(`exit code ${code}`));
  }

  /** Rejects when the worker thread exits: a pending control call would otherwise never settle. */
  #exited(worker: OwnerWorker): Promise<never> {
    return worker.exited;
  }
}

/**
 * A promise that rejects when `thread` exits, made as the thread is created so an exit before anyone
 * waits is still seen. Used only inside Promise.race: an exit no race waits for must not be unhandled.
 */
function exitOf(thread: Worker): Promise<never> {
  const exited = new Promise<never>((_, reject) => {
    thread.once('exit', (code) => reject(new Error(`owner worker exited with code ${code}`)));
  });
  exited.catch(() => {});
  return exited;
}

/** Wakes every thread waiting on these rings, so it re-reads the worker's state. */
function wakeRings(rings: CommandRing[]): void {
  for (const ring of rings) {
    Atomics.notify(ring.i32, kRingCompletedSeq);
    Atomics.notify(ring.i32, kRingReadOffset);
  }
}
