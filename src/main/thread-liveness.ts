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

interface Watcher {
  databaseControl: Int32Array;
  threadsMax: number;
  onOwnExit: (() => void) | null;
}

/**
 * The watches of every database open or attached on this thread. One 'worker' and one 'exit'
 * listener serve them all: a listener per database would add one 'exit' listener per database to
 * every worker started, and Node warns of a leak past ten.
 */
const watchers = new Set<Watcher>();

function onWorker(worker: Worker): void {
  // Read now: a worker that has exited reports threadId -1. The databases watching now are the ones
  // the worker could attach to.
  const workerThreadId = worker.threadId;
  const watching = [...watchers];
  worker.once('exit', () => {
    for (const watcher of watching)
      reportThreadExited(watcher.databaseControl, watcher.threadsMax, workerThreadId);
  });
}

function onExit(): void {
  for (const watcher of watchers) watcher.onOwnExit?.();
}

export function watchThreadLiveness(
  databaseControl: Int32Array,
  threadsMax: number,
  /** This thread's claim when it attached (the opener's own end takes the whole database with it). */
  ownClaim: ThreadSlotClaim | null,
  /** Runs first when this thread exits holding its slot: it must stop writing to its rings. */
  onOwnExit: () => void,
): LivenessWatch {
  const watcher: Watcher = {
    databaseControl,
    threadsMax,
    onOwnExit:
      ownClaim === null
        ? null
        : () => {
            onOwnExit();
            reportThreadDead(databaseControl, ownClaim);
          },
  };
  if (watchers.size === 0) {
    process.on('worker', onWorker);
    process.on('exit', onExit);
  }
  watchers.add(watcher);
  return {
    stop(): void {
      if (!watchers.delete(watcher) || watchers.size > 0) return;
      process.off('worker', onWorker);
      process.off('exit', onExit);
    },
  };
}
