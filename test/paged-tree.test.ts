/**
 * PagedTree on its own: a change that finds the pool full while a set is being written waits for
 * that set and writes its own; a change larger than the pool is ERR_PARTITION_FULL and leaves the tree
 * whole and writable, as does a change the tree has no page ids left for, neither writing a set that
 * could not make room; a page file holding pages with no completed set does not open.
 */
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { pageFileName } from '../src/storage/page-file/page-file-format.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';

const pageSize = 4096;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-tree-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function openTree(framesMax: number, pagesMax = 4096): Promise<PagedTree> {
  return PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax, framesMax });
}

const key = (i: number): Buffer => Buffer.from(`key${i.toString().padStart(5, '0')}`);
const value = (i: number): Buffer => Buffer.alloc(300, i & 0xff);

describe('PagedTree', () => {
  it('waits for a set under way before writing its own, when a change finds the pool full', async () => {
    const paged = await openTree(16);
    try {
      let redo = 0;
      let i = 0;
      // Fill the frames with changes until the next one is refused.
      for (;;) {
        try {
          paged.tree.put(key(i), value(i));
          i++;
        } catch (error) {
          expect((error as { code?: string }).code).toBe('ERR_PARTITION_FULL');
          break;
        }
      }
      const underWay = paged.writePages(++redo);
      // Refused again until the set under way ends (its pages are dirty until then).
      expect(await paged.writePages(++redo)).toBeNull();
      // Refused while the set under way holds its pages dirty: waits for it, then writes its own.
      await paged.withRoom(
        () => paged.tree.put(key(i), value(i)),
        () => ++redo,
      );
      expect(await underWay).not.toBeNull();
      expect(paged.setsWritten).toBe(2);
      for (let k = 0; k <= i; k++) expect(paged.tree.get(key(k))?.equals(value(k))).toBe(true);
      checkTree(paged.tree);
    } finally {
      paged.close();
    }
  });

  it('refuses a change larger than the pool, and stays whole and writable', async () => {
    const paged = await openTree(12);
    try {
      for (let i = 0; i < 20; i++)
        await paged.withRoom(
          () => paged.tree.put(key(i), value(i)),
          () => 1,
        );
      // A value of 10 pages, in 12 frames with 8 kept for pins and readers.
      const large = Buffer.alloc(10 * pageSize, 7);
      const setsBefore = paged.setsWritten;
      await expect(
        paged.withRoom(
          () => paged.tree.put(key(999), large),
          () => 2,
        ),
      ).rejects.toMatchObject({ code: 'ERR_PARTITION_FULL' });
      expect(paged.tree.get(key(999))).toBeUndefined();
      // No set can make room for it: none was written for it.
      expect(paged.setsWritten).toBe(setsBefore);
      await paged.withRoom(
        () => paged.tree.put(key(20), value(20)),
        () => 3,
      );
      for (let i = 0; i <= 20; i++) expect(paged.tree.get(key(i))?.equals(value(i))).toBe(true);
      checkTree(paged.tree);
    } finally {
      paged.close();
    }
  });

  it('fails a change at once, writing no set, when the tree has no page ids left', async () => {
    // 24 page ids, in 24 frames: sets make room for frames until the ids run out.
    const paged = await openTree(24, 24);
    try {
      let i = 0;
      let refused: unknown = null;
      let setsBeforeRefused = -1;
      for (; i < 1000 && refused === null; i++) {
        const setsBefore = paged.setsWritten;
        await paged
          .withRoom(
            () => paged.tree.put(key(i), value(i)),
            () => i + 1,
          )
          .catch((error: unknown) => {
            refused = error;
            setsBeforeRefused = setsBefore;
          });
      }
      expect(refused).toMatchObject({ code: 'ERR_PARTITION_FULL' });
      expect(String(refused)).not.toContain('buffer pool');
      expect(paged.setsWritten).toBe(setsBeforeRefused);
      for (let k = 0; k < i - 1; k++) expect(paged.tree.get(key(k))?.equals(value(k))).toBe(true);
      checkTree(paged.tree);
    } finally {
      paged.close();
    }
  });

  it('does not open a page file that holds pages but no completed set', async () => {
    await appendFile(join(dir, pageFileName), Buffer.alloc(pageSize * 3));
    await expect(openTree(16)).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
      message: expect.stringContaining('no page set was completed'),
    });
  });
});
