/**
 * The power-loss harness checked against known sequences, so that the power-loss test cannot pass
 * because its fault layer keeps too much (or anything at all it should not): file A written and
 * synced, file B written and never synced, a rename and an unlink without a directory sync, a synced
 * file with an unsynced append. With nothing unsynced kept, the rebuilt directory is exactly the
 * synced state; with everything kept, it is what the process saw; at random, every unsynced change
 * is as the image's own account of its choices says.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installFileLayer, nodeFileLayer } from '../src/storage/file-layer.js';
import { createFileLayer } from './support/fault-file-layer.js';
import { journalEnvName, readJournal } from './support/fault-journal.js';
import { type CrashImage, PowerLossReplay } from './support/power-loss-image.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(Date.now() % 2 ** 31);
let base = '';
let root = '';
let journal = '';
let image: (random: () => number, keep: number, tear: number, order?: 'subset' | 'prefix') => CrashImage;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lightning-fault-layer-'));
  root = join(base, 'db');
  journal = join(base, 'journal');
  await mkdir(root);
  // C exists before the run: durable as it stands.
  await writeFile(join(root, 'C'), 'CCCC');
  await writeFile(join(root, 'old'), 'OLD');
  const replay = await PowerLossReplay.fromDirectory(root);

  process.env[journalEnvName] = journal;
  const layer = createFileLayer();
  installFileLayer(layer);
  try {
    const a = await layer.open(join(root, 'A'), 'wx');
    await a.write(Buffer.from('AAAA'), 0, 4, 0);
    await a.datasync();
    await a.close();
    await layer.syncDirectory(root);
    // D: two unsynced writes in one page; E: two in different pages. Both files synced empty first.
    for (const name of ['D', 'E']) {
      const handle = await layer.open(join(root, name), 'wx');
      await handle.datasync();
      const second = name === 'D' ? 4 : 4096;
      await handle.write(Buffer.from('1111'), 0, 4, 0);
      await handle.write(Buffer.from('2222'), 0, 4, second);
      await handle.close();
    }
    await layer.syncDirectory(root);
    const b = await layer.open(join(root, 'B'), 'wx');
    await b.write(Buffer.from('BBBBBBBB'), 0, 8, 0);
    await b.close();
    const c = await layer.open(join(root, 'C'), 'a');
    await c.write(Buffer.from('cc'));
    await c.sync();
    await c.write(Buffer.from('dddd'));
    await c.close();
    await layer.rename(join(root, 'A'), join(root, 'A2'));
    await layer.unlink(join(root, 'old'));
  } finally {
    installFileLayer(nodeFileLayer);
    delete process.env[journalEnvName];
  }
  for (const record of readJournal(journal)) replay.apply(record);
  image = (random, keep, tear, order = 'subset') => replay.image(random, { order, keep, tear });
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const text = (result: CrashImage, name: string) => result.files.get(name)?.toString('utf8');

describe(`fault file layer and power-loss image (seed ${seed})`, () => {
  it('writes through: the real files are what the process wrote', async () => {
    expect(await readFile(join(root, 'A2'), 'utf8')).toBe('AAAA');
    expect(await readFile(join(root, 'B'), 'utf8')).toBe('BBBBBBBB');
    expect(await readFile(join(root, 'C'), 'utf8')).toBe('CCCCccdddd');
  });

  it('keeps exactly the synced state when nothing unsynced survives', () => {
    const result = image(mulberry32(seed), 0, 0);
    expect([...result.files.keys()].sort()).toEqual(['A', 'C', 'D', 'E', 'old']);
    expect(text(result, 'D')).toBe('');
    expect(text(result, 'A')).toBe('AAAA');
    expect(text(result, 'C')).toBe('CCCCcc');
    expect(text(result, 'old')).toBe('OLD');
  });

  it('keeps what the process saw when every unsynced change survives whole', () => {
    const result = image(mulberry32(seed), 1, 0);
    expect([...result.files.keys()].sort()).toEqual(['A2', 'B', 'C', 'D', 'E']);
    expect(text(result, 'D')).toBe('11112222');
    expect(text(result, 'A2')).toBe('AAAA');
    expect(text(result, 'B')).toBe('BBBBBBBB');
    expect(text(result, 'C')).toBe('CCCCccdddd');
  });

  it('at random, every unsynced change is as the image says it chose', () => {
    const random = mulberry32(seed);
    const seen = new Set<string>();
    for (let round = 0; round < 200; round++) {
      const result = image(random, 0.5, 0.5);
      const said = (what: string) =>
        result.choices.filter((c) => c.endsWith(what)).map((c) => c.split(':')[0]);
      // The rename: exactly one of the two names, and the synced bytes under it.
      const renamed = said('rename A → A2')[0]!;
      expect(text(result, renamed === 'kept' ? 'A2' : 'A')).toBe('AAAA');
      expect(result.files.has(renamed === 'kept' ? 'A' : 'A2')).toBe(false);
      expect(result.files.has('old')).toBe(said('unlink old')[0] === 'undone');
      // B: its entry was never synced; if it survived, its one write is whole, torn or gone.
      const linked = said('link B')[0];
      if (linked === 'undone') expect(result.files.has('B')).toBe(false);
      else {
        const b = text(result, 'B')!;
        const write = result.choices.find(
          (c) => c.includes('write of B') || c.includes('dropped: write of B'),
        )!;
        if (write.startsWith('kept')) expect(b).toBe('BBBBBBBB');
        else if (write.startsWith('dropped')) expect(b).toBe('');
        else expect(b).toBe('BBBBBBBB'.slice(0, Number(/, (\d+) of 8 B/.exec(write)![1])));
        seen.add(`B ${write.split(':')[0]}`);
      }
      // C: the synced prefix always, then the unsynced append whole, torn or not at all.
      const c = text(result, 'C')!;
      expect(c.startsWith('CCCCcc')).toBe(true);
      expect('CCCCccdddd'.startsWith(c)).toBe(true);
      seen.add(`rename ${renamed}`);
    }
    // Two hundred draws at one half see every kind of outcome.
    for (const outcome of ['B kept', 'B dropped', 'B torn', 'rename kept', 'rename undone'])
      expect(seen.has(outcome), outcome).toBe(true);
  });

  it("in 'prefix' order, a later change of a file or directory survives only with every earlier one", () => {
    const random = mulberry32(seed);
    const seen = new Set<string>();
    for (let round = 0; round < 200; round++) {
      const result = image(random, 0.5, 0.5, 'prefix');
      // The root's changes in order: B created, A renamed to A2, old unlinked.
      const unlinked = !result.files.has('old');
      const renamed = result.files.has('A2');
      const created = result.files.has('B');
      if (unlinked) expect(renamed).toBe(true);
      if (renamed) expect(created).toBe(true);
      expect(result.files.has('A')).toBe(!renamed);
      const c = text(result, 'C')!;
      expect(c.startsWith('CCCCcc') && 'CCCCccdddd'.startsWith(c)).toBe(true);
      seen.add(`${created}${renamed}${unlinked}`);
    }
    for (const outcome of ['falsefalsefalse', 'truefalsefalse', 'truetruefalse', 'truetruetrue'])
      expect(seen.has(outcome), outcome).toBe(true);
  });

  it("in 'subset' order, pages survive on their own, each holding its writes up to some moment", () => {
    const random = mulberry32(seed);
    let laterWithoutEarlier = 0;
    for (let round = 0; round < 200; round++) {
      const result = image(random, 0.5, 0);
      const d = result.files.get('D')!;
      // One page: the second write never without the first.
      expect(['', '1111', '11112222']).toContain(d.toString('latin1'));
      const e = result.files.get('E')!;
      const first = e.subarray(0, 4).toString('latin1');
      const second = e.length >= 4100 ? e.subarray(4096, 4100).toString('latin1') : '';
      expect(['', '1111', '\0\0\0\0']).toContain(first);
      expect(['', '2222']).toContain(second);
      if (second === '2222' && first !== '1111') laterWithoutEarlier++;
    }
    // Two pages: the later one can reach the disk alone.
    expect(laterWithoutEarlier).toBeGreaterThan(0);
  });
});
