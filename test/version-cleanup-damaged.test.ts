/**
 * Version cleanup over a buffer pool whose page file has a damaged leaf: the removals that meet it
 * (their descent loads it, and it fails verification) are skipped, their tombstones left in place,
 * and every other removal goes on; the tree still takes writes. Cleanup runs after the writes it
 * cleans up after were logged and applied, so a damaged page there must not stop the owner.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { isLightningError } from '../src/index.js';
import { MvccState } from '../src/shared-memory/mvcc/mvcc-state.js';
import { readLatest } from '../src/shared-memory/mvcc/versioned-reader.js';
import { type BatchEntry, operationDel, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { VersionedPartition } from '../src/workers/versioned-partition.js';
import { damagePage } from './fixtures/page-file-damage.js';

const sizes = { committers: 2, threads: 1, slotsPerThread: 2, transactionEntries: 4 };
const keyCount = 3000;
const key = (i: number): Buffer => Buffer.from(`key${String(i).padStart(5, '0')}`);
const value = (i: number): Buffer => Buffer.alloc(40 + (i % 200), i);
/** The keys deleted under a snapshot: their tombstones and versions queue for cleanup. */
const deletedFrom = 100;
const deletedTo = 200;

let dir = '';
afterEach(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  dir = '';
});

/** Applies `entries` in a commit window, after a page set: the pool holds fewer pages than the tree. */
async function write(
  paged: PagedTree,
  partition: VersionedPartition,
  mvcc: MvccState,
  entries: BatchEntry[],
) {
  await paged.writePages(1, mvcc.now());
  const timestamp = mvcc.openWindow(0);
  partition.applyWrites(() => entries, { timestamp, keepVersions: mvcc.oldestSnapshot() < timestamp });
  mvcc.closeWindow(0);
}

/** The code `read` fails with, or 'ok'. */
function outcome(read: () => unknown): string {
  try {
    read();
    return 'ok';
  } catch (error) {
    if (isLightningError(error)) return error.code;
    throw error;
  }
}

it('skips the removals whose descent meets a damaged leaf, and makes every other one', async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-cleanup-damaged-'));
  await createPageFile(dir, { pageSizeBytes: 4096, partition: 0 });
  const paged = await PagedTree.open({
    dir,
    partition: 0,
    pageSizeBytes: 4096,
    pagesMax: 2048,
    framesMax: 64,
  });
  try {
    const tree = paged.tree;
    const mvcc = MvccState.create(sizes);
    const partition = new VersionedPartition(tree, BTree.create(), mvcc);
    for (let first = 0; first < keyCount; first += 10) {
      const batch: BatchEntry[] = [];
      for (let k = first; k < first + 10; k++)
        batch.push({ kind: operationPut, key: key(k), value: value(k) });
      await write(paged, partition, mvcc, batch);
    }
    mvcc.registerSnapshot(0, 0);
    for (let k = deletedFrom; k < deletedTo; k++)
      await write(paged, partition, mvcc, [{ kind: operationDel, key: key(k), value: null }]);
    mvcc.releaseSnapshot(0, 0);
    expect(tree.tombstoneCount).toBe(deletedTo - deletedFrom);
    // Every page clean in the file; then the leaf of a deleted key is damaged there, and evicted.
    await paged.writePages(1, mvcc.now());
    const middle = (deletedFrom + deletedTo) >> 1;
    const leafOf = (k: number): number => {
      tree.readCellPrefix(key(k), 0);
      return tree.cellPath[tree.cellPathLength - 1]!;
    };
    const leaf = leafOf(middle);
    // The tombstones the damaged leaf holds: cleanup cannot reach them.
    let inLeaf = 0;
    for (let k = deletedFrom; k < deletedTo; k++) if (leafOf(k) === leaf) inLeaf++;
    damagePage(join(dir, pageFileName), 4096, leaf);
    paged.pool.evict(paged.pool.framesMax);
    expect(
      outcome(() => tree.readCellPrefix(key(middle), 0)),
      'the damaged leaf',
    ).toBe('ERR_CORRUPTION');

    expect(partition.collectGarbage(mvcc.oldestSnapshot())).toBe(true);
    console.log(`version-cleanup-damaged: leaf ${leaf} damaged; ${inLeaf} of its tombstones stay`);
    expect(inLeaf).toBeGreaterThan(0);
    expect(inLeaf).toBeLessThan(deletedTo - deletedFrom);
    expect(tree.tombstoneCount, 'the tombstones in the damaged leaf').toBe(inLeaf);
    expect(partition.hasGarbage, 'nothing left queued').toBe(false);

    // The tree still takes writes, and reads every key out of the damaged leaf as before.
    await write(paged, partition, mvcc, [
      { kind: operationPut, key: key(5), value: Buffer.from('after cleanup') },
    ]);
    expect(partition.reader.get(key(5), readLatest)?.toString()).toBe('after cleanup');
    for (let k = deletedTo; k < keyCount; k++)
      expect(partition.reader.get(key(k), readLatest)?.equals(value(k)), `key ${k}`).toBe(true);
  } finally {
    paged.close();
  }
});
