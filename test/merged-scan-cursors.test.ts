import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { BTree } from '../src/shared-memory/index.js';
import { encodeVersionValue, versionKey } from '../src/shared-memory/mvcc/version-key.js';
import { seekOlderVersion } from '../src/shared-memory/mvcc/version-seek.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

/**
 * Merged scans read each partition's head in place and copy only the rows they return, re-checking
 * every leaf they read: a leaf that changed sends its cursor back down the tree. Here scans at a
 * snapshot taken before a stream of writes run while the owners apply those writes (puts with values
 * large enough to split leaves, deletes that empty and merge them), forward and reverse, with and
 * without bounds and limits, many paused half-way while writes land; each must return exactly what
 * a model says the database held when the snapshot was taken. The older-version seek that cursors
 * and point reads share is checked against a model of a version store on its own.
 */

type Database = Awaited<ReturnType<typeof open>>;
type Model = Map<string, string>;
interface ScanOptions {
  gte?: string;
  gt?: string;
  lte?: string;
  lt?: string;
  reverse?: boolean;
  limit?: number;
}

const seed = seedFromEnv(0x5ca7_c0de);
console.log(`merged-scan-cursors seed ${seed} (LIGHTNING_SEED to replay)`);

const keySpace = 3000;
const rounds = 24;
const writesPerRound = 600;
const scansPerRound = 12;

let directory: string;
let db: Database;

beforeEach(async () => {
  directory = mkdtempSync(join(tmpdir(), 'ldb-merged-scan-'));
  db = await open(directory, { partitions: 4, workers: 2, durability: 'none' });
});

afterEach(async () => {
  await db.close();
  rmSync(directory, { recursive: true, force: true });
});

const keyOf = (i: number): string => `key:${i.toString().padStart(5, '0')}`;

/** What a scan with `options` must return from a database holding `model`. */
function expectedScan(model: Model, options: ScanOptions): [string, string][] {
  const rows = [...model.entries()]
    .filter(([key]) => {
      if (options.gte !== undefined && key < options.gte) return false;
      if (options.gt !== undefined && key <= options.gt) return false;
      if (options.lte !== undefined && key > options.lte) return false;
      if (options.lt !== undefined && key >= options.lt) return false;
      return true;
    })
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (options.reverse === true) rows.reverse();
  return options.limit === undefined ? rows : rows.slice(0, options.limit);
}

function randomScan(random: () => number): ScanOptions {
  const options: ScanOptions = {};
  const shape = random() % 4;
  const a = random() % keySpace;
  const b = a + (random() % 800);
  // Bounds fall on keys and between them (a trailing '!' sorts after the key, before the next).
  const bound = (i: number): string => (random() % 2 === 0 ? keyOf(i) : `${keyOf(i)}!`);
  if (shape === 1 || shape === 3) options[random() % 2 === 0 ? 'gte' : 'gt'] = bound(a);
  if (shape === 2 || shape === 3) options[random() % 2 === 0 ? 'lte' : 'lt'] = bound(b);
  if (random() % 2 === 0) options.reverse = true;
  if (random() % 3 !== 0) options.limit = random() % 3 === 0 ? random() % 5 : random() % 400;
  return options;
}

function randomValue(random: () => number, round: number, key: number): string {
  // 40 to 700 bytes: a 4 KiB leaf holds from a handful to about a hundred of them.
  return `v${round}:${key}:${'x'.repeat(40 + (random() % 660))}`;
}

describe('merged scans over per-partition cursors', () => {
  it('scans at a snapshot return exactly its state while owners split and merge the leaves under them', async () => {
    const random = mulberry32(seed);
    const model: Model = new Map();
    const load: Promise<void>[] = [];
    for (let i = 0; i < keySpace; i += 2) {
      const value = randomValue(random, 0, i);
      model.set(keyOf(i), value);
      load.push(db.put(keyOf(i), value));
    }
    await Promise.all(load);

    let scans = 0;
    let rowsChecked = 0;
    let pausedSteps = 0;
    let writes = 0;
    for (let round = 1; round <= rounds; round++) {
      const snapshot = db.snapshot();
      const atSnapshot: Model = new Map(model);
      // Alternate growth and shrinking, each over a region, so leaves split and then empty and merge.
      const growing = round % 2 === 1;
      const regionStart = random() % (keySpace / 2);
      const pending: Promise<void>[] = [];
      const writeSome = (count: number): void => {
        for (let n = 0; n < count && writes < round * writesPerRound; n++, writes++) {
          const i = (regionStart + (random() % (keySpace / 2))) % keySpace;
          if (growing || random() % 4 === 0) {
            const value = randomValue(random, round, i);
            model.set(keyOf(i), value);
            pending.push(db.put(keyOf(i), value));
          } else {
            model.delete(keyOf(i));
            pending.push(db.del(keyOf(i)));
          }
        }
      };
      for (let s = 0; s < scansPerRound; s++) {
        writeSome(writesPerRound / scansPerRound);
        const options = randomScan(random);
        const expected = expectedScan(atSnapshot, options);
        const iterator = snapshot.range(options);
        const seen: [string, string][] = [];
        // Half the scans pause every few rows until some writes have landed, so the leaves they
        // stand in change between reading a head and returning it.
        const pauseEvery = s % 2 === 0 ? 0 : 1 + (random() % 8);
        for (let step = 0; ; step++) {
          if (pauseEvery > 0 && step % pauseEvery === 0 && pending.length > 0) {
            writeSome(8);
            await pending[pending.length - 1];
            pausedSteps++;
          }
          const next = iterator.next();
          if (next.done === true) break;
          seen.push([next.value[0].toString(), next.value[1].toString()]);
        }
        expect(seen.length, `scan ${JSON.stringify(options)} in round ${round}`).toBe(expected.length);
        expect(seen, `scan ${JSON.stringify(options)} in round ${round}`).toEqual(expected);
        scans++;
        rowsChecked += seen.length;
      }
      await Promise.all(pending);
      snapshot.release();
      // A scan with a snapshot of its own, after the writes: the newest state.
      const options = randomScan(random);
      const own = [...db.range(options)].map(([k, v]): [string, string] => [k.toString(), v.toString()]);
      expect(own, `db.range ${JSON.stringify(options)} after round ${round}`).toEqual(
        expectedScan(model, options),
      );
      scans++;
      rowsChecked += own.length;
    }
    console.log(
      `${scans} scans, ${rowsChecked} rows checked, ${pausedSteps} pauses mid-scan, ${writes} writes over ${rounds} rounds`,
    );
    expect(db.stats().mvcc.openSnapshots).toBe(0);
  }, 240_000);
});

describe('older-version seek', () => {
  it('finds the newest version at or before a timestamp, also past a leaf whose separator outlived its last key', () => {
    const random = mulberry32(seed ^ 0x0bad_5eed);
    const tree = BTree.create({ pageSizeBytes: 4096 });
    const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`k${i.toString().padStart(3, '0')}`));
    /** The model: each key's version timestamps (descending) and values. */
    const versions = new Map<string, { timestamp: number; value: Buffer | null }[]>();
    for (const key of keys) {
      const list: { timestamp: number; value: Buffer | null }[] = [];
      let timestamp = 1 + (random() % 5);
      for (let v = 0; v < 4 + (random() % 12); v++) {
        // Values of 200 to 1,000 bytes: a 4 KiB leaf holds a few versions, so one key's run spans leaves.
        const value = random() % 6 === 0 ? null : Buffer.alloc(200 + (random() % 800), random() & 0xff);
        list.push({ timestamp, value });
        tree.put(versionKey(key, timestamp), encodeVersionValue(value, timestamp + 1));
        timestamp += 1 + (random() % 5);
      }
      versions.set(key.toString(), list.reverse());
    }
    // Deleting versions leaves separators above their leaves' new last keys: a seek can then land in
    // a leaf whose keys all sort before the target, and must go on from its fence.
    let deleted = 0;
    for (const key of keys) {
      const list = versions.get(key.toString())!;
      for (let i = list.length - 1; i >= 0; i--) {
        if (random() % 3 !== 0) continue;
        tree.delete(versionKey(key, list[i]!.timestamp));
        list.splice(i, 1);
        deleted++;
      }
    }
    let seeks = 0;
    for (const key of keys) {
      const list = versions.get(key.toString())!;
      const newest = list[0]?.timestamp ?? 0;
      for (let at = 0; at <= newest + 2; at++) {
        const expected = list.find((version) => version.timestamp <= at)?.value ?? null;
        const found = seekOlderVersion(tree.view, key, at);
        expect(found === null ? null : Buffer.from(found), `${key.toString()} at ${at}`).toEqual(expected);
        seeks++;
      }
    }
    // A key with no versions at all, sorting between stored ones and after every one.
    expect(seekOlderVersion(tree.view, Buffer.from('k005x'), 1_000)).toBeNull();
    expect(seekOlderVersion(tree.view, Buffer.from('z'), 1_000)).toBeNull();
    console.log(`${seeks} seeks over ${keys.length} keys, ${deleted} versions deleted`);
  });
});
