/**
 * A page set that fails while its pages are written in place (the disk fills as the file grows)
 * leaves the page file holding part of it, and its double-write file as the only whole copy. The
 * next set must put that copy back in place before it overwrites the double-write file with its
 * own: if that set fails too (its double-write file refused), the page file must still be whole,
 * as of the first failed set, and the tree must hold every key that set held.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { installFileLayer, type LayerFileHandle, nodeFileLayer } from '../src/storage/file-layer.js';
import { doubleWriteFileName, pageFileName } from '../src/storage/page-file/page-file-format.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';

const pageSize = 4096;
const keys = 4000;
const key = (i: number): Buffer => Buffer.from(`key${i.toString().padStart(6, '0')}`);
const value = (i: number): Buffer => Buffer.alloc(100, i & 0xff);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-set-after-failure-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
});

afterEach(async () => {
  installFileLayer(nodeFileLayer);
  await rm(dir, { recursive: true, force: true });
});

const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });

/** 'extend': writes past `fileBytes` of the page file are short, then ENOSPC; 'dwb': the double-write file's are refused. */
function fullDisk(mode: { now: 'extend' | 'dwb' }, fileBytes: number): void {
  installFileLayer({
    ...nodeFileLayer,
    async open(path, flags) {
      const real = await nodeFileLayer.open(path, flags);
      const pages = path.endsWith(pageFileName);
      const doubleWrite = path.endsWith(doubleWriteFileName);
      const handle: LayerFileHandle = {
        async write(buffer, offset = 0, length = buffer.length - offset, position = null) {
          if (mode.now === 'extend' && pages && (position ?? 0) + length > fileBytes) throw enospc();
          if (mode.now === 'dwb' && doubleWrite) throw enospc();
          return real.write(buffer, offset, length, position);
        },
        async writev(buffers, position = 0) {
          const bytes = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
          if (mode.now === 'extend' && pages && position + bytes > fileBytes) {
            if (position >= fileBytes) throw enospc();
            const all = Buffer.concat(
              buffers.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)),
            );
            return real.write(all, 0, fileBytes - position, position);
          }
          if (mode.now === 'dwb' && doubleWrite) throw enospc();
          return real.writev(buffers, position);
        },
        writeFile: (data) => real.writeFile(data),
        read: (buffer, offset, length, position) => real.read(buffer, offset, length, position),
        readFile: () => real.readFile(),
        stat: () => real.stat(),
        truncate: (length) => real.truncate(length),
        datasync: () => real.datasync(),
        sync: () => real.sync(),
        close: () => real.close(),
      };
      return handle;
    },
  });
}

it('puts a failed set back in place before the next set overwrites its double-write file', async () => {
  const openTree = (): Promise<PagedTree> =>
    PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax: 1 << 16, framesMax: 1024 });
  let paged = await openTree();
  for (let i = 0; i < keys; i += 2) paged.tree.put(key(i), value(i));
  await paged.writePages(1);
  for (let i = 1; i < keys; i += 2) paged.tree.put(key(i), value(i));
  const mode: { now: 'extend' | 'dwb' } = { now: 'extend' };
  fullDisk(mode, (await stat(join(dir, pageFileName))).size);
  // The second set's double-write file is whole, its header and the pages inside the file written in
  // place, the pages it appends refused.
  await expect(paged.writePages(2)).rejects.toMatchObject({ code: 'ENOSPC' });
  // The third set's double-write file is refused: what it truncated is gone.
  mode.now = 'dwb';
  await expect(paged.writePages(3)).rejects.toMatchObject({ code: 'ENOSPC' });
  installFileLayer(nodeFileLayer);
  paged.close();

  paged = await openTree();
  try {
    expect(paged.redoLsn, 'the page file holds the second set, put back whole').toBe(2);
    checkTree(paged.tree);
    for (let i = 0; i < keys; i++) expect(paged.tree.get(key(i))?.equals(value(i)), `key ${i}`).toBe(true);
  } finally {
    paged.close();
  }
}, 60_000);
