/**
 * `lightning-cli verify` of a partition whose checkpoint is a page file (its manifest names
 * `pages.lpg`), end to end in a child process. The partition is written as test/paged-partition-crash
 * writes it (test/fixtures/paged-partition-cycles.ts: a 48-frame pool, a page set every 150 writes)
 * and given the database's identity file. A sound page file verifies (exit 0); a damaged page is named
 * with its byte offset (exit 4); a page a crash tore while a set was written in place, whose image a
 * whole double-write file holds, is not damage, since the next open rewrites it (exit 0); a page file
 * that is missing, or one whose page set is older than the manifest says, is damage, even beside a
 * damaged double-write file. Bytes past the pages the page set counts (zero pages a crash left while
 * the file grew, or anything else) are noted, not damage (exit 0), as the open never reads them.
 */
import { appendFile, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../src/storage/checkpoint/index.js';
import { createIdentity } from '../src/storage/database-files.js';
import { partitionDirectory } from '../src/storage/layout.js';
import {
  decodePageSpaceState,
  doubleWriteFileName,
  encodeDoubleWriteHeader,
  encodePageFileHeader,
  pageFileName,
} from '../src/storage/page-file/page-file-format.js';
import { pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import { xxhashApi } from '../src/storage/xxhash.js';
import {
  createPagedDatabase,
  openPagedPartition,
  PagedModel,
  pagedCheckFramesMax,
  pagedPageSize,
  runPagedWrites,
  treeDigest,
} from './fixtures/paged-partition-cycles.js';
import { runCli } from './support/cli-runner.js';
import { flipByte, useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-verify-pages-');
const seed = 0x5e7f;
const operations = 460;
/** A page of the tree the writes certainly reach (the run allocates hundreds). */
const damagedPage = 5;

interface VerifyJson {
  ok: boolean;
  exitCode: number;
  findings: {
    partition: number | null;
    code: string;
    file: string;
    offset: number | null;
    message: string;
  }[];
  partitions: {
    partition: number;
    checkpoint: {
      manifest: string;
      file: string | null;
      startLsn: string | null;
      verified: boolean;
      pastRecordedEnd: { pagesAllocated: number; offset: number; bytes: number; nonZeroPages: number } | null;
    };
  }[];
}

/** A one-partition database whose manifest names its page file, written by `operations` writes. */
async function pagedDatabase(): Promise<{ dir: string; pages: string }> {
  const dir = join(await temporaryDirectory(), 'db');
  await createPagedDatabase(dir);
  const manifest = await readManifest(partitionDirectory(dir, 0));
  await createIdentity(dir, 1, manifest!.databaseId!);
  await runPagedWrites(dir, seed, 1, operations, { acknowledged: () => {}, pageSet: () => {} });
  return { dir, pages: join(partitionDirectory(dir, 0), pageFileName) };
}

async function verify(dir: string): Promise<VerifyJson> {
  const run = await runCli(['verify', '--json', dir]);
  const report = JSON.parse(run.stdout) as VerifyJson;
  expect(run.code, run.stderr).toBe(report.exitCode);
  return report;
}

describe('lightning-cli verify of a page file', () => {
  it('passes a sound page file and names the page set it holds', async () => {
    const { dir, pages } = await pagedDatabase();
    const manifest = await readManifest(partitionDirectory(dir, 0));
    expect(manifest!.checkpoints[0]!.file).toBe(pageFileName);
    const report = await verify(dir);
    expect(report.findings).toEqual([]);
    expect(report.exitCode).toBe(0);
    expect(report.partitions[0]!.checkpoint).toMatchObject({
      manifest: 'ok',
      file: pages,
      startLsn: manifest!.checkpoints[0]!.startLsn.toString(),
      verified: true,
    });
    const text = await runCli(['verify', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/page file of \d+ bytes/);
  });

  it('names a damaged page by its byte offset, and passes a torn page the double-write file holds whole', async () => {
    const { dir, pages } = await pagedDatabase();
    const sound = (await readFile(pages)).subarray(
      damagedPage * pagedPageSize,
      (damagedPage + 1) * pagedPageSize,
    );
    await flipByte(pages, damagedPage * pagedPageSize + 100);

    const damaged = await verify(dir);
    expect(damaged.exitCode).toBe(4);
    expect(damaged.findings).toEqual([
      expect.objectContaining({
        partition: 0,
        code: 'ERR_CORRUPTION',
        file: pages,
        offset: damagedPage * pagedPageSize,
        message: expect.stringContaining(`page ${damagedPage}: checksum mismatch`),
      }),
    ]);
    expect(damaged.partitions[0]!.checkpoint.verified).toBe(false);
    // The code is shown apart, never repeated in the message.
    expect(damaged.findings[0]!.message).not.toContain('ERR_');

    // As a crash leaves it mid-set: the double-write file whole and synced, the page torn in place.
    const api = await xxhashApi();
    const image = Buffer.from(sound);
    const header = encodeDoubleWriteHeader(api, pagedPageSize, [image]);
    await writeFile(join(partitionDirectory(dir, 0), doubleWriteFileName), Buffer.concat([header, image]));
    const repairable = await verify(dir);
    expect(repairable.findings).toEqual([]);
    expect(repairable.exitCode).toBe(0);

    // A double-write file that is not whole stands for nothing: the page is damage again.
    await writeFile(
      join(partitionDirectory(dir, 0), doubleWriteFileName),
      Buffer.concat([header, image.subarray(0, pagedPageSize / 2)]),
    );
    expect((await verify(dir)).exitCode).toBe(4);
  });

  it('passes a page file a crash cut short after its page 0, the double-write file holding the rest', async () => {
    const { dir, pages } = await pagedDatabase();
    const bytes = await readFile(pages);
    const count = bytes.length / pagedPageSize;
    const page = (pageId: number) =>
      Buffer.from(bytes.subarray(pageId * pagedPageSize, (pageId + 1) * pagedPageSize));
    // The last set as a crash leaves it: page 0 in place, its last two pages not yet (one partly).
    const images = [page(0), page(count - 2), page(count - 1)];
    const api = await xxhashApi();
    const doubleWrite = join(partitionDirectory(dir, 0), doubleWriteFileName);
    await writeFile(
      doubleWrite,
      Buffer.concat([encodeDoubleWriteHeader(api, pagedPageSize, images), ...images]),
    );
    await truncate(pages, (count - 2) * pagedPageSize + 100);
    const repairable = await verify(dir);
    expect(repairable.findings).toEqual([]);
    expect(repairable.exitCode).toBe(0);

    // Without the double-write file's images the same file is short: damage.
    await writeFile(doubleWrite, Buffer.alloc(0));
    const short = await verify(dir);
    expect(short.exitCode).toBe(4);
    expect(short.findings.map((finding) => finding.message)).toEqual([
      expect.stringContaining('is not a whole number of'),
      expect.stringContaining(`holds ${count - 2} pages, but its page set counts ${count} allocated`),
    ]);
  });

  it('notes bytes past the pages its page set counts, zero or not, which the open never reads', async () => {
    const { dir, pages } = await pagedDatabase();
    const bytes = await readFile(pages);
    const api = await xxhashApi();
    const { pagesAllocated } = decodePageSpaceState(api, bytes.subarray(0, pagedPageSize), pages)!;
    expect(bytes.length).toBe(pagesAllocated * pagedPageSize);
    expect((await verify(dir)).partitions[0]!.checkpoint.pastRecordedEnd).toBeNull();

    // As a crash leaves a file that grew: its new size durable, its data not (three pages and a part).
    const pastBytes = 3 * pagedPageSize + 100;
    await appendFile(pages, Buffer.alloc(pastBytes));
    const zero = await verify(dir);
    expect(zero.findings).toEqual([]);
    expect(zero.exitCode).toBe(0);
    expect(zero.partitions[0]!.checkpoint).toMatchObject({
      verified: true,
      pastRecordedEnd: { pagesAllocated, offset: bytes.length, bytes: pastBytes, nonZeroPages: 0 },
    });
    const text = await runCli(['verify', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `note: partition 0000: ${pages} holds ${pastBytes} bytes (all zero) from byte ${bytes.length}, ` +
        `past the ${pagesAllocated} pages its page set counts.`,
    );
    expect(await pageFileProblems(partitionDirectory(dir, 0), pagedPageSize)).toEqual([]);

    // Not zero: the open reads none of it either, so it is noted too, the pages that are not zero counted.
    await writeFile(
      pages,
      Buffer.concat([bytes, Buffer.alloc(pagedPageSize, 0xa5), Buffer.alloc(pastBytes)]),
    );
    const garbage = await verify(dir);
    expect(garbage.findings).toEqual([]);
    expect(garbage.exitCode).toBe(0);
    expect(garbage.partitions[0]!.checkpoint.pastRecordedEnd).toMatchObject({
      bytes: pagedPageSize + pastBytes,
      nonZeroPages: 1,
    });
    expect((await runCli(['verify', dir])).stdout).toContain('(1 whole page(s) of them not zero-filled)');
    expect(await pageFileProblems(partitionDirectory(dir, 0), pagedPageSize)).toEqual([]);

    // And the open agrees: it reads the partition whole, every write the run made.
    const model = new PagedModel();
    for (let index = 0; index < operations; index++) model.apply(seed, index);
    const opened = await openPagedPartition(dir, 2, pagedCheckFramesMax);
    try {
      expect(treeDigest(opened.paged.tree)).toBe(model.digest());
    } finally {
      opened.paged.close();
    }
  });

  it('reports a missing page file, and a page file older than its manifest', async () => {
    const { dir, pages } = await pagedDatabase();
    const bytes = await readFile(pages);
    await rm(pages);
    const missing = await verify(dir);
    expect(missing.exitCode).toBe(4);
    expect(missing.findings).toEqual([
      expect.objectContaining({
        code: 'ERR_CORRUPTION',
        file: pages,
        message: expect.stringContaining('missing'),
      }),
    ]);

    // Page 0 as createPageFile wrote it, before any set: the file holds no page set at all.
    const api = await xxhashApi();
    const fresh = encodePageFileHeader(api, { pageSizeBytes: pagedPageSize, partition: 0 });
    await writeFile(pages, Buffer.concat([fresh, bytes.subarray(pagedPageSize)]));
    const older = await verify(dir);
    expect(older.exitCode).toBe(4);
    expect(older.findings).toEqual([
      expect.objectContaining({ offset: 0, message: expect.stringContaining('holds no page set') }),
    ]);
  });

  it('still reports a page set older than the manifest when the double-write file is damaged too', async () => {
    const { dir, pages } = await pagedDatabase();
    const manifest = await readManifest(partitionDirectory(dir, 0));
    const startLsn = Number(manifest!.checkpoints[0]!.startLsn);
    const api = await xxhashApi();
    const bytes = await readFile(pages);
    const state = decodePageSpaceState(api, bytes.subarray(0, pagedPageSize), pages)!;
    expect(state.redoLsn).toBeGreaterThanOrEqual(startLsn);
    // Page 0 sound, but its set one LSN older than the manifest's start.
    const older = encodePageFileHeader(
      api,
      { pageSizeBytes: pagedPageSize, partition: 0 },
      { ...state, redoLsn: startLsn - 1 },
    );
    await writeFile(pages, Buffer.concat([older, bytes.subarray(pagedPageSize)]));
    // A double-write file of another page size: damaged (a finding without an offset).
    const doubleWrite = join(partitionDirectory(dir, 0), doubleWriteFileName);
    await writeFile(doubleWrite, encodeDoubleWriteHeader(api, pagedPageSize * 2, []));

    const report = await verify(dir);
    expect(report.exitCode).toBe(4);
    const startFinding = expect.objectContaining({
      file: pages,
      offset: 0,
      message: expect.stringContaining(`a page set at redo LSN ${startLsn - 1}`),
    });
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'ERR_CORRUPTION', file: doubleWrite, offset: null }),
      startFinding,
    ]);
    for (const finding of report.findings) expect(finding.message).not.toContain('ERR_');

    // And with the double-write file missing.
    await rm(doubleWrite);
    const missing = await verify(dir);
    expect(missing.findings).toEqual([
      expect.objectContaining({
        file: doubleWrite,
        offset: null,
        message: expect.stringContaining('missing'),
      }),
      startFinding,
    ]);
  });
});
