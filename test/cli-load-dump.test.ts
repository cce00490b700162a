/**
 * `lightning-cli load` and `dump`, end to end in child processes: a dump loads back into an equal
 * database (JSON lines and CSV, with unicode, awkward characters and binary values), bad lines stop a
 * load at their line number or are skipped and counted, and files are never half written.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { contentsOf, databaseFactory } from './support/cli-databases.js';
import { runCli } from './support/cli-runner.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-load-dump-');

type Entry = [Buffer, Buffer];

const createDatabase = databaseFactory(temporaryDirectory, 'source');

function sorted(entries: readonly Entry[]): Entry[] {
  const byKey = new Map(entries.map(([key, value]) => [key.toString('hex'), [key, value] as Entry]));
  return [...byKey.values()].sort(([a], [b]) => Buffer.compare(a, b));
}

/** Text entries with what breaks naive formats: commas, quotes, line breaks, tabs, emoji, nothing. */
function awkwardTextEntries(): Entry[] {
  const texts = [
    ['plain', 'value'],
    ['comma,key', 'a, b, c'],
    ['quote"key', 'she said "hi"'],
    ['line\nbreak', 'one\r\ntwo\nthree'],
    ['tab\tkey', '\t'],
    ['ünïcödé', '日本語のテキスト 🚀'],
    ['empty value', ''],
    ['', 'the empty key'],
    ['{"json":1}', '{"looks": "like json"}'],
  ];
  return texts.map(([key, value]) => [Buffer.from(key!), Buffer.from(value!)]);
}

/** Random binary keys and values (most not valid UTF-8), from `seed`. */
function binaryEntries(seed: number, count: number): Entry[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => [
    Buffer.concat([Buffer.from([0xfe, i & 0xff]), randomBytes(random, random() % 12)]),
    randomBytes(random, random() % 300),
  ]);
}

describe('lightning-cli dump and load', () => {
  it('round-trips JSON lines: unicode, awkward text and binary values, to a file and through stdout', async () => {
    const seed = seedFromEnv(0xd0);
    const entries = sorted([...awkwardTextEntries(), ...binaryEntries(seed, 200)]);
    const source = await createDatabase(entries);
    const scratch = await temporaryDirectory();
    const file = join(scratch, 'dump.jsonl');

    const dumped = await runCli(['dump', source, file]);
    expect(dumped.code, `seed ${seed}`).toBe(0);
    expect(dumped.stdout).toContain(`dumped ${entries.length} entries`);
    expect(dumped.stderr).toContain(`dump: ${entries.length}/${entries.length} rows`);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(entries.length);
    expect(JSON.parse(lines.find((line) => line.includes('ünïcödé'))!)).toEqual({
      key: 'ünïcödé',
      value: '日本語のテキスト 🚀',
    });
    expect(lines.some((line) => line.includes('"valueEncoding":"base64"'))).toBe(true);
    expect((await runCli(['dump', source])).stdout).toBe(await readFile(file, 'utf8'));

    const target = join(scratch, 'target');
    const loaded = await runCli(['load', target, file, '--create', '--partitions', '3']);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toContain(`loaded ${entries.length} entries`);
    expect(loaded.stderr).toMatch(/load: .* rows, .*, done\n/);
    expect(await contentsOf(target), `seed ${seed}`).toEqual(entries);
  });

  it('round-trips CSV: UTF-8 text with quotes and line breaks, binary data in base64', async () => {
    const seed = seedFromEnv(0xc5);
    const text = sorted(awkwardTextEntries());
    const scratch = await temporaryDirectory();
    const textFile = join(scratch, 'text.csv');
    expect((await runCli(['dump', await createDatabase(text), textFile, '-q'])).code).toBe(0);
    expect((await readFile(textFile, 'utf8')).split('\n')[0]).toBe('key,value');
    const textTarget = join(scratch, 'text-db');
    expect((await runCli(['load', textTarget, textFile, '--create', '-q'])).code).toBe(0);
    expect(await contentsOf(textTarget)).toEqual(text);

    const binary = sorted(binaryEntries(seed, 100));
    const binarySource = await createDatabase(binary);
    const refused = join(scratch, 'refused.csv');
    const lossy = await runCli(['dump', binarySource, refused]);
    expect(lossy.code).toBe(2);
    expect(lossy.stderr).toContain('is not valid UTF-8, which CSV in utf8 cannot carry');
    expect(await readdir(scratch)).not.toContain('refused.csv');
    expect((await readdir(scratch)).filter((name) => name.includes('.tmp-'))).toEqual([]);

    const binaryFile = join(scratch, 'binary.csv');
    expect(
      (await runCli(['dump', binarySource, binaryFile, '--encoding', 'base64', '--no-header'])).code,
    ).toBe(0);
    const binaryTarget = join(scratch, 'binary-db');
    const args = ['load', binaryTarget, binaryFile, '--create', '--encoding', 'base64', '--no-header'];
    expect((await runCli(args)).code).toBe(0);
    expect(await contentsOf(binaryTarget), `seed ${seed}`).toEqual(binary);
  });

  it('stops at the first bad line with its number, after loading every line before it', async () => {
    const scratch = await temporaryDirectory();
    const file = join(scratch, 'input.jsonl');
    const lines = [
      '{"key":"a","value":"1"}',
      '',
      '{"key":"b","value":"2"}',
      '{"key":"c","value":3}',
      '{"key":"d","value":"4"}',
    ];
    await writeFile(file, `${lines.join('\n')}\n`);
    const target = join(scratch, 'db');
    const run = await runCli(['load', target, file, '--create', '-q']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${file}: line 4: "value" must be a string; got 3.`);
    expect(run.stderr).toContain('The 2 entries before it were loaded; --skip-bad skips bad lines');
    expect((await contentsOf(target)).map(([key]) => key.toString())).toEqual(['a', 'b']);
  });

  it('skips and counts bad lines with --skip-bad, in JSON lines and CSV', async () => {
    const scratch = await temporaryDirectory();
    const jsonl = join(scratch, 'input.jsonl');
    await writeFile(
      jsonl,
      [
        '{"key":"a","value":"1"}',
        'not json',
        '{"key":"b"}',
        '{"key":"zz","keyEncoding":"hex","value":"x"}',
        `{"key":"${'k'.repeat(1025)}","value":"too long a key"}`,
        '["key","value"]',
        '{"key":"a","value":"last wins"}',
        '{"key":"6869","keyEncoding":"hex","value":"aGk=","valueEncoding":"base64","extra":true}',
      ].join('\n'),
    );
    const target = join(scratch, 'db');
    const run = await runCli(['load', target, jsonl, '--create', '--skip-bad', '--json', '-q']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ command: 'load', format: 'jsonl', rows: 3, badLines: 5 });
    expect(summary.skipped.map((bad: { line: number }) => bad.line)).toEqual([2, 3, 4, 5, 6]);
    expect(summary.skipped[1].error).toBe('"value" must be a string; it is missing');
    expect(summary.skipped[2].error).toContain('the key is not hex');
    expect(summary.skipped[3].error).toBe('the key is 1025 bytes; the limit is 1024');
    expect(await contentsOf(target)).toEqual([
      [Buffer.from('a'), Buffer.from('last wins')],
      [Buffer.from('hi'), Buffer.from('hi')],
    ]);

    const csv = join(scratch, 'input.csv');
    await writeFile(
      csv,
      'id,Key,value\r\n1,x,"multi\nline"\r\n2,only-two-fields\r\n3,y,"unclosed"junk\r\n4,z,"ok, ""quoted"""\r\n',
    );
    const csvRun = await runCli(['load', target, csv, '--skip-bad']);
    expect(csvRun.code, csvRun.stderr).toBe(0);
    expect(csvRun.stdout).toContain('loaded 2 entries');
    expect(csvRun.stdout).toContain('skipped 2 bad line(s):');
    expect(csvRun.stdout).toContain('line 4: expected 3 (as in the header) fields, found 2');
    expect(csvRun.stdout).toContain('line 5: unexpected "j" after a closing quote');
    const db = await open(target, { workers: 1 });
    try {
      expect(db.getString('x')).toBe('multi\nline');
      expect(db.getString('z')).toBe('ok, "quoted"');
      expect(db.get('y')).toBeUndefined();
    } finally {
      await db.close();
    }
  });

  it('loads from stdin, and refuses a missing database, input file or header', async () => {
    const scratch = await temporaryDirectory();
    const target = join(scratch, 'db');
    const input = '{"key":"k1","value":"v1"}\n{"key":"k2","value":"v2"}';
    const missing = await runCli(['load', target, '-'], { input });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('add --create');
    await expect(stat(target)).rejects.toThrow(/ENOENT/);

    expect((await runCli(['load', target, '-', '--create'], { input })).code).toBe(0);
    expect((await contentsOf(target)).map(([key, value]) => `${key}=${value}`)).toEqual(['k1=v1', 'k2=v2']);

    const noFile = await runCli(['load', target, join(scratch, 'absent.jsonl')]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('no input file');
    const headless = join(scratch, 'headless.csv');
    await writeFile(headless, 'a,1\nb,2\n');
    const badHeader = await runCli(['load', target, headless]);
    expect(badHeader.code).toBe(2);
    expect(badHeader.stderr).toContain('line 1: the CSV header "a,1" names no "key" and "value" columns');
    expect((await runCli(['load', target, headless, '--no-header', '-q'])).code).toBe(0);
    expect((await runCli(['load', target, headless, '--format', 'xml'])).code).toBe(2);
    expect((await contentsOf(target)).length).toBe(4);
  });

  it('dump replaces an existing file only with --force', async () => {
    const source = await createDatabase([[Buffer.from('k'), Buffer.from('v')]]);
    const file = join(await temporaryDirectory(), 'out.jsonl');
    await writeFile(file, 'previous dump\n');
    const refused = await runCli(['dump', source, file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${file} exists; add --force to replace it`);
    expect(await readFile(file, 'utf8')).toBe('previous dump\n');
    expect((await runCli(['dump', source, file, '--force', '-q'])).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('{"key":"k","value":"v"}\n');
  });
});
