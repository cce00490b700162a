/**
 * checkPageFile (what `lightning-cli verify` reads a page file with) after a crash in the middle of a
 * page set's in-place writes, made by a file layer that fails the writer's in-place writes at a chosen
 * page, after writing part of it:
 *
 * - a set writes page 0 (counting the pages it appends as allocated) before it appends them, so a
 *   crash between leaves the file short, its last page partial: the whole double-write file holds the
 *   missing pages and the next open appends them, so this is repairable, not damage. The open then
 *   reads every key back.
 * - the same file without those images (no double-write file, or one without the pages cut off) is
 *   damage, named.
 * - the page set verify reports is page 0's double-write image, which the next open writes in place,
 *   whether page 0 in place is the former set's or torn.
 *
 * And readDoubleWriteImages, which reads the double-write file an image at a time: a file cut short,
 * counting more images than it holds, with a damaged image or with a sound image of a former set
 * gives none; one of another page size, or none at all, is ERR_CORRUPTION.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import {
  type FileLayer,
  installFileLayer,
  type LayerFileHandle,
  nodeFileLayer,
} from '../src/storage/file-layer.js';
import { readDoubleWriteImages } from '../src/storage/page-file/double-write-images.js';
import { checkPageFile, type PageFileCheck } from '../src/storage/page-file/page-file-check.js';
import {
  doubleWriteFileName,
  encodeDoubleWriteHeader,
  pageFileName,
  pageIdOf,
} from '../src/storage/page-file/page-file-format.js';
import { createPageFile, repairTornPages } from '../src/storage/page-file/page-file-writer.js';
import { xxhashApi } from '../src/storage/xxhash.js';
import { PagedTree } from '../src/workers/paged-tree.js';

const pageSize = 4096;
/** Keys the first set writes; the second (the one the crash cuts short) adds twice as many. */
const firstKeys = 200;
const allKeys = 600;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-page-file-check-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
});

afterEach(async () => {
  installFileLayer(nodeFileLayer);
  await rm(dir, { recursive: true, force: true });
});

const key = (i: number): Buffer => Buffer.from(`key${i.toString().padStart(5, '0')}`);
const value = (i: number): Buffer => Buffer.alloc(300, i & 0xff);

function openTree(): Promise<PagedTree> {
  return PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax: 1024, framesMax: 256 });
}

/** Where the crash fails the set's in-place writes: at page 0, or at the first page past the file's end. */
type CrashAt = 'page 0' | 'first appended page';

/**
 * Installs a layer under which the next page-file write at `at` or past it writes `partialBytes` of
 * its page and fails, as a crash there would leave the file (the double-write file written and
 * synced before, and not emptied after).
 */
function installCrash(at: CrashAt, partialBytes: number): void {
  const layer: FileLayer = {
    ...nodeFileLayer,
    async open(path, flags) {
      const handle = await nodeFileLayer.open(path, flags);
      if (!path.endsWith(pageFileName) || flags !== 'r+') return handle;
      const crashFrom = at === 'page 0' ? 0 : (await handle.stat()).size;
      return crashingHandle(handle, crashFrom, partialBytes);
    },
  };
  installFileLayer(layer);
}

function crashingHandle(handle: LayerFileHandle, crashFrom: number, partialBytes: number): LayerFileHandle {
  let crashed = false;
  const crashing: LayerFileHandle = {
    async write(buffer, offset = 0, length = buffer.length - offset, position = null) {
      // The first write past the crash point is torn; the process is gone for every later one (a
      // set writes several runs of pages at once).
      if (crashed) throw new Error(`injected crash: write of byte ${position} after the crash`);
      if (position !== null && position >= crashFrom) {
        crashed = true;
        if (partialBytes > 0) await handle.write(buffer, offset, partialBytes, position);
        throw new Error(`injected crash writing byte ${position}`);
      }
      return handle.write(buffer, offset, length, position);
    },
    async writev(buffers, position = 0) {
      // Page by page, so that a run of pages crosses the crash point as single writes would.
      let at = position;
      for (const buffer of buffers) {
        const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
        await crashing.write(bytes, 0, bytes.length, at);
        at += bytes.length;
      }
      return { bytesWritten: at - position };
    },
    writeFile: (data) => handle.writeFile(data),
    read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
    readFile: () => handle.readFile(),
    stat: () => handle.stat(),
    truncate: (length) => handle.truncate(length),
    datasync: () => handle.datasync(),
    sync: () => handle.sync(),
    close: () => handle.close(),
  };
  return crashing;
}

/**
 * A set at redo LSN 1 with `firstKeys` keys, then one at redo LSN 2 adding the rest, which the crash
 * cuts short at `at`. Returns the page file's size before the second set.
 */
async function crashInSecondSet(at: CrashAt, partialBytes: number): Promise<number> {
  const paged = await openTree();
  try {
    for (let i = 0; i < firstKeys; i++) paged.tree.put(key(i), value(i));
    expect(await paged.writePages(1)).not.toBeNull();
    const bytesBefore = (await stat(join(dir, pageFileName))).size;
    for (let i = firstKeys; i < allKeys; i++) paged.tree.put(key(i), value(i));
    installCrash(at, partialBytes);
    await expect(paged.writePages(2)).rejects.toThrow('injected crash');
    return bytesBefore;
  } finally {
    installFileLayer(nodeFileLayer);
    paged.close();
  }
}

/** The double-write file's images, as the crash left it (whole: it was synced before any page). */
async function doubleWriteImages(): Promise<Uint8Array[]> {
  const images = await readDoubleWriteImages(dir, pageSize);
  expect(images.length).toBeGreaterThan(0);
  return images;
}

/** Replaces the double-write file with a whole one holding `images`. */
async function writeDoubleWrite(images: readonly Uint8Array[]): Promise<void> {
  const header = encodeDoubleWriteHeader(await xxhashApi(), pageSize, images);
  await writeFile(join(dir, doubleWriteFileName), Buffer.concat([header, ...images]));
}

function expectNoCodeInMessages(check: PageFileCheck): void {
  for (const problem of check.problems) expect(problem.message).not.toContain('ERR_');
}

describe('checkPageFile after a crash during a page set', () => {
  it('counts the pages a crash cut off the end (the last one partial) as repairable; the open appends them', async () => {
    const bytesBefore = await crashInSecondSet('first appended page', 100);
    const bytes = (await stat(join(dir, pageFileName))).size;
    // The crash left page 0 (the new state) in place and the file short, with a partial last page.
    expect(bytes).toBe(bytesBefore + 100);
    const images = await doubleWriteImages();
    const wholePages = Math.floor(bytes / pageSize);
    const pastEnd = images.filter((image) => pageIdOf(image) >= wholePages).length;
    expect(pastEnd).toBeGreaterThan(1);

    const crashed = await checkPageFile(dir);
    expect(crashed.problems).toEqual([]);
    expect(crashed).toMatchObject({ pages: wholePages, headerSound: true, repairable: pastEnd });
    expect(crashed.state?.redoLsn).toBe(2);
    expect(crashed.state!.pagesAllocated).toBeGreaterThan(wholePages);

    // Also the set's pages in place that runs written at the same time as the torn one never reached
    // (whole pages of the former set, which the check cannot tell from the new one's).
    // A read-only open counts the pages to repair and writes none of them: it is refused.
    const before = await readFile(join(dir, pageFileName));
    expect(await repairTornPages(dir, pageSize, false)).toBeGreaterThanOrEqual(pastEnd);
    await expect(
      PagedTree.open({
        dir,
        partition: 0,
        pageSizeBytes: pageSize,
        pagesMax: 1024,
        framesMax: 256,
        readOnly: true,
      }),
    ).rejects.toMatchObject({ code: 'ERR_NOT_SUPPORTED' });
    expect((await readFile(join(dir, pageFileName))).equals(before), 'the read-only look wrote nothing').toBe(
      true,
    );
    const rewritten = await repairTornPages(dir, pageSize);
    expect(rewritten).toBeGreaterThanOrEqual(pastEnd);
    expect(rewritten).toBeLessThanOrEqual(images.length);
    const repaired = await checkPageFile(dir);
    expect(repaired.problems).toEqual([]);
    expect(repaired.repairable).toBe(0);
    expect(repaired.pages).toBeGreaterThanOrEqual(crashed.state!.pagesAllocated);
    expect(repaired.state).toEqual(crashed.state);

    const paged = await openTree();
    try {
      expect(paged.redoLsn).toBe(2);
      for (let i = 0; i < allKeys; i++)
        expect(paged.tree.get(key(i))?.equals(value(i)), `key ${i}`).toBe(true);
      checkTree(paged.tree);
    } finally {
      paged.close();
    }
  });

  it('reports the same cut-off end as damage when no whole double-write file holds the pages', async () => {
    const bytesBefore = await crashInSecondSet('first appended page', 100);
    const images = await doubleWriteImages();
    const allocated = (await checkPageFile(dir)).state!.pagesAllocated;
    const wholePages = Math.floor(bytesBefore / pageSize);
    const codes = (check: PageFileCheck) => check.problems.map((problem) => problem.code);

    // No images (the double-write file emptied, as though the set had ended): a short file, and a
    // partial page.
    await writeFile(join(dir, doubleWriteFileName), Buffer.alloc(0));
    const none = await checkPageFile(dir);
    expect(none.problems).toEqual([
      expect.objectContaining({
        offset: bytesBefore,
        message: expect.stringContaining('not a whole number of 4096-byte pages'),
      }),
      expect.objectContaining({
        message: expect.stringContaining(`holds ${wholePages} pages, but its page set counts ${allocated}`),
      }),
    ]);
    expect(codes(none)).toEqual(['ERR_CORRUPTION', 'ERR_CORRUPTION']);
    expect(none.repairable).toBe(0);
    expectNoCodeInMessages(none);

    // Whole, but without the last page: the open would leave the file short of it.
    const last = pageIdOf(images.at(-1)!);
    await writeDoubleWrite(images.slice(0, -1));
    const withoutLast = await checkPageFile(dir);
    expect(withoutLast.problems).toEqual([
      expect.objectContaining({
        offset: bytesBefore + 100,
        message: expect.stringContaining(`(${last} once the double-write file's images are written)`),
      }),
    ]);
    expectNoCodeInMessages(withoutLast);

    // Whole, but without a page between the file's end and the last: a hole the open would leave.
    const between = images.findIndex((image) => pageIdOf(image) === wholePages + 1);
    expect(between).toBeGreaterThan(0);
    await writeDoubleWrite(images.filter((_, at) => at !== between));
    const withHole = await checkPageFile(dir);
    expect(withHole.problems).toEqual([
      expect.objectContaining({
        offset: (wholePages + 1) * pageSize,
        message: expect.stringContaining(`not 1 of them (the first: page ${wholePages + 1})`),
      }),
    ]);
    expectNoCodeInMessages(withHole);

    // Without the partial page itself: it is damage again.
    const partial = images.findIndex((image) => pageIdOf(image) === wholePages);
    await writeDoubleWrite(images.filter((_, at) => at !== partial));
    const withoutPartial = await checkPageFile(dir);
    expect(withoutPartial.problems.map((problem) => problem.offset)).toEqual([
      bytesBefore,
      wholePages * pageSize,
    ]);
    expect(withoutPartial.problems[0]!.message).toContain('not a whole number');
    expect(withoutPartial.problems[1]!.message).toContain(`holds ${wholePages} pages; the double-write file`);
  });

  it("takes the page set from page 0's double-write image, over the former set in place", async () => {
    const bytesBefore = await crashInSecondSet('page 0', 0);
    // Nothing written in place: page 0 is the first set's, sound.
    const inPlace = await readFile(join(dir, pageFileName));
    expect(inPlace.length).toBe(bytesBefore);
    const crashed = await checkPageFile(dir);
    expect(crashed.problems).toEqual([]);
    expect(crashed.headerSound).toBe(true);
    expect(crashed.state?.redoLsn).toBe(2);
    expect(crashed.repairable).toBeGreaterThan(0);
    // Without the double-write file it is the first set, whole.
    const alone = await checkPageFile(dir, { doubleWrite: false });
    expect(alone.problems).toEqual([]);
    expect(alone.state?.redoLsn).toBe(1);
  });

  it('takes the page set from the image of a page 0 torn in place, and names it as damage without one', async () => {
    // 80 bytes: the header and half of the state (byte 64 on) are the new set's, the rest the old one's.
    await crashInSecondSet('page 0', 80);
    const crashed = await checkPageFile(dir);
    expect(crashed.problems).toEqual([]);
    expect(crashed.headerSound).toBe(true);
    expect(crashed.state?.redoLsn).toBe(2);

    const alone = await checkPageFile(dir, { doubleWrite: false });
    expect(alone.headerSound).toBe(false);
    expect(alone.state).toBeNull();
    expect(alone.problems).toEqual([
      expect.objectContaining({
        code: 'ERR_CORRUPTION',
        offset: 0,
        message: `page file ${join(dir, pageFileName)}: page 0: the page space's state is damaged (torn or overwritten)`,
      }),
    ]);
    expect(alone.problems[0]!.message).toContain("the page space's state is damaged");
    expectNoCodeInMessages(alone);
  });
  it("reads a page file whose header a crash tore with the double-write file's page size", async () => {
    // The crash tore page 0's first sector: what a torn write leaves there is undefined, zeros here.
    const tearHeader = async (): Promise<void> => {
      await crashInSecondSet('page 0', 0);
      const path = join(dir, pageFileName);
      const bytes = await readFile(path);
      bytes.fill(0, 0, 512);
      await writeFile(path, bytes);
    };
    await tearHeader();
    const alone = await checkPageFile(dir, { doubleWrite: false });
    expect(alone.problems).toEqual([expect.objectContaining({ code: 'ERR_CORRUPTION', offset: 0 })]);
    expect(alone.pages).toBe(0);
    const crashed = await checkPageFile(dir);
    expect(crashed.problems).toEqual([]);
    expect(crashed.headerSound).toBe(true);
    expect(crashed.state?.redoLsn).toBe(2);
    expect(crashed.repairable).toBeGreaterThan(0);
    // The open agrees: it rewrites page 0 from its image and reads every key.
    const paged = await openTree();
    try {
      for (let i = 0; i < allKeys; i++)
        expect(paged.tree.get(key(i))?.equals(value(i)), `key ${i}`).toBe(true);
      checkTree(paged.tree);
    } finally {
      paged.close();
    }
    // Without the double-write file's images the torn header stays damage.
    await tearHeader();
    await writeFile(join(dir, doubleWriteFileName), Buffer.alloc(0));
    const damaged = await checkPageFile(dir);
    expect(damaged.problems).toEqual([expect.objectContaining({ code: 'ERR_CORRUPTION', offset: 0 })]);
    expectNoCodeInMessages(damaged);
  });
});

describe('readDoubleWriteImages', () => {
  it('reads a whole file an image at a time, and gives none of one cut short, counting more images or not one batch', async () => {
    await crashInSecondSet('page 0', 0);
    const path = join(dir, doubleWriteFileName);
    const whole = await readFile(path);
    const images = await readDoubleWriteImages(dir, pageSize);
    expect(whole.length).toBe((images.length + 1) * pageSize);
    expect(Buffer.concat(images).equals(whole.subarray(pageSize))).toBe(true);
    expect(pageIdOf(images[0]!)).toBe(0);

    // Cut inside its last image, or by a whole image: never synced, none of it stands.
    await writeFile(path, whole.subarray(0, whole.length - 1));
    expect(await readDoubleWriteImages(dir, pageSize)).toEqual([]);
    await writeFile(path, whole.subarray(0, whole.length - pageSize));
    expect(await readDoubleWriteImages(dir, pageSize)).toEqual([]);

    // A sound header counting more images than the file could hold.
    const api = await xxhashApi();
    const claims = encodeDoubleWriteHeader(api, pageSize, images);
    new DataView(claims.buffer).setUint32(12, 0xffff_ffff, true);
    new DataView(claims.buffer).setUint32(16, api.h32Raw(claims.subarray(0, 16)), true);
    await writeFile(path, Buffer.concat([claims, whole.subarray(pageSize)]));
    expect(await readDoubleWriteImages(dir, pageSize)).toEqual([]);

    // One image changed: its own checksum fails, the set is not whole.
    const damaged = Buffer.from(whole);
    damaged.writeUInt8(damaged.readUInt8(2 * pageSize + 100) ^ 0xff, 2 * pageSize + 100);
    await writeFile(path, damaged);
    expect(await readDoubleWriteImages(dir, pageSize)).toEqual([]);

    // Every image sound, but one of the former set (the page as it is in place): not this batch.
    const inPlace = await readFile(join(dir, pageFileName));
    const formerAt = images.findIndex((image) => {
      const pageId = pageIdOf(image);
      return pageId > 0 && (pageId + 1) * pageSize <= inPlace.length;
    });
    expect(formerAt).toBeGreaterThan(0);
    const formerId = pageIdOf(images[formerAt]!);
    const former = inPlace.subarray(formerId * pageSize, (formerId + 1) * pageSize);
    expect(former.equals(images[formerAt]!)).toBe(false);
    const mixed = Buffer.from(whole);
    former.copy(mixed, (formerAt + 1) * pageSize);
    await writeFile(path, mixed);
    expect(await readDoubleWriteImages(dir, pageSize)).toEqual([]);

    await writeFile(path, whole);
    expect(await readDoubleWriteImages(dir, pageSize)).toHaveLength(images.length);
    await expect(readDoubleWriteImages(dir, pageSize * 2)).rejects.toMatchObject({ code: 'ERR_CORRUPTION' });
    await rm(path);
    await expect(readDoubleWriteImages(dir, pageSize)).rejects.toMatchObject({
      code: 'ERR_CORRUPTION',
      message: expect.stringContaining('missing'),
    });
  });
});

describe('checkPageFile and the partition', () => {
  it('names a page file of another partition, which the open refuses', async () => {
    const other = await mkdtemp(join(tmpdir(), 'lightning-page-file-partition-'));
    try {
      await createPageFile(other, { pageSizeBytes: pageSize, partition: 3 });
      const written = await PagedTree.open({
        dir: other,
        partition: 3,
        pageSizeBytes: pageSize,
        pagesMax: 256,
        framesMax: 64,
      });
      written.tree.put('k', 'v');
      expect(await written.writePages(1)).not.toBeNull();
      written.close();
      expect((await checkPageFile(other, { partition: 3 })).problems).toEqual([]);
      const moved = await checkPageFile(other, { partition: 0 });
      expect(moved.problems).toEqual([
        expect.objectContaining({
          code: 'ERR_CORRUPTION',
          offset: 0,
          message: expect.stringContaining('is partition 3'),
        }),
      ]);
      await expect(
        PagedTree.open({ dir: other, partition: 0, pageSizeBytes: pageSize, pagesMax: 256, framesMax: 64 }),
      ).rejects.toThrow('is partition 3');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
