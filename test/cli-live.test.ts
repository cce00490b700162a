/**
 * `lightning-cli get|scan|stats|dump --url` against a database this test process holds open with an
 * admin server: real HTTP, real CLI child processes. Keys and values of arbitrary bytes survive the
 * trip; a missing or wrong token is refused (401 over HTTP, exit 2 from the CLI); the CLI refuses a
 * server that serves another directory; and without --url a locked database says who holds it and
 * how to reach it (exit 5).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import type { AdminServer } from '../src/main/admin/admin-server.js';
import { parseJsonLine } from '../src/main/cli/entry-format.js';
import { runCliEach } from './support/cli-runner.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-cli-live-');
const cleanups: (() => Promise<unknown>)[] = [];
const token = 'live-test-token-0123456789';
const utf8 = { key: 'utf8', value: 'utf8' } as const;

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

type Model = Map<string, [Buffer, Buffer]>;

/** Opens a database with `count` seeded entries (binary keys and values, and "user:" keys), served. */
async function servedDatabase(
  seed: number,
  count: number,
): Promise<{ dir: string; db: Database; server: AdminServer; model: Model }> {
  const random = mulberry32(seed);
  const dir = join(await temporaryDirectory(), 'db');
  const db = await open(dir, { partitions: 4, workers: 1 });
  cleanups.push(() => db.close());
  const server = await db.serveAdmin({ port: 0, token });
  const model: Model = new Map();
  for (let i = 0; i < count; i++) {
    const key =
      i % 3 === 0
        ? Buffer.from(`user:${String(i).padStart(4, '0')}`)
        : randomBytes(random, 1 + (random() % 24));
    // Every byte value, newlines, quotes and invalid UTF-8 included.
    const value = i % 5 === 0 ? Buffer.from(`"line\n${i}"\t✓`) : randomBytes(random, random() % 200);
    model.set(key.toString('hex'), [key, value]);
    await db.put(key, value);
  }
  return { dir, db, server, model };
}

function sorted(model: Model): [Buffer, Buffer][] {
  return [...model.values()].sort(([a], [b]) => Buffer.compare(a, b));
}

function parseLines(text: string): [Buffer, Buffer][] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const { key, value } = parseJsonLine(line, utf8);
      return [key, value];
    });
}

describe('the admin server data endpoints', () => {
  it('serve get, scan, dump and stats with the token only, keeping every byte', async () => {
    const seed = seedFromEnv(0x11fe_0001);
    console.log(`cli live http seed ${seed}`);
    const { db, server, model } = await servedDatabase(seed, 120);
    const authorized = { headers: { authorization: `Bearer ${token}` } };
    for (const path of ['/v1/get?key=x', '/v1/scan', '/v1/dump', '/v1/stats']) {
      expect((await fetch(`${server.url}${path}`)).status, `${path} without a token`).toBe(401);
      const wrong = { headers: { authorization: `Bearer ${token.slice(0, -1)}X` } };
      expect((await fetch(`${server.url}${path}`, wrong)).status, `${path} with a wrong token`).toBe(401);
    }
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);

    const [someKey, someValue] = sorted(model)[7]!;
    const got = await fetch(
      `${server.url}/v1/get?keyEncoding=hex&key=${someKey.toString('hex')}`,
      authorized,
    );
    expect(got.status).toBe(200);
    expect(parseLines(await got.text())).toEqual([[someKey, someValue]]);
    const missing = await fetch(`${server.url}/v1/get?key=no-such-key`, authorized);
    expect(missing.status).toBe(404);

    const dump = await fetch(`${server.url}/v1/dump`, authorized);
    expect(dump.headers.get('content-type')).toContain('application/x-ndjson');
    expect(parseLines(await dump.text())).toEqual(sorted(model));

    const users = sorted(model).filter(([key]) => key.toString('latin1').startsWith('user:'));
    const scan = await fetch(`${server.url}/v1/scan?prefix=user:&reverse=true&limit=5`, authorized);
    expect(parseLines(await scan.text())).toEqual(users.reverse().slice(0, 5));
    const bad = await fetch(`${server.url}/v1/scan?gte=a&gt=b`, authorized);
    expect(bad.status).toBe(400);

    const stats = (await (await fetch(`${server.url}/v1/stats`, authorized)).json()) as { entries: number };
    expect(stats.entries).toBe(db.stats().entries);
    expect(stats.entries).toBe(model.size);
  });
});

describe('lightning-cli read commands with --url', () => {
  it('read a database held open here; refuse without the token; say how when it is locked', async () => {
    const seed = seedFromEnv(0x11fe_0002);
    console.log(`cli live seed ${seed}`);
    const { dir, server, model } = await servedDatabase(seed, 60);
    const url = server.url;
    const [binaryKey, binaryValue] = sorted(model).find(
      ([key]) => !key.toString('latin1').startsWith('user:'),
    )!;
    const otherDir = await temporaryDirectory();
    const [get, scan, dump, stats, noToken, wrongToken, otherDatabase, locked] = await runCliEach([
      ['get', dir, binaryKey.toString('hex'), '--encoding', 'hex', '--url', url, '--token', token],
      ['scan', dir, '--prefix', 'user:', '--format', 'jsonl', '--url', url, '--token', token],
      ['dump', dir, '--url', url, '--token', token],
      ['stats', dir, '--json', '--url', url, '--token', token],
      ['get', dir, 'user:0000', '--url', url],
      ['get', dir, 'user:0000', '--url', url, '--token', `${token}-wrong`],
      ['get', otherDir, 'user:0000', '--url', url, '--token', token],
      ['get', dir, 'user:0000'],
    ]);
    expect(get!.stderr).toBe('');
    expect(get).toMatchObject({ code: 0, stdout: `${binaryValue.toString('hex')}\n` });
    expect(scan!.code, scan!.stderr).toBe(0);
    expect(parseLines(scan!.stdout)).toEqual(
      sorted(model).filter(([key]) => key.toString('latin1').startsWith('user:')),
    );
    expect(dump!.code, dump!.stderr).toBe(0);
    expect(parseLines(dump!.stdout)).toEqual(sorted(model));
    expect(stats!.code, stats!.stderr).toBe(0);
    expect(JSON.parse(stats!.stdout)).toMatchObject({ command: 'stats', entries: model.size, partitions: 4 });

    for (const [run, what] of [
      [noToken!, 'no token'],
      [wrongToken!, 'a wrong token'],
    ] as const) {
      expect(run.code, `${what}: ${run.stderr}`).toBe(2);
      expect(run.stderr, what).toContain('refused the request (401)');
      expect(run.stdout, what).toBe('');
    }
    expect(otherDatabase!.code, otherDatabase!.stderr).toBe(2);
    expect(otherDatabase!.stderr).toContain(`serves ${dir}`);
    expect(locked!.code, locked!.stderr).toBe(5);
    expect(locked!.stderr).toContain(`is open in process ${process.pid}`);
    expect(locked!.stderr).toContain('--url http://127.0.0.1:<port>');
  });
});
