/**
 * Many writes in flight at once: 10,000 puts issued without awaiting all resolve and are all
 * readable, also with values of mixed sizes up to 5 MB (larger than a command-ring record, 256 KiB,
 * and than the whole ring, 1 MiB, so they travel as fragments while other writes interleave); writes
 * to one key issued without awaiting apply in issue order; close() with writes in flight settles every
 * promise (resolved, or rejected with ERR_CLOSED) without hanging, and afterwards every method fails
 * with ERR_CLOSED; and a process that opens, writes and closes a database exits by itself.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test name.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { codeOf, within } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;

const seed = seedFromEnv(0xc0c0_0001);
const seedText = `0x${seed.toString(16)}`;

/**
 * A value whose every 4-byte word depends on (tag, position): a fragment delivered twice, dropped,
 * reordered or mixed with another value's fragment cannot reproduce it.
 */
function patternValue(tag: number, length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = (tag * 0x9e3779b1 + 1) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = (x >>> 0) ^ i;
  }
  return Buffer.from(words.buffer, 0, length);
}

const openDatabases: Database[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const db of openDatabases.splice(0)) {
    await within(db.close(), 10_000, 'close() in afterEach').catch(() => {});
  }
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-'));
  tempDirs.push(dir);
  return dir;
}

async function openDb(options: { partitions: number; workers: number }): Promise<Database> {
  const db = await open(tempDir(), options);
  openDatabases.push(db);
  return db;
}

describe(`writes in flight (LIGHTNING_SEED=${seedText})`, () => {
  it('10,000 puts issued without awaiting all resolve, and each is readable when its promise resolves', async () => {
    const db = await openDb({ partitions: 16, workers: 2 });
    const count = 10_000;
    const staleOnResolve: string[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const key = `k:${i}`;
      const value = `value ${i} ${seed}`;
      pending.push(
        db.put(key, value).then(() => {
          // Checked at the moment of resolution, while thousands of other writes are still queued.
          if (db.getString(key) !== value) staleOnResolve.push(key);
        }),
      );
    }
    await within(Promise.all(pending), 20_000, `${count} outstanding puts did not all resolve`);
    expect(staleOnResolve, 'keys not readable when their put resolved').toEqual([]);
    for (let i = 0; i < count; i++) {
      const got = db.getString(`k:${i}`);
      if (got !== `value ${i} ${seed}`) expect.fail(`k:${i} reads ${String(got)} after all puts resolved`);
    }
    expect(db.stats().entries).toBe(count);
    let scanned = 0;
    for (const _entry of db.range({ gte: 'k:', lt: 'k;' })) scanned++;
    expect(scanned, 'range over all written keys').toBe(count);
  });

  it('mixed value sizes up to 5 MB, issued without awaiting, all arrive intact', async () => {
    const db = await openDb({ partitions: 4, workers: 2 });
    const random = mulberry32(seed ^ 0x5151);
    // Edges of the ring: a record's maximum (256 KiB) and the ring's capacity (1 MiB), then 1–5 MB.
    const bigSizes = [
      256 * 1024 - 64,
      256 * 1024,
      256 * 1024 + 1,
      1024 * 1024,
      1024 * 1024 + 1,
      1_000_003,
      2_500_000,
      4 * 1024 * 1024 + 7,
      5_000_000,
    ];
    const expected = new Map<string, Buffer>();
    const pending: Promise<void>[] = [];
    const staleOnResolve: string[] = [];
    // Checked at resolution: a big put queued behind small ones must not resolve with them.
    const putChecked = (key: string, value: Buffer): Promise<void> =>
      db.put(key, value).then(() => {
        if (!db.get(key)?.equals(value)) staleOnResolve.push(`${key} (${value.length} bytes)`);
      });
    let tag = 0;
    for (let i = 0; i < 3000; i++) {
      const roll = random() % 100;
      const size =
        roll < 70 ? random() % 64 : roll < 95 ? 64 + (random() % 4000) : 4000 + (random() % 120_000);
      const key = `mixed:${i}`;
      const value = patternValue(++tag, size);
      expected.set(key, value);
      pending.push(putChecked(key, value));
      // The big ones are spread through the small ones, so fragments interleave with other records.
      if (i % 300 === 150 && bigSizes.length > 0) {
        const bigKey = `big:${i}`;
        const big = patternValue(++tag, bigSizes.shift()!);
        expected.set(bigKey, big);
        pending.push(putChecked(bigKey, big));
      }
    }
    for (const size of bigSizes) {
      const big = patternValue(++tag, size);
      expected.set(`big:tail:${size}`, big);
      pending.push(putChecked(`big:tail:${size}`, big));
    }
    await within(Promise.all(pending), 20_000, 'mixed-size puts did not all resolve');
    expect(staleOnResolve, 'puts not readable when their promise resolved').toEqual([]);
    for (const [key, value] of expected) {
      const got = db.get(key);
      if (got === undefined || !value.equals(got)) {
        expect.fail(
          `${key}: expected ${value.length} bytes, got ${got === undefined ? 'undefined' : `${got.length} differing bytes`}`,
        );
      }
    }
    expect(db.stats().entries).toBe(expected.size);
  });

  it('writes to one key issued without awaiting apply in issue order, big and small mixed', async () => {
    const db = await openDb({ partitions: 4, workers: 2 });
    // A big value travels as many fragments; a small one issued after it must still land after it.
    const a = patternValue(1, 3_000_000);
    const b = Buffer.from('small');
    const c = patternValue(2, 2_000_000);
    const d = patternValue(3, 1_100_000);
    const writes = [
      db.put('order', a),
      db.put('order', b),
      db.put('order', c),
      db.del('order'),
      db.put('order', d),
      db.put('gone', c),
      db.put('gone', b),
      db.del('gone'),
      db.batch([{ type: 'put', key: 'via-batch', value: a }]),
      db.put('via-batch', b),
    ];
    await within(Promise.all(writes), 15_000, 'ordered writes did not resolve');
    expect(db.get('order')?.equals(d), "'order' holds the last value written").toBe(true);
    expect(db.get('gone'), "'gone' was deleted last").toBeUndefined();
    expect(db.getString('via-batch'), 'a put issued after a batch lands after it').toBe('small');
  });

  it('close() with writes in flight: every promise settles, close resolves, then everything is ERR_CLOSED', async () => {
    const db = await openDb({ partitions: 8, workers: 2 });
    const count = 5000;
    const openPhase = 500;
    const outcomes: Array<Promise<string>> = [];
    let verifiedOnResolve = 0;
    const wrongOnResolve: string[] = [];
    const issue = (i: number): void => {
      const key = `inflight:${i}`;
      const value = i % 1000 === 999 ? patternValue(i + 1, 600_000) : Buffer.from(`v${i}`);
      outcomes.push(
        db.put(key, value).then(
          () => {
            // Resolved means applied. Once close() has begun reads may be refused (ERR_CLOSED), so
            // this can only be verified for the writes that resolve before it.
            try {
              const got = db.get(key);
              if (got === undefined || !value.equals(got)) wrongOnResolve.push(key);
              else verifiedOnResolve++;
            } catch (error) {
              if (codeOf(error) !== 'ERR_CLOSED') wrongOnResolve.push(`${key}: ${codeOf(error)}`);
            }
            return 'resolved';
          },
          (error: unknown) => codeOf(error),
        ),
      );
    };
    for (let i = 0; i < openPhase; i++) issue(i);
    await within(Promise.all(outcomes), 10_000, 'the first writes never settled');
    expect(verifiedOnResolve, 'writes resolved while open are readable at resolution').toBe(openPhase);
    // The rest, big values included, are all still in flight when close() is called below.
    for (let i = openPhase; i < count; i++) issue(i);
    outcomes.push(db.del('inflight:1').then(() => 'resolved', codeOf));
    outcomes.push(db.batch([{ type: 'put', key: 'inflight:b', value: 'b' }]).then(() => 'resolved', codeOf));

    const closing = db.close();
    // Issued after close() began: must not be accepted into a closing database and then dropped.
    const late = db.put('late', 'x').then(() => 'resolved', codeOf);
    const secondClose = db.close();

    const settled = await within(Promise.all(outcomes), 15_000, 'writes in flight at close() never settled');
    await within(closing, 15_000, 'close() with writes in flight did not resolve');
    await within(secondClose, 5000, 'a second, concurrent close() did not resolve');
    const lateOutcome = await within(late, 5000, 'a put issued after close() never settled');

    const counts = new Map<string, number>();
    for (const outcome of settled) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    const unexpected = [...counts.keys()].filter(
      (outcome) => outcome !== 'resolved' && outcome !== 'ERR_CLOSED',
    );
    expect(unexpected, `outcomes of writes in flight at close: ${JSON.stringify([...counts])}`).toEqual([]);
    expect(wrongOnResolve, 'resolved puts whose value was not readable at resolution').toEqual([]);
    expect(['resolved', 'ERR_CLOSED']).toContain(lateOutcome);
    console.log(
      `[db-concurrency] ${count - openPhase + 2} writes in flight at close(); outcomes of all: ${JSON.stringify([...counts])}, ` +
        `${verifiedOnResolve} verified on resolve, put after close(): ${lateOutcome}`,
    );

    await expectClosed(db);
    await within(db.close(), 5000, 'close() after close() did not resolve');
  });

  it('a process that opens, writes and closes a database exits by itself', async () => {
    const dir = tempDir();
    const indexUrl = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href;
    const script = join(dir, 'child.mjs');
    // Writes are still in flight when close() is called, which is the harder case for leftover handles.
    writeFileSync(
      script,
      `import { open } from ${JSON.stringify(indexUrl)};
const db = await open(${JSON.stringify(join(dir, 'db'))}, { partitions: 4, workers: 2 });
const puts = [];
for (let i = 0; i < 2000; i++) puts.push(db.put('k' + i, 'v' + i));
await Promise.all(puts);
if (db.getString('k1999') !== 'v1999') { console.error('read-back failed'); process.exitCode = 3; }
for (let i = 0; i < 500; i++) db.put('late' + i, 'x'.repeat(i)).catch(() => {});
await db.close();
process.stdout.write('closed\\n');
`,
    );
    const repoRoot = fileURLToPath(new URL('..', import.meta.url));
    // cwd = repo root, so `--import tsx` resolves the repository's tsx.
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    let closedAt: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (closedAt === undefined && stdout.includes('closed')) closedAt = Date.now();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
      (resolve) => {
        child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
      },
    );
    try {
      // Start-up includes tsx compiling the sources for the main thread and the owner workers, which
      // takes well over 25 s on a 2-core machine under a heavy load: the bound only catches a hang.
      const result = await within(
        exited,
        150_000,
        `child did not exit (stdout: ${JSON.stringify(stdout)}, printed 'closed': ${closedAt !== undefined})`,
      );
      expect({ code: result.code, signal: result.signal, stderr: stderr.trim() }).toEqual({
        code: 0,
        signal: null,
        stderr: '',
      });
      expect(stdout).toContain('closed');
      // After close() nothing may keep the event loop alive: the exit follows within moments (a
      // leftover timer or handle would keep it alive for good; the bound leaves room for a loaded machine).
      expect(result.at - closedAt!, 'ms between close() resolving and the process exiting').toBeLessThan(
        30_000,
      );
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

/** After close, the write methods reject and the read methods throw, all with ERR_CLOSED. */
async function expectClosed(db: Database): Promise<void> {
  const writes: Array<[string, () => Promise<unknown>]> = [
    ['put', () => db.put('k', 'v')],
    ['del', () => db.del('k')],
    ['batch', () => db.batch([{ type: 'put', key: 'k', value: 'v' }])],
  ];
  for (const [name, call] of writes) {
    let promise: Promise<unknown>;
    try {
      promise = call();
    } catch (error) {
      expect.fail(`${name} after close threw synchronously (${codeOf(error)}) instead of rejecting`);
    }
    const outcome = await promise.then(() => 'resolved', codeOf);
    expect(outcome, `${name} after close`).toBe('ERR_CLOSED');
  }
  const reads: Array<[string, () => unknown]> = [
    ['get', () => db.get('k')],
    ['getString', () => db.getString('k')],
    ['range', () => db.range()],
    ['stats', () => db.stats()],
    ['share', () => db.share()],
  ];
  for (const [name, call] of reads) {
    let outcome = 'no error';
    try {
      call();
    } catch (error) {
      outcome = codeOf(error);
    }
    expect(outcome, `${name} after close`).toBe('ERR_CLOSED');
  }
}
