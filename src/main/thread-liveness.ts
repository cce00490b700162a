import type { Worker } from 'node:worker_threads';
import { reportThreadDead, reportThreadExited, type ThreadSlotClaim } from './thread-slots.js';

/**
 * How a thread's death reaches the database, without heartbeats (a thread whose event loop is merely
 * busy is never declared dead):
 *
 * - A thread holding a slot reports its own end from `process.on('exit')`, which Node runs when the
 *   thread calls process.exit(), throws an uncaught exception, or its event loop empties.
 * - Every thread with a database open or attached watches the workers it starts (`process.on('worker')`)
 *   and reports a worker's slots when the worker's 'exit' event fires: that also covers
 *   `worker.terminate()`, under which the worker runs no more JavaScript of its own.
 *
 * Either report marks the slot dead in the database control block; the opener's ThreadReclaimer does
 * the rest. Listeners hold no handle, so they keep no process alive.
 */
export interface LivenessWatch {
  /** Stops watching (the database is closing). */
  stop(): void;
}

export function watchThreadLiveness(
  databaseControl: Int32Array,
  threadsMax: number,
  /** This thread's claim when it attached (the opener's own end takes the whole database with it). */
  ownClaim: ThreadSlotClaim | null,
  /** Runs first when this thread exits holding its slot: it must stop writing to its rings. */
  onOwnExit: () => void,
): LivenessWatch {
  const onWorker = (worker: Worker): void => {
    // Read now: a worker that has exited reports threadId -1.
    const workerThreadId = worker.threadId;
    worker.once('exit', () => reportThreadExited(databaseControl, threadsMax, workerThreadId));
  };
  const onExit = (): void => {
    if (ownClaim === null) return;
    onOwnExit();
    reportThreadDead(databaseControl, ownClaim);
  };
  process.on('worker', onWorker);
  process.on('exit', onExit);
  return {
    stop(): void {
      process.off('worker', onWorker);
      process.off('exit', onExit);
    },
  };
}
