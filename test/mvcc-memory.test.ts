/**
 * Version cleanup keeps memory flat: the same 100 keys are overwritten without end (puts and
 * cross-partition batches) for a bounded time while snapshots open and close all along, each living
 * tens of milliseconds, so every overwrite replaces a version some open snapshot can see. The
 * partitions' page counts must stop growing after a warm-up (a leaked version store grows them
 * steadily), every snapshot must keep reading the values of its moment, and once every snapshot is
 * released stats().mvcc.versionsRetained must return to zero.
 *
 *   LIGHTNING_SEED=<n>         replay a seed (printed in the test name)
 *   LIGHTNING_MVCC_MS=<ms>     how long the overwrites run (default 5,000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { within } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
type Snapshot = ReturnType<Database['snapshot']>;

const seed = seedFromEnv(0x3e3_0001);
const durationMs = positiveFromEnv('LIGHTNING_MVCC_MS', 5000);
const keyCount = 100;
const valueBytes = 200;
const partitions = 4;
/** How often every snapshot is released and the retained versions must all be cleaned up. */
const quietEveryMs = 1000;

function positiveFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 500)
    throw new Error(`${name} must be an integer >= 500, got ${raw}`);
  return value;
}

const keyName = (i: number): string => `mem:${i.toString().padStart(3, '0')}`;
/** The value of key `i` after round `round`: the snapshot check knows what each round wrote. */
const valueAt = (round: number, i: number): string => `${round}:${i}:`.padEnd(valueBytes, 'v');

let db: Database;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ldb-mvcc-memory-'));
  db = await open(dir, { partitions, workers: 2, durability: 'none' });
});

afterAll(async () => {
  await within(db.close(), 10_000, 'db.close()');
  rmSync(dir, { recursive: true, force: true });
});

interface Sample {
  atMs: number;
  /** Pages of the partitions' trees and of their version stores. */
  pagesAllocated: number;
  pagesInUse: number;
  versionPagesInUse: number;
  versionsRetained: number;
  openSnapshots: number;
}

function sample(startedMs: number): Sample {
  const stats = db.stats();
  // The version stores are trees in arenas of their own, reported apart from the partitions' trees.
  const versions = stats.versionStoreStats;
  const all = [...stats.partitionStats, ...versions];
  return {
    atMs: performance.now() - startedMs,
    pagesAllocated: all.reduce((sum, p) => sum + p.pagesAllocated, 0),
    pagesInUse: all.reduce((sum, p) => sum + p.pagesInUse, 0),
    versionPagesInUse: versions.reduce((sum, p) => sum + p.pagesInUse, 0),
    versionsRetained: stats.mvcc.versionsRetained,
    openSnapshots: stats.mvcc.openSnapshots,
  };
}

const maxOf = (
  samples: Sample[],
  field: 'pagesAllocated' | 'pagesInUse' | 'versionPagesInUse' | 'versionsRetained',
): number => Math.max(...samples.map((s) => s[field]));

describe(`version cleanup under endless overwrites (seed ${seed})`, () => {
  it(`page counts stop growing over ${durationMs} ms and versions are reclaimed after release`, {
    timeout: durationMs + 40_000,
  }, async () => {
    const random = mulberry32(seed);
    let round = 0;
    const overwriteAll = async (): Promise<void> => {
      round++;
      if (round % 4 === 0) {
        // A cross-partition batch rewrites a quarter of the keys, puts the rest.
        const batched = Array.from({ length: keyCount / 4 }, (_, n) => n * 4);
        const pending = [
          db.batch(batched.map((i) => ({ type: 'put' as const, key: keyName(i), value: valueAt(round, i) }))),
        ];
        for (let i = 0; i < keyCount; i++)
          if (i % 4 !== 0) pending.push(db.put(keyName(i), valueAt(round, i)));
        await Promise.all(pending);
      } else {
        await Promise.all(Array.from({ length: keyCount }, (_, i) => db.put(keyName(i), valueAt(round, i))));
      }
    };
    await overwriteAll();

    const live: Array<{ snapshot: Snapshot; round: number; closeAtMs: number }> = [];
    const problems: string[] = [];
    const samples: Sample[] = [];
    /** Samples taken at quiet points: every snapshot released and the versions cleaned up. */
    const quiet: Sample[] = [];
    let snapshotsTaken = 0;
    let snapshotReads = 0;
    const started = performance.now();
    let nextSampleMs = 0;
    let nextSnapshotMs = 0;
    let nextQuietMs = quietEveryMs;

    /** Reads a few keys at every open snapshot: each must still show its round's values. */
    const checkSnapshots = (): void => {
      for (const entry of live) {
        for (let n = 0; n < 3; n++) {
          const i = random() % keyCount;
          const seen = entry.snapshot.getString(keyName(i));
          snapshotReads++;
          if (seen !== valueAt(entry.round, i) && problems.length < 10) {
            problems.push(
              `a snapshot of round ${entry.round} (now ${round}) reads ${keyName(i)} = ${seen?.slice(0, 20)}`,
            );
          }
        }
      }
    };

    /** Releases every snapshot, then overwrites until cleanup has taken every retained version. */
    const quietPoint = async (): Promise<Sample> => {
      for (const entry of live.splice(0)) entry.snapshot.release();
      let now = sample(started);
      for (let waited = 0; now.versionsRetained > 0 && waited < 3000; waited += 20) {
        // The owner cleans up as it writes: keep it writing (no snapshot is open, nothing is kept).
        await overwriteAll();
        await sleep(20);
        now = sample(started);
      }
      return now;
    };

    while (performance.now() - started < durationMs) {
      let nowMs = performance.now() - started;
      if (nowMs >= nextQuietMs) {
        quiet.push(await quietPoint());
        nowMs = performance.now() - started;
        nextQuietMs = nowMs + quietEveryMs;
      }
      // A snapshot opens every 15 ms and lives 20-100 ms: a few are open at any time.
      for (let i = live.length - 1; i >= 0; i--) {
        if (live[i]!.closeAtMs <= nowMs) live.splice(i, 1)[0]!.snapshot.release();
      }
      if (nowMs >= nextSnapshotMs) {
        live.push({ snapshot: db.snapshot(), round, closeAtMs: nowMs + 20 + (random() % 81) });
        snapshotsTaken++;
        nextSnapshotMs = nowMs + 15;
      }
      await overwriteAll();
      checkSnapshots();
      if (nowMs >= nextSampleMs) {
        samples.push(sample(started));
        nextSampleMs = nowMs + 50;
      }
    }
    quiet.push(await quietPoint());

    const half = samples.findIndex((s) => s.atMs >= durationMs / 2);
    const first = samples.slice(0, half);
    const second = samples.slice(half);
    const line = (s: Sample): string =>
      `${s.atMs.toFixed(0)} ms: ${s.pagesAllocated} pages allocated, ${s.pagesInUse} in use (${s.versionPagesInUse} by versions), ${s.versionsRetained} versions, ${s.openSnapshots} snapshots`;
    console.log(
      `mvcc-memory: seed ${seed}: ${round} rounds (${round * keyCount} overwrites), ${snapshotsTaken} snapshots, ` +
        `${snapshotReads} snapshot reads; peaks first half / second half: ${maxOf(first, 'pagesInUse')} / ${maxOf(second, 'pagesInUse')} pages in use, ` +
        `${maxOf(first, 'versionsRetained')} / ${maxOf(second, 'versionsRetained')} versions; at the quiet points:\n  ` +
        quiet.map(line).join('\n  '),
    );

    expect(problems).toEqual([]);
    // Enough work that a leak of even a few bytes per overwrite would show in whole pages.
    expect(round * keyCount).toBeGreaterThan(50 * keyCount);
    expect(snapshotsTaken).toBeGreaterThan(20);
    // While snapshots were open, overwrites had to keep versions: the version store was exercised.
    expect(maxOf(samples, 'versionsRetained')).toBeGreaterThan(0);
    expect(maxOf(samples, 'versionPagesInUse')).toBeGreaterThan(0);

    // At every quiet point all versions are gone and the pages in use are back where the first quiet
    // point left them: nothing accumulates from one second to the next.
    expect(quiet.length).toBeGreaterThanOrEqual(3);
    for (const point of quiet) {
      expect(point.openSnapshots, line(point)).toBe(0);
      expect(point.versionsRetained, line(point)).toBe(0);
      expect(point.pagesInUse, `${line(point)} vs ${line(quiet[0]!)}`).toBeLessThanOrEqual(
        quiet[0]!.pagesInUse + 2 * partitions,
      );
    }
    // And the arenas stop growing: the high-water mark of the second half stays within the first
    // half's plus a margin for a busier moment (how many versions the open snapshots hold varies).
    const peakFirst = maxOf(first, 'pagesAllocated');
    expect(
      maxOf(second, 'pagesAllocated'),
      `pages allocated, first half peak ${peakFirst}`,
    ).toBeLessThanOrEqual(Math.ceil(peakFirst * 1.5) + 16 * partitions);
    for (let i = 0; i < keyCount; i++) expect(db.getString(keyName(i))).toBe(valueAt(round, i));
  });
});
