/**
 * The oldest open snapshot, as owners see it, comes from one word per thread that the thread itself
 * maintains (the minimum read timestamp of its open snapshots), not from a scan of every snapshot
 * slot. A seeded random walk of registrations, releases in any order, commits that advance the
 * oracle, and whole threads released at once (a thread closing, or reclaimed after it died) checks
 * after every step that each thread's word is the minimum of its open read timestamps (0 when none)
 * and that oldestSnapshot() is the minimum over all threads.
 *
 *   LIGHTNING_SEED=<n>   replay a seed (printed in the test name)
 */
import { describe, expect, it } from 'vitest';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x01de_5701);
const threads = 4;
const slotsPerThread = 32;
const steps = 20_000;

describe('per-thread oldest-snapshot words', () => {
  it(`track the minimum open read timestamp through ${steps} random steps (seed ${seed})`, () => {
    const random = mulberry32(seed);
    const mvcc = MvccState.create({ committers: 1, threads, slotsPerThread, transactionEntries: 16 });
    // Per thread: slot -> read timestamp of the snapshot registered there.
    const open = Array.from({ length: threads }, () => new Map<number, number>());
    const counts = { registered: 0, released: 0, commits: 0, threadsReleased: 0 };
    for (let step = 0; step < steps; step++) {
      const thread = random() % threads;
      const held = open[thread]!;
      const choice = random() % 100;
      if (choice < 10) {
        // A commit: the next registrations read at a later timestamp.
        mvcc.openWindow(0);
        mvcc.closeWindow(0);
        counts.commits++;
      } else if (choice < 12) {
        mvcc.releaseThreadSnapshots(thread);
        held.clear();
        counts.threadsReleased++;
      } else if (choice < 56 && held.size < slotsPerThread) {
        let slot = random() % slotsPerThread;
        while (held.has(slot)) slot = (slot + 1) % slotsPerThread;
        held.set(slot, mvcc.registerSnapshot(thread, slot));
        counts.registered++;
      } else if (held.size > 0) {
        const slots = [...held.keys()];
        const slot = slots[random() % slots.length]!;
        mvcc.releaseSnapshot(thread, slot);
        held.delete(slot);
        counts.released++;
      }
      let oldest = Number.POSITIVE_INFINITY;
      for (let t = 0; t < threads; t++) {
        const minimum = Math.min(...open[t]!.values());
        expect(mvcc.threadOldestSnapshot(t), `thread ${t} at step ${step}`).toBe(
          open[t]!.size === 0 ? 0 : minimum,
        );
        if (open[t]!.size > 0) oldest = Math.min(oldest, minimum);
      }
      expect(mvcc.oldestSnapshot(), `step ${step}`).toBe(oldest);
      expect(mvcc.openSnapshots()).toBe(open.reduce((sum, held) => sum + held.size, 0));
    }
    console.log(`mvcc-oldest-snapshot: seed ${seed}; ${JSON.stringify(counts)}`);
    expect(counts.registered).toBeGreaterThan(steps / 5);
    expect(counts.released).toBeGreaterThan(steps / 5);
  });
});
