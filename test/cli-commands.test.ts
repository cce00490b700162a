/**
 * The data commands of `lightning-cli` (get, put, del, scan), end to end in a child process against
 * real database directories: their output, their exit codes for bad arguments (2), a missing
 * database (3), a database held by a live process (5) and a missing key (6), and scan's bounds, order
 * and limit against a sorted model.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { databaseFactory } from './support/cli-databases.js';
import { runCli, runCliEach } from './support/cli-runner.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-commands-');

const createDatabase = databaseFactory(temporaryDirectory, 'db');

/** The pid of a process that has exited, for a lock left behind by a dead holder. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('lightning-cli get, put, del', () => {
  it('stores and prints UTF-8 keys and values, and exits 6 for a missing key', async () => {
    const dir = await createDatabase([]);
    expect(await runCli(['put', dir, 'clé:1', 'värde ✓ 🚀'])).toMatchObject({ code: 0, stdout: '' });
    const got = await runCli(['get', dir, 'clé:1']);
    expect(got).toMatchObject({ code: 0, stdout: 'värde ✓ 🚀\n' });
    const json = await runCli(['get', dir, 'clé:1', '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ key: 'clé:1', value: 'värde ✓ 🚀' });

    const missing = await runCli(['get', dir, 'nope']);
    expect(missing.code, missing.stderr).toBe(6);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('not found: no key "nope"');

    for (const [args, code] of [
      [['del', dir, 'clé:1'], 0],
      [['get', dir, 'clé:1'], 6],
      [['del', dir, 'clé:1'], 0],
    ] as const) {
      const run = await runCli(args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(code);
    }
  });

  it('puts binary values from a file and from stdin, and prints them exactly or encoded', async () => {
    const dir = await createDatabase([]);
    const bytes = randomBytes(mulberry32(seedFromEnv(7)), 3000);
    const file = join(await temporaryDirectory(), 'blob.bin');
    await writeFile(file, bytes);
    expect((await runCli(['put', dir, 'blob', '--file', file])).code).toBe(0);
    expect((await runCli(['put', dir, 'piped', '--file', '-'], { input: bytes.subarray(0, 100) })).code).toBe(
      0,
    );

    const exact = await runCli(['get', '-n', dir, 'blob']);
    expect(exact.code).toBe(0);
    expect(exact.stdoutBytes.equals(bytes)).toBe(true);
    const base64 = await runCli(['get', dir, 'piped', '--value-encoding', 'base64']);
    expect(base64.stdout).toBe(`${bytes.subarray(0, 100).toString('base64')}\n`);

    // Keys in hex: 0x00 0xff is no UTF-8 string, and --json marks what it had to encode.
    expect((await runCli(['put', dir, '00ff', 'cafe', '--encoding', 'hex'])).code).toBe(0);
    const hex = await runCli(['get', dir, '00ff', '--key-encoding', 'hex', '--json']);
    // The value is in UTF-8 here, and 0xca 0xfe is not UTF-8: --json writes it as base64, marked.
    expect(JSON.parse(hex.stdout)).toEqual({
      key: '00ff',
      keyEncoding: 'hex',
      value: Buffer.from([0xca, 0xfe]).toString('base64'),
      valueEncoding: 'base64',
    });
    const db = await open(dir);
    try {
      expect(db.get(Buffer.from([0, 255]))).toEqual(Buffer.from([0xca, 0xfe]));
      expect(db.get('blob')).toEqual(bytes);
    } finally {
      await db.close();
    }
  });

  it('exits 3 without a database and creates one only with --create in a new or empty directory', async () => {
    const parent = await temporaryDirectory();
    const missing = join(parent, 'missing');
    const missingArgs = [
      ['get', missing, 'k'],
      ['put', missing, 'k', 'v'],
      ['del', missing, 'k'],
      ['scan', missing],
      ['stats', missing],
      ['checkpoint', missing],
    ];
    for (const [index, run] of (await runCliEach(missingArgs)).entries()) {
      const args = missingArgs[index]!.join(' ');
      expect(run.code, args).toBe(3);
      expect(run.stderr, args).toContain(`no database at ${missing}: it does not exist`);
    }
    expect((await runCli(['put', missing, 'k', 'v'])).stderr).toContain('add --create');
    await expect(stat(missing)).rejects.toThrow(/ENOENT/);

    const busy = join(parent, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'notes.txt'), 'not a database');
    const refused = await runCli(['put', busy, 'k', 'v', '--create']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('is not empty');
    expect(await readdir(busy)).toEqual(['notes.txt']);

    expect((await runCli(['put', missing, 'k', 'v', '--create', '--partitions', '3'])).code).toBe(0);
    const stats = await runCli(['stats', missing, '--json']);
    expect(JSON.parse(stats.stdout)).toMatchObject({ partitions: 3, entries: 1 });
  });

  it('exits 2 on bad arguments, printing nothing on stdout', async () => {
    const dir = await createDatabase([['k', 'v']]);
    const file = join(dir, 'LIGHTNING.json');
    // Only the --partitions 2 run opens the database (and fails): the others fail before opening, so
    // running them together cannot meet a lock.
    const badArgs = [
      ['get', dir],
      ['get', dir, 'k', 'extra'],
      ['get', dir, 'k', '--frobnicate'],
      ['get', dir, 'k', '--encoding', 'rot13'],
      ['get', dir, 'abc', '--key-encoding', 'hex'],
      ['get', dir, '!!', '--key-encoding', 'base64'],
      ['get', '', 'k'],
      ['put', dir, 'k'],
      ['put', dir, 'k', 'v', '--file', file],
      ['put', dir, 'k', '--file', join(dir, 'no-such-file')],
      ['put', dir, 'k', 'v', '--partitions', '0'],
      ['put', dir, 'k', 'v', '--partitions', '2'],
      ['scan', dir, '--limit', '-1'],
      ['scan', dir, '--gte', 'a', '--gt', 'b'],
      ['scan', dir, '--prefix', 'a', '--lt', 'b'],
      ['scan', dir, '--format', 'xml'],
      ['frobnicate', dir],
    ];
    for (const [index, run] of (await runCliEach(badArgs)).entries()) {
      const args = badArgs[index]!.join(' ');
      expect(run.code, args).toBe(2);
      expect(run.stdout, args).toBe('');
      expect(run.stderr.length, args).toBeGreaterThan(0);
    }
    expect((await runCli(['get', dir, 'k'])).stdout).toBe('v\n');
  });

  it("exits 5 while another live process holds the database, and takes over a dead holder's lock", async () => {
    const dir = await createDatabase([['k', 'v']]);
    const db = await open(dir, { workers: 1 });
    try {
      const lockedArgs = [
        ['get', dir, 'k'],
        ['put', dir, 'k', 'w'],
        ['scan', dir],
        ['stats', dir],
      ];
      for (const [index, run] of (await runCliEach(lockedArgs)).entries()) {
        const args = lockedArgs[index]!.join(' ');
        expect(run.code, args).toBe(5);
        expect(run.stderr, args).toContain(`ERR_LOCKED: ${dir} is open in process ${process.pid}`);
      }
      expect(db.getString('k')).toBe('v');
    } finally {
      await db.close();
    }
    await writeFile(join(dir, 'LOCK'), `${await deadPid()}\n`);
    expect(await runCli(['get', dir, 'k'])).toMatchObject({ code: 0, stdout: 'v\n' });
    await expect(stat(join(dir, 'LOCK'))).rejects.toThrow(/ENOENT/);
  });
});

/** The keys of `model` within the scan's bounds, in order, as the CLI should print them. */
function expectedScan(
  model: Map<string, string>,
  bounds: { gte?: string; gt?: string; lte?: string; lt?: string },
  reverse: boolean,
  limit: number,
): [string, string][] {
  const inRange = (key: Buffer) =>
    (bounds.gte === undefined || Buffer.compare(key, Buffer.from(bounds.gte)) >= 0) &&
    (bounds.gt === undefined || Buffer.compare(key, Buffer.from(bounds.gt)) > 0) &&
    (bounds.lte === undefined || Buffer.compare(key, Buffer.from(bounds.lte)) <= 0) &&
    (bounds.lt === undefined || Buffer.compare(key, Buffer.from(bounds.lt)) < 0);
  const sorted = [...model].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const selected = sorted.filter(([key]) => inRange(Buffer.from(key)));
  if (reverse) selected.reverse();
  return selected.slice(0, limit);
}

describe('lightning-cli scan', () => {
  it("returns the model's entries within random bounds, in order, reversed and limited", async () => {
    const seed = seedFromEnv(0x5ca9);
    const random = mulberry32(seed);
    const model = new Map<string, string>();
    // Keys share prefixes and include non-ASCII, so byte order and UTF-8 order both matter.
    const alphabet = ['a', 'b', 'é', 'z', '0', '~'];
    const keyOf = () =>
      Array.from({ length: 1 + (random() % 4) }, () => alphabet[random() % alphabet.length]).join('');
    for (let i = 0; i < 300; i++) model.set(keyOf(), `v${i}`);
    const dir = await createDatabase(model);
    const rounds = Array.from({ length: 6 }, () => {
      const bounds: { gte?: string; gt?: string; lte?: string; lt?: string } = {};
      const lower = random() % 3;
      if (lower === 1) bounds.gte = keyOf();
      if (lower === 2) bounds.gt = keyOf();
      const upper = random() % 3;
      if (upper === 1) bounds.lte = keyOf();
      if (upper === 2) bounds.lt = keyOf();
      const reverse = random() % 2 === 1;
      const limit = random() % 3 === 0 ? Infinity : random() % 40;
      const args = ['scan', dir, '--format', 'jsonl'];
      for (const [name, key] of Object.entries(bounds)) args.push(`--${name}`, key);
      if (reverse) args.push('--reverse');
      if (limit !== Infinity) args.push('--limit', String(limit));
      return { bounds, reverse, limit, args };
    });
    // One at a time: each run takes the database's lock, so a second one at once would get exit 5.
    for (const { bounds, reverse, limit, args } of rounds) {
      const run = await runCli(args);
      const context = `seed ${seed}, ${args.slice(2).join(' ')}`;
      expect(run.code, context).toBe(0);
      const lines = run.stdout.split('\n').filter((line) => line !== '');
      const got = lines.map((line) => JSON.parse(line) as { key: string; value: string });
      expect(
        got.map(({ key, value }) => [key, value]),
        context,
      ).toEqual(expectedScan(model, bounds, reverse, limit));
    }
  });

  it('selects a prefix, prints text or keys only, and CSV', async () => {
    const dir = await createDatabase([
      ['user:1', 'alice'],
      ['user:2', 'bob, "the builder"'],
      ['user;', 'after the prefix'],
      ['user', 'before it'],
      [Buffer.from([0xff, 0xff]), 'x'],
    ]);
    expect((await runCli(['scan', dir, '--prefix', 'user:'])).stdout).toBe(
      'user:1\talice\nuser:2\tbob, "the builder"\n',
    );
    expect((await runCli(['scan', dir, '-p', 'user', '-k', '-r'])).stdout).toBe(
      'user;\nuser:2\nuser:1\nuser\n',
    );
    expect((await runCli(['scan', dir, '--prefix', 'user:', '--format', 'csv'])).stdout).toBe(
      'key,value\nuser:1,alice\nuser:2,"bob, ""the builder"""\n',
    );
    // A prefix whose bytes are all 0xff has no upper bound: it runs to the end.
    expect((await runCli(['scan', dir, '--prefix', 'ff', '--key-encoding', 'hex', '-k'])).stdout).toBe(
      'ffff\n',
    );
    // JSON lines stay lossless: a key that is not UTF-8 is written as base64 and marked.
    expect((await runCli(['scan', dir, '--gt', 'user;', '--format', 'jsonl'])).stdout).toBe(
      '{"key":"//8=","keyEncoding":"base64","value":"x"}\n',
    );
  });
});
