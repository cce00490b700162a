/**
 * A database over page files opened with { readOnly: true }: it reads the page files as they are and
 * replays the log since the last page sets into its pools, where the pages it changes stay (a
 * read-only open writes no set). Its directory must be byte for byte what it was. A log tail that
 * changes more pages than a pool holds is refused with ERR_NOT_SUPPORTED, saying how to open it; a
 * writable open then replays it, and its clean close leaves no log, so a read-only open with the
 * small budget works. Beside a writer that has the database open, a read-only open is ERR_LOCKED.
 * The crash image is a copy of the directory of a database that is open and
 * idle, its acknowledged writes in its log ('sync'), its last ones in no page set.
 */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { open } from '../src/index.js';

const partitions = 2;
const pageSize = 4096;
const small = partitions * 64 * pageSize;
const large = partitions * 2048 * pageSize;
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'lightning-paged-read-only-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const key = (i: number): string => `key${String(i).padStart(6, '0')}`;
const value = (i: number): Buffer => Buffer.alloc(1000, i & 0xff);

/** Every file under `dir` with its size and a digest: what a read-only open must leave as it was. */
async function snapshotOf(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path);
    files.set(
      relative(dir, path),
      `${(await stat(path)).size} ${createHash('sha256').update(bytes).digest('hex')}`,
    );
  }
  return files;
}

async function expectAll(db: Awaited<ReturnType<typeof open>>, keys: number): Promise<void> {
  for (let i = 0; i < keys; i++) expect(db.get(key(i)), key(i)).toEqual(value(i));
}

it('replays a log tail into the pools, writes nothing, and refuses a tail larger than a pool', async () => {
  const live = join(root, 'live');
  const crashed = join(root, 'crashed');
  const options = { partitions, workers: 1, durability: 'sync' as const };
  const db = await open(live, { ...options, memoryMaxBytes: large });
  const loaded = 500;
  const keys = 2500;
  try {
    for (let i = 0; i < loaded; i++) await db.put(key(i), value(i));
    await db.checkpoint();
    // A writer's page sets rewrite the page files a read-only open reads as it goes: not beside one.
    await expect(open(live, { ...options, readOnly: true })).rejects.toMatchObject({ code: 'ERR_LOCKED' });
    // The tail: about 300 pages per partition, under half of the large pools, so no set writes them.
    for (let i = loaded; i < keys; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, j) => db.put(key(i + j), value(i + j))));
    expect(db.stats().bufferPools!.every((pool) => pool.dirtyPages > 64)).toBe(true);
    await cp(live, crashed, { recursive: true });
  } finally {
    await db.close();
  }
  // The copy's lock names this process, which holds the live one: a crashed process's would name
  // a process gone, which the next open takes over.
  await rm(join(crashed, 'LOCK'));
  const image = await snapshotOf(crashed);

  // The small pools cannot hold what the tail changes, and a read-only open writes no set.
  await expect(open(crashed, { ...options, readOnly: true, memoryMaxBytes: small })).rejects.toMatchObject({
    code: 'ERR_NOT_SUPPORTED',
    message: expect.stringContaining('without readOnly'),
  });
  expect(await snapshotOf(crashed), 'a refused read-only open wrote nothing').toEqual(image);

  const readOnly = await open(crashed, { ...options, readOnly: true, memoryMaxBytes: large });
  try {
    expect(readOnly.stats().recovery?.replayedRecords ?? 0).toBeGreaterThan(keys - loaded - 1);
    await expectAll(readOnly, keys);
    await expect(readOnly.put('x', 'y')).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
    await expect(readOnly.checkpoint()).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
  } finally {
    await readOnly.close();
  }
  expect(await snapshotOf(crashed), 'a read-only open wrote nothing').toEqual(image);

  // A writable open with the small pools replays the tail, writing sets as they fill; its clean close
  // leaves no log, so the small pools then open it read-only.
  const writable = await open(crashed, { ...options, memoryMaxBytes: small });
  await expectAll(writable, keys);
  await writable.close();
  const reopened = await open(crashed, { ...options, readOnly: true, memoryMaxBytes: small });
  try {
    expect(reopened.stats().recovery?.replayedRecords ?? 0).toBe(0);
    await expectAll(reopened, keys);
  } finally {
    await reopened.close();
  }
}, 120_000);
