import { existsSync, readlinkSync } from 'node:fs';

/**
 * The operating system's id of the calling thread, and whether a thread with such an id has ended:
 * what lets a thread waiting on a buffer-pool latch see for itself that the holder is gone.
 *
 * A thread ended by `worker.terminate()` runs no JavaScript of its own again, and its death reaches
 * the database only through the 'exit' event on the thread that started it. When that thread is the
 * one waiting on the dead thread's latch, synchronously, the event cannot fire until the wait gives
 * up. The kernel, though, drops a thread from /proc/self/task as soon as it has exited (within a few
 * milliseconds of terminate(), while the waiter is still blocked).
 *
 * Linux only: elsewhere the id is 0, "unknown", and a waiter falls back to the thread reclaimer.
 */

let own: number | undefined;

/** This thread's id (its `tid`), or 0 where /proc/thread-self does not exist. Read once per thread. */
export function ownOsThreadId(): number {
  if (own === undefined) {
    try {
      // "<pid>/task/<tid>"
      const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
      own = Number.isInteger(tid) && tid > 0 ? tid : 0;
    } catch {
      own = 0;
    }
  }
  return own;
}

/**
 * True only if the thread `tid` of this process has surely ended. Ids are handed out in turn up to
 * the system's pid_max before one is used again, so the id of a thread that ended milliseconds ago
 * names no other thread yet; and a reused id reads as alive, which only costs the waiter its wait.
 */
export function osThreadEnded(tid: number): boolean {
  if (tid <= 0 || ownOsThreadId() === 0) return false;
  return !existsSync(`/proc/self/task/${tid}`);
}
