/**
 * Staging counts a pass over a buffer pool with the pages its puts' descents touch when every put
 * fits the leaf its key goes into (PlacedPuts), and with the worst case (a split per level per put)
 * otherwise. Seeded passes of puts (small, large and overflowing values, new keys and overwrites) and
 * some deletes are staged with reserveForPass against a small pool kept nearly full of dirty pages,
 * applied as the owner applies them (frames covered), and checked: the pages the pass dirtied stay
 * within the bound it was staged under, the pool never runs out of frames while it applies, a pass
 * counted as placed splits no node, and a refused operation leaves the pass's count as it was.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { type PassReservation, PoolRoomError, reserveForPass } from '../src/workers/pass-reservation.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x91ace_d00);
const pageSize = 4096;
const framesMax = 96;
const rounds = 400;
let dir: string;
let paged: PagedTree;
const versions = BTree.create({ pageSizeBytes: pageSize, maxBytes: 1 << 22 });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-placed-puts-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
  paged = await PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax: 1 << 16, framesMax });
});

afterEach(async () => {
  paged.close();
  await rm(dir, { recursive: true, force: true });
});

it(`bounds each pass's dirtied pages, and a placed pass splits nothing (seed ${seed})`, async () => {
  console.log(`placed-puts-frames seed ${seed} (LIGHTNING_SEED to replay)`);
  const random = mulberry32(seed);
  const tree = paged.tree;
  const pool = paged.pool;
  let lsn = 1;
  let bigKeys = 0;
  const entryOf = (deletes: boolean): BatchEntry => {
    const roll = random() % 100;
    if (deletes && roll < 10) {
      return {
        kind: operationDel,
        key: Buffer.from(`k${(random() % 6000).toString().padStart(5, '0')}`),
        value: null,
      };
    }
    if (roll < 4) {
      // Overflowing values go to keys of their own, never overwritten: a pass frees no chain, so the
      // pages it allocates are its chains and its splits, and nothing else.
      return {
        kind: operationPut,
        key: Buffer.from(`z${(bigKeys++).toString().padStart(5, '0')}`),
        value: Buffer.alloc(3000 + (random() % 6000), 7),
      };
    }
    const bytes = roll < 20 ? 300 + (random() % 900) : 10 + (random() % 200);
    return {
      kind: operationPut,
      key: Buffer.from(`k${(random() % 6000).toString().padStart(5, '0')}`),
      value: Buffer.alloc(bytes, roll),
    };
  };
  const counts = { passes: 0, placed: 0, refusals: 0, sets: 0, worstCase: 0 };
  for (let round = 0; round < rounds; round++) {
    // Every fifth pass may delete: deletes may merge, so those passes are counted by the worst case.
    const deletes = round % 5 === 4;
    let staged: PassReservation | null = null;
    const applied: BatchEntry[][] = [];
    const operations = 1 + (random() % 8);
    for (let op = 0; op < operations; op++) {
      const entries = Array.from({ length: 1 + (random() % 4) }, () => entryOf(deletes));
      const before = staged === null ? 0 : tree.framesForWrites(staged.treeWrites);
      try {
        staged = reserveForPass(tree, versions, entries, staged, false);
        applied.push(entries);
      } catch (error) {
        if (!(error instanceof PoolRoomError)) throw error;
        counts.refusals++;
        // A refused operation takes nothing from the pass's count.
        expect(staged === null ? 0 : tree.framesForWrites(staged.treeWrites)).toBe(before);
        break;
      }
    }
    if (staged === null) {
      // Not even one operation had room: write the dirty pages back, as the owner would.
      await paged.writePages(lsn++);
      counts.sets++;
      continue;
    }
    const bound = tree.framesForWrites(staged.treeWrites);
    const placed = staged.treeWrites.placedPages() !== null;
    const dirtyBefore = pool.dirtyPageCount();
    const pagesBefore = tree.stats().pagesInUse;
    tree.coverFrames(true);
    try {
      for (const entries of applied) {
        tree.group(() => {
          for (const entry of entries) {
            if (entry.value === null) tree.deleteCell(entry.key);
            else tree.putCell(entry.key, entry.value, 0, 0);
          }
        });
      }
    } finally {
      tree.coverFrames(false);
    }
    counts.passes++;
    expect(pool.dirtyPageCount() - dirtyBefore, `round ${round}`).toBeLessThanOrEqual(bound);
    if (placed) {
      counts.placed++;
      expect(tree.stats().pagesInUse - pagesBefore, `round ${round}: placed, yet split`).toBe(
        staged.treeWrites.overflowPages,
      );
    } else counts.worstCase++;
  }
  checkTree(tree);
  console.log(`placed-puts-frames: ${JSON.stringify(counts)}`);
  // Not vacuous: passes of both kinds, refusals and page sets all happened.
  expect(counts.placed).toBeGreaterThan(rounds / 4);
  expect(counts.worstCase).toBeGreaterThan(rounds / 20);
  expect(counts.refusals).toBeGreaterThan(0);
  expect(counts.sets).toBeGreaterThan(0);
});
