import { performance } from 'node:perf_hooks';

/**
 * Where open() spends its time, for the open-time benchmark (bench/open-time.ts). Nothing is measured
 * unless an observer is installed; with one, open() reports each phase as it ends, in order.
 */
export type OpenPhase =
  | 'directory-and-lock'
  | 'file-checks'
  | 'workers-spawned'
  | 'logs-and-router'
  | 'workers-started'
  | 'settled';

export type OpenPhaseObserver = (phase: OpenPhase, elapsedMs: number) => void;

let observer: OpenPhaseObserver | null = null;

/** Installs (or, with null, removes) the observer that every later open() reports its phases to. */
export function observeOpenPhases(next: OpenPhaseObserver | null): void {
  observer = next;
}

/** A clock for one open(): each call reports the time since the previous call (or since creation). */
export function openPhaseClock(): (phase: OpenPhase) => void {
  const watching = observer;
  if (watching === null) return () => {};
  let last = performance.now();
  return (phase) => {
    const now = performance.now();
    watching(phase, now - last);
    last = now;
  };
}
