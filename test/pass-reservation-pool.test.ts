/**
 * Staging's room check for a tree over a buffer pool (reserveForPass): a pass's changes must fit in
 * the frames the pool's dirty pages leave. With dirty pages, the refusal says a page set brings the
 * room back (the write can wait for the next pass); with none, that the pool is too small for it. A
 * tree in an arena is never refused for frames.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BatchEntry, operationPut } from '../src/shared-memory/ring/operation-codec.js';
import { BTree } from '../src/shared-memory/tree/btree.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { PoolRoomError, reserveForPass } from '../src/workers/pass-reservation.js';

const pageSize = 4096;
let dir: string;
let paged: PagedTree;
const versions = BTree.create({ pageSizeBytes: pageSize, maxBytes: 1 << 22 });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-pass-pool-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
  paged = await PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax: 4096, framesMax: 32 });
});

afterEach(async () => {
  paged.close();
  await rm(dir, { recursive: true, force: true });
});

const put = (i: number, bytes = 200): BatchEntry => ({
  kind: operationPut,
  key: Buffer.from(`key${i.toString().padStart(5, '0')}`),
  value: Buffer.alloc(bytes, i & 0xff),
});

function refusal(entries: BatchEntry[], tree: BTree = paged.tree): PoolRoomError | null {
  try {
    reserveForPass(tree, versions, entries, null, false);
    return null;
  } catch (error) {
    if (error instanceof PoolRoomError) return error;
    throw error;
  }
}

describe('staging over a buffer pool', () => {
  it('refuses a pass the dirty pages leave no room for, until a page set writes them', async () => {
    expect(refusal([put(0)])).toBeNull();
    // Dirty pages until the pool takes no more changes.
    let i = 0;
    while (paged.tree.framesAvailable() > 2) paged.tree.put(put(i).key, put(i++).value!);
    const refused = refusal([put(i, 9000)]);
    expect(refused?.needsPageSet).toBe(true);
    expect(refused?.code).toBe('ERR_PARTITION_FULL');
    expect(refused?.detail.availablePages).toBe(paged.tree.framesAvailable());
    await paged.writePages(1);
    expect(refusal([put(i, 9000)])).toBeNull();
  });

  it('says a pass larger than the whole pool needs a larger pool', () => {
    const large = Array.from({ length: 20 }, (_, i) => put(i, 9000));
    const refused = refusal(large);
    expect(refused?.needsPageSet).toBe(false);
    expect(refused?.message).toContain('larger pool');
  });

  it('never refuses a tree in an arena for frames', () => {
    const arenaTree = BTree.create({ pageSizeBytes: pageSize, maxBytes: 1 << 24 });
    expect(arenaTree.framesAvailable()).toBe(Number.MAX_SAFE_INTEGER);
    expect(
      refusal(
        Array.from({ length: 20 }, (_, i) => put(i, 9000)),
        arenaTree,
      ),
    ).toBeNull();
  });
});
