/**
 * Read-your-writes across threads: once a write's promise resolves, the write is visible to a
 * synchronous get on every thread that uses the database, the writer's own thread included, with no
 * extra tick or message in between. Checked on the main thread, from an app worker that attached
 * with attach(db.share()) (worker writes, main reads; main writes, worker reads; worker ranges over
 * main's writes), between two app workers, and for a key written alternately by main and a worker.
 * The worker is test/fixtures/db-attached-worker.ts.
 *
 * Reproduce a failure with the LIGHTNING_SEED printed in the test name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import type {
  AttachedReply,
  AttachedRequest,
  AttachedWorkerInput,
  WireValue,
} from './fixtures/db-attached-worker.js';
import { within } from './support/async.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
/** A request without its id; the client numbers them. (Distributes over the union's members.) */
type RequestBody = AttachedRequest extends infer R
  ? R extends AttachedRequest
    ? Omit<R, 'id'>
    : never
  : never;

const seed = seedFromEnv(0x7ead_0001);
const seedText = `0x${seed.toString(16)}`;

/** Printable value text of a given length, distinct per (tag, length) so a stale read cannot match. */
function valueText(tag: string, length: number): string {
  const head = `${tag}|`;
  return head.length >= length ? head : head + 'x'.repeat(length - head.length);
}

// ---------------------------------------------------------------------------------------------------
// Worker plumbing
// ---------------------------------------------------------------------------------------------------

/** tsx's ESM register API (its CommonJS build cannot load its hooks inside a worker). */
const tsxApiUrl = ((): string => {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { './esm/api': { import: { default: string } } } };
  return pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href;
})();

/**
 * Starts a worker running a TypeScript module. On Node 20 a worker ignores `--import` in its execArgv,
 * so an eval bootstrap registers tsx's hooks and then imports the module (as in tree-stress.test.ts).
 */
function startTsWorker(url: URL, workerData: AttachedWorkerInput): Worker {
  const bootstrap =
    `import(${JSON.stringify(tsxApiUrl)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * A write resolves in well under a millisecond here; seconds mean a lost wake-up or a dead owner, and
 * failing at once with the operation's name beats the bare timeout of the whole test.
 */
function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  return within(promise, 5000, `${what} never settled`);
}

/**
 * One attached app worker, driven by request/reply messages. `onReply` runs inside the 'message'
 * event, so a check placed there reads the database in the same macrotask the reply arrived in.
 */
class AppWorker {
  readonly worker: Worker;
  readonly exited: Promise<number>;
  readonly #pending = new Map<
    number,
    { resolve: (reply: AttachedReply) => void; reject: (error: Error) => void }
  >();
  #nextId = 1;
  #ready: Promise<void>;
  #failure: Error | undefined;

  constructor(
    readonly name: string,
    handle: AttachedWorkerInput['handle'],
  ) {
    this.worker = startTsWorker(new URL('./fixtures/db-attached-worker.ts', import.meta.url), { handle });
    let markReady: () => void = () => {};
    let failReady: (error: Error) => void = () => {};
    this.#ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.#ready.catch(() => {});
    this.worker.on('message', (reply: AttachedReply) => {
      if (reply.type === 'ready') {
        markReady();
        return;
      }
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      pending?.resolve(reply);
    });
    const fail = (error: Error): void => {
      this.#failure = error;
      failReady(error);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    this.worker.on('error', (error) => fail(new Error(`${name} crashed: ${error.stack ?? String(error)}`)));
    this.exited = new Promise<number>((resolve) => {
      this.worker.on('exit', (code) => {
        fail(new Error(`${name} exited with code ${code}`));
        resolve(code);
      });
    });
  }

  ready(): Promise<void> {
    // Start-up includes tsx compiling the engine's sources in the worker: slow on a cold cache.
    return within(this.#ready, 30_000, `${this.name} never attached`);
  }

  request(body: RequestBody, onReply?: (reply: AttachedReply) => void): Promise<AttachedReply> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const reply = new Promise<AttachedReply>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (message) => {
          // Run the caller's check before anything else can happen on this thread.
          onReply?.(message);
          resolve(message);
        },
        reject,
      });
    });
    this.worker.postMessage({ ...body, id } as AttachedRequest);
    return within(reply, 15_000, `${this.name}: no reply to ${body.type}`);
  }

  async written(body: RequestBody, onReply?: (reply: AttachedReply) => void): Promise<WireValue> {
    const reply = await this.request(body, onReply);
    if (reply.type !== 'written')
      throw new Error(`${this.name}: ${body.type} failed: ${describeReply(reply)}`);
    return reply.readBack;
  }

  async get(key: string): Promise<WireValue> {
    const reply = await this.request({ type: 'get', key });
    if (reply.type !== 'value') throw new Error(`${this.name}: get failed: ${describeReply(reply)}`);
    return reply.value;
  }
}

function describeReply(reply: AttachedReply): string {
  return reply.type === 'error' ? `${reply.code}: ${reply.message}` : JSON.stringify(reply).slice(0, 300);
}

/**
 * Whether stats() reports a worker as alive. The brief names the field `alive: boolean`; the engine
 * may report a `state` instead, so accept either spelling rather than test a field name.
 */
function workerAlive(worker: object): boolean {
  const fields: Record<string, unknown> = { ...worker };
  if (typeof fields.alive === 'boolean') return fields.alive;
  return fields.state === 'running';
}

// ---------------------------------------------------------------------------------------------------
// Lifecycle: every test gets a fresh directory; databases and workers never outlive their test.
// ---------------------------------------------------------------------------------------------------

const openDatabases: Database[] = [];
const workers: AppWorker[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.worker.terminate();
  for (const db of openDatabases.splice(0)) {
    await within(db.close(), 10_000, 'close() in afterEach').catch(() => {});
  }
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openDb(options: { partitions: number; workers: number }): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-'));
  tempDirs.push(dir);
  const db = await open(dir, options);
  openDatabases.push(db);
  return db;
}

async function startWorker(db: Database, name: string): Promise<AppWorker> {
  const worker = new AppWorker(name, db.share());
  workers.push(worker);
  await worker.ready();
  return worker;
}

/** Sizes around the inline limit, the overflow threshold and the ring record size (256 KiB). */
const valueSizes = [0, 1, 100, 1000, 5000, 70_000, 300_000] as const;

describe(`read-your-writes (LIGHTNING_SEED=${seedText})`, () => {
  it('main thread: get/getString see a write as soon as its promise resolves', async () => {
    const db = await openDb({ partitions: 16, workers: 2 });
    const random = mulberry32(seed);
    const keys = Array.from({ length: 400 }, (_, i) => `main:${i}`);
    for (let round = 0; round < 3; round++) {
      for (const key of keys) {
        const size = valueSizes[random() % valueSizes.length]!;
        const value = valueText(`${key}#${round}`, size);
        await bounded(db.put(key, value), `main put ${key}`);
        // No await, no tick between the resolved put and the read: this is the promise of the API.
        const got = db.getString(key);
        if (got !== value) {
          expect.fail(
            `round ${round}: getString(${key}) right after await put returned ${String(got?.slice(0, 40))}`,
          );
        }
        const bytes = db.get(key);
        expect(bytes?.equals(Buffer.from(value)), `get(${key}) bytes after await put`).toBe(true);
      }
      // Deletes are visible as soon as they resolve too (every third key).
      for (let i = round; i < keys.length; i += 3) {
        await bounded(db.del(keys[i]!), `main del ${keys[i]}`);
        expect(db.get(keys[i]!), `get(${keys[i]}) right after await del`).toBeUndefined();
      }
    }
    // And a batch: all of its entries at once.
    await bounded(db.batch([{ type: 'put', key: 'solo', value: 'batched' }]), 'main batch');
    expect(db.getString('solo')).toBe('batched');
  });

  it('a write resolved in an app worker is visible to the main thread on the reply, and vice versa', async () => {
    const db = await openDb({ partitions: 8, workers: 2 });
    const app = await startWorker(db, 'app worker');
    const random = mulberry32(seed ^ 0x1111);

    for (let i = 0; i < 150; i++) {
      const key = `w2m:${i}`;
      const value = valueText(`${key}@worker`, valueSizes[random() % valueSizes.length]!);
      let seenByMain: string | undefined;
      const readBack = await app.written({ type: 'put', key, value }, () => {
        // Inside the message event that reports the worker's resolved put.
        seenByMain = db.getString(key);
      });
      expect(readBack, `worker's own get after its await put of ${key}`).toBe(value);
      if (seenByMain !== value) {
        expect.fail(`main read ${key} on the worker's reply and got ${String(seenByMain?.slice(0, 40))}`);
      }
    }

    for (let i = 0; i < 150; i++) {
      const key = `m2w:${i}`;
      const value = valueText(`${key}@main`, valueSizes[random() % valueSizes.length]!);
      await bounded(db.put(key, value), `main put ${key}`);
      // The worker reads synchronously when the message arrives, so this is its view at that moment.
      expect(await app.get(key), `worker get(${key}) after main's await put`).toBe(value);
    }

    // Deletes travel both ways too.
    await bounded(db.del('w2m:0'), "db.del('w2m:0')");
    expect(await app.get('w2m:0'), "worker sees main's delete").toBeNull();
    let mainAfterWorkerDel: string | undefined = 'not read';
    await app.written({ type: 'del', key: 'm2w:0' }, () => {
      mainAfterWorkerDel = db.getString('m2w:0');
    });
    expect(mainAfterWorkerDel, "main sees the worker's delete on the reply").toBeUndefined();
  });

  it("a worker's range sees main's writes and deletes, in order, with reverse and limit", async () => {
    const db = await openDb({ partitions: 16, workers: 2 });
    const app = await startWorker(db, 'app worker');
    const expected = new Map<string, string>();
    for (let i = 0; i < 120; i++) {
      const key = `rng:${String(i).padStart(4, '0')}`;
      const value = `v${i}`;
      expected.set(key, value);
      await bounded(db.put(key, value), `main put ${key}`);
    }
    for (let i = 0; i < 120; i += 7) {
      const key = `rng:${String(i).padStart(4, '0')}`;
      expected.delete(key);
      await bounded(db.del(key), `main del ${key}`);
    }
    // Keys just outside the range bounds must not leak in.
    await bounded(db.put('rng', 'below'), "db.put('rng', 'below')");
    await db.put('rng;', 'above');
    const sorted = [...expected.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

    const forward = await app.request({ type: 'range', gte: 'rng:', lt: 'rng;', reverse: false });
    expect(forward.type === 'entries' ? forward.entries : describeReply(forward)).toEqual(sorted);
    const reverse = await app.request({ type: 'range', gte: 'rng:', lt: 'rng;', reverse: true, limit: 10 });
    expect(reverse.type === 'entries' ? reverse.entries : describeReply(reverse)).toEqual(
      [...sorted].reverse().slice(0, 10),
    );

    // A write right before the request is in the worker's very next range.
    await bounded(db.put('rng:9999', 'last'), "db.put('rng:9999', 'last')");
    const after = await app.request({ type: 'range', gte: 'rng:9', lt: 'rng;', reverse: false });
    expect(after.type === 'entries' ? after.entries : describeReply(after)).toEqual([['rng:9999', 'last']]);
  });

  it("one key written alternately by main and a worker: each side reads the other side's last write", async () => {
    // The two writers use different command rings to the same partition, so this fails if a
    // completion is reported before the write is visible, or if readers can see stale data.
    const db = await openDb({ partitions: 4, workers: 2 });
    const app = await startWorker(db, 'app worker');
    for (let i = 0; i < 100; i++) {
      const fromMain = `main-${i}`;
      await bounded(db.put('ping', fromMain), `main put ping = ${fromMain}`);
      expect(await app.get('ping'), `worker read after main wrote ${fromMain}`).toBe(fromMain);
      const fromWorker = `worker-${i}`;
      let seen: string | undefined;
      await app.written({ type: 'put', key: 'ping', value: fromWorker }, () => {
        seen = db.getString('ping');
      });
      if (seen !== fromWorker) expect.fail(`main read ${String(seen)} after the worker wrote ${fromWorker}`);
    }
  });

  it("two app workers: one worker's resolved write is visible to the other", async () => {
    const db = await openDb({ partitions: 8, workers: 2 });
    const [writer, reader] = await Promise.all([startWorker(db, 'writer'), startWorker(db, 'reader')]);
    for (let i = 0; i < 60; i++) {
      const key = `w2w:${i}`;
      const value = valueText(key, i % 2 === 0 ? 10 : 5000);
      expect(await writer.written({ type: 'put', key, value })).toBe(value);
      expect(await reader.get(key), `reader worker get(${key})`).toBe(value);
    }
  });

  it('a worker that closes its attached handle gets ERR_CLOSED, exits on its own, and main keeps working', async () => {
    const db = await openDb({ partitions: 4, workers: 2 });
    const app = await startWorker(db, 'app worker');
    await app.written({ type: 'put', key: 'before-detach', value: 'w' });

    const reply = await app.request({ type: 'close' });
    expect(reply.type === 'closed' ? reply.codes : describeReply(reply)).toEqual([
      'get: ERR_CLOSED',
      'put: ERR_CLOSED',
      'range: ERR_CLOSED',
    ]);
    // The fixture closes its port after replying: a timer, port or ref'd handle left behind by
    // attach/close would keep the thread alive, which is the leak this catches.
    const code = await within(
      app.exited,
      5000,
      'the worker did not exit after db.close(): a handle stays open',
    );
    expect(code).toBe(0);

    // Detaching one thread must not stop the owners or close the opener's database.
    expect(db.getString('before-detach')).toBe('w');
    await bounded(db.put('after-detach', 'm'), "db.put('after-detach', 'm')");
    expect(db.getString('after-detach')).toBe('m');
    expect(db.stats().workerStats.every(workerAlive)).toBe(true);
  });
});
