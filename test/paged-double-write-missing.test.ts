/**
 * A missing double-write file (`pages.dwb`) stays ERR_CORRUPTION at open, with a message that says
 * what to do, and doing it opens the database:
 *
 * - beside a page file that is its header alone, with no page set written, nothing can be torn: the
 *   message says to create the file empty, and after that the open succeeds;
 * - beside a page file holding page sets, the page file cannot show that no set was cut short: the
 *   message says to put the file back, or create it empty only after a clean close, or restore a
 *   backup. After a clean close, creating it empty opens the database with every key. verify
 *   (checkPageFile) reports the same message.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { checkPageFile } from '../src/storage/page-file/page-file-check.js';
import { doubleWriteFileName } from '../src/storage/page-file/page-file-format.js';
import { createPageFile } from '../src/storage/page-file/page-file-writer.js';
import { PagedTree } from '../src/workers/paged-tree.js';

const pageSize = 4096;
const partitions = 2;
const options = { partitions, workers: 1, memoryMaxBytes: partitions * 64 * pageSize } as const;
const keys = 500;

let dir = '';
afterEach(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  dir = '';
});

it('beside a page file with no page set, says to create it empty, and then opens', async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-dwb-missing-'));
  await createPageFile(dir, { pageSizeBytes: pageSize, partition: 0 });
  const path = join(dir, doubleWriteFileName);
  await rm(path);
  const openTree = () =>
    PagedTree.open({ dir, partition: 0, pageSizeBytes: pageSize, pagesMax: 256, framesMax: 64 });
  await expect(openTree()).rejects.toMatchObject({
    code: 'ERR_CORRUPTION',
    message: expect.stringContaining(
      `is its header alone, with no page set written, so no set was in flight and nothing needs repairing from it: create it empty (0 bytes: \`touch ${path}\`)`,
    ),
  });
  await writeFile(path, Buffer.alloc(0));
  const paged = await openTree();
  paged.close();
});

it('beside a page file holding page sets, says what to do, and an empty file after a clean close opens', async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-dwb-missing-'));
  let db = await open(dir, options);
  for (let first = 0; first < keys; first += 50) {
    await db.batch(
      Array.from({ length: 50 }, (_, at) => ({
        type: 'put' as const,
        key: `key-${first + at}`,
        value: `value-${first + at}`,
      })),
    );
  }
  await db.close();
  const partitionDir = partitionDirectory(dir, 0);
  const path = join(partitionDir, doubleWriteFileName);
  await rm(path);

  const instructions = [
    'cannot show that no set was cut short. If the file was moved, put it back.',
    `If the database was last closed cleanly (close() returned, no page set failed as it closed, no crash since), it was empty: create it empty (0 bytes: \`touch ${path}\`) and open again.`,
    'Otherwise restore the database from a backup.',
  ];
  const refused = await open(dir, options).then(
    (opened) => opened.close().then(() => null),
    (error: unknown) => error,
  );
  expect(refused).toMatchObject({ code: 'ERR_CORRUPTION' });
  for (const line of instructions) expect((refused as Error).message).toContain(line);
  const checked = await checkPageFile(partitionDir, { partition: 0 });
  expect(checked.problems).toEqual([
    expect.objectContaining({
      code: 'ERR_CORRUPTION',
      file: path,
      message: expect.stringContaining(instructions[1]!),
    }),
  ]);

  // Closed cleanly: the file was empty, so an empty one is exactly what was lost.
  await writeFile(path, Buffer.alloc(0));
  db = await open(dir, options);
  try {
    for (let index = 0; index < keys; index++) expect(db.getString(`key-${index}`)).toBe(`value-${index}`);
  } finally {
    await db.close();
  }
});
