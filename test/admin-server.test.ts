/**
 * The admin server over real HTTP on 127.0.0.1 (port 0): /metrics in the Prometheus text format with
 * values that move as the database works (operation counts and latency, owner batch sizes, log bytes,
 * fsyncs, checkpoints, entries, arena pages, worker state), /health turning 503 when an owner worker
 * crashes, /ready 503 until the database is handed over, 404 and 405, the loopback guard, and
 * `lightning-cli serve` end to end in a child process stopped with SIGTERM.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import { isLoopbackHost, startAdminServer } from '../src/main/admin/admin-server.js';
import { readTransactionStats } from '../src/main/admin/transaction-metrics.js';
import { codeOf, within } from './support/async.js';
import { runCli } from './support/cli-runner.js';
import { type Exposition, parseExposition, select, total } from './support/prometheus-text.js';
import { useTemporaryDirectories } from './support/wal-fixtures.js';

const temporaryDirectory = useTemporaryDirectories('lightning-admin-');
// These tests scrape before and after changes, so each scrape collects (metricsCacheMs: 0); the
// cache itself is tested in admin-metrics-cache.test.ts.
const partitions = 4;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function openDatabase(options: Parameters<typeof open>[1] = {}): Promise<Database> {
  const db = await open(join(await temporaryDirectory(), 'db'), { partitions, workers: 2, ...options });
  cleanups.push(() => db.close());
  return db;
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url, init);
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: await response.text(),
  };
}

async function scrape(base: string): Promise<Exposition> {
  const { status, type, body } = await get(`${base}/metrics`);
  expect(status).toBe(200);
  expect(type).toContain('text/plain; version=0.0.4');
  return parseExposition(body);
}

/** Checks a histogram series is well formed: cumulative buckets ending in +Inf equal to _count. */
function expectHistogram(exposition: Exposition, name: string, where: Record<string, string>): void {
  const buckets = select(exposition, `${name}_bucket`, where);
  expect(buckets.length, `${name} buckets for ${JSON.stringify(where)}`).toBeGreaterThan(1);
  for (let i = 1; i < buckets.length; i++)
    expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
  expect(buckets.at(-1)!.labels.le).toBe('+Inf');
  expect(buckets.at(-1)!.value).toBe(total(exposition, `${name}_count`, where));
}

describe('admin server /metrics', () => {
  it('exports every metric family, and the values move with writes, reads and checkpoints', async () => {
    const db = await openDatabase();
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const before = await scrape(server.url);
    for (const [name, type] of [
      ['lightning_ready', 'gauge'],
      ['lightning_operations_total', 'counter'],
      ['lightning_operation_errors_total', 'counter'],
      ['lightning_operation_duration_seconds', 'histogram'],
      ['lightning_owner_batch_operations', 'histogram'],
      ['lightning_wal_bytes_written_total', 'counter'],
      ['lightning_wal_fsync_duration_seconds', 'histogram'],
      ['lightning_checkpoint_duration_seconds', 'histogram'],
      ['lightning_entries', 'gauge'],
      ['lightning_arena_pages_used', 'gauge'],
      ['lightning_arena_pages_free', 'gauge'],
      ['lightning_arena_pages_max', 'gauge'],
      ['lightning_worker_up', 'gauge'],
      ['lightning_worker_state', 'gauge'],
      ['lightning_pending_writes', 'gauge'],
    ] as const) {
      expect(before.types.get(name), name).toBe(type);
    }
    expect(total(before, 'lightning_ready')).toBe(1);
    expect(total(before, 'lightning_operations_total')).toBe(0);

    // Awaited one by one, so the owner sees them as 50 + 10 + 5 separate operations.
    let payloadBytes = 0;
    for (let i = 0; i < 50; i++) {
      const key = `key:${i}`;
      const value = `value ${i} `.repeat(10);
      payloadBytes += key.length + value.length;
      await db.put(key, value);
    }
    for (let i = 0; i < 10; i++) await db.del(`key:${i}`);
    for (let i = 0; i < 5; i++) await db.batch([{ type: 'put', key: `batch:${i}`, value: 'b' }]);
    for (let i = 0; i < 100; i++) db.get(`key:${i % 60}`);
    await expect(db.put('x'.repeat(5000), 'too long')).rejects.toSatisfy(
      (e) => codeOf(e) === 'ERR_KEY_TOO_LARGE',
    );
    await db.checkpoint();
    const after = await scrape(server.url);

    for (const [operation, count] of [
      ['put', 50],
      ['del', 10],
      ['batch', 5],
      ['get', 100],
    ] as const) {
      expect(total(after, 'lightning_operations_total', { operation }), operation).toBe(count);
      expect(total(after, 'lightning_operation_duration_seconds_count', { operation }), operation).toBe(
        count,
      );
      expect(
        total(after, 'lightning_operation_duration_seconds_sum', { operation }),
        operation,
      ).toBeGreaterThan(0);
    }
    // Every partition took some of the 50 puts, and each series is a proper histogram.
    const putPartitions = select(after, 'lightning_operations_total', { operation: 'put' }).map(
      (s) => s.labels.partition,
    );
    expect(new Set(putPartitions)).toEqual(new Set(['0', '1', '2', '3']));
    for (const partition of putPartitions) {
      expectHistogram(after, 'lightning_operation_duration_seconds', {
        operation: 'put',
        partition: partition!,
      });
    }
    // The key too long was refused before it reached a ring: not an operation, not a write error either.
    expect(total(after, 'lightning_operation_errors_total')).toBe(0);

    // The owners applied exactly the 65 ring operations this thread sent, in at most 65 batches.
    const sumOf = (e: Exposition) => total(e, 'lightning_owner_batch_operations_sum');
    const countOf = (e: Exposition) => total(e, 'lightning_owner_batch_operations_count');
    expect(sumOf(after) - sumOf(before)).toBe(65);
    expect(countOf(after) - countOf(before)).toBeGreaterThanOrEqual(1);
    expect(countOf(after) - countOf(before)).toBeLessThanOrEqual(65);
    for (const worker of ['0', '1']) expectHistogram(after, 'lightning_owner_batch_operations', { worker });

    // Sync durability: each awaited write is fsync'd before it resolves, and the log holds its bytes.
    const walBytes = (e: Exposition) => total(e, 'lightning_wal_bytes_written_total');
    expect(walBytes(after) - walBytes(before)).toBeGreaterThanOrEqual(payloadBytes);
    const fsyncs = (e: Exposition) => total(e, 'lightning_wal_fsync_duration_seconds_count');
    expect(fsyncs(after) - fsyncs(before)).toBeGreaterThanOrEqual(65);
    expect(total(after, 'lightning_wal_fsync_duration_seconds_sum')).toBeGreaterThan(0);
    for (const worker of ['0', '1'])
      expectHistogram(after, 'lightning_wal_fsync_duration_seconds', { worker });

    expect(total(before, 'lightning_checkpoint_duration_seconds_count')).toBe(0);
    expect(total(after, 'lightning_checkpoint_duration_seconds_count')).toBe(partitions);

    const entries = db.stats().entries;
    expect(entries).toBe(45);
    expect(total(after, 'lightning_entries')).toBe(entries);
    expect(select(after, 'lightning_entries')).toHaveLength(partitions);
    const stats = db.stats().partitionStats;
    for (let p = 0; p < partitions; p++) {
      expect(total(after, 'lightning_arena_pages_used', { partition: String(p) })).toBe(stats[p]!.pagesInUse);
      expect(total(after, 'lightning_arena_pages_free', { partition: String(p) })).toBe(stats[p]!.pagesFree);
      expect(total(after, 'lightning_arena_pages_max', { partition: String(p) })).toBe(stats[p]!.pagesMax);
    }
    for (const worker of ['0', '1']) {
      expect(total(after, 'lightning_worker_up', { worker })).toBe(1);
      expect(total(after, 'lightning_worker_state', { worker, state: 'running' })).toBe(1);
      expect(total(after, 'lightning_worker_state', { worker })).toBe(1);
    }
    // Transaction and snapshot metrics appear exactly when stats() carries them.
    const hasTransactions = readTransactionStats(db.stats()) !== null;
    expect(after.types.has('lightning_transaction_commits_total')).toBe(hasTransactions);
  });

  it('exports transaction and snapshot counts, and a batch over several partitions as partition "multi"', async () => {
    const db = await openDatabase();
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    const before = await scrape(server.url);
    await db.put('t:1', 'first');
    const snapshot = db.snapshot();
    await db.put('t:1', 'second'); // The snapshot still sees 'first': that version is retained.
    await db.transaction((tx) => {
      tx.put('t:2', tx.getString('t:1') ?? '');
    });
    // Twenty keys over four partitions: a cross-partition batch, committed as one.
    await db.batch(
      Array.from({ length: 20 }, (_, i) => ({ type: 'put' as const, key: `m:${i}`, value: 'v' })),
    );
    const held = await scrape(server.url);
    const stats = db.stats();
    expect(total(held, 'lightning_transaction_commits_total')).toBe(stats.transactions.commits);
    expect(total(held, 'lightning_transaction_commits_total')).toBeGreaterThan(
      total(before, 'lightning_transaction_commits_total'),
    );
    expect(total(held, 'lightning_transaction_cross_partition_commits_total')).toBe(
      stats.transactions.crossPartitionCommits,
    );
    expect(total(held, 'lightning_snapshots_open')).toBe(stats.mvcc.openSnapshots);
    expect(total(held, 'lightning_snapshots_open')).toBeGreaterThanOrEqual(1);
    expect(total(held, 'lightning_versions_retained')).toBe(stats.mvcc.versionsRetained);
    expect(total(held, 'lightning_versions_retained')).toBeGreaterThanOrEqual(1);
    expect(total(held, 'lightning_commit_timestamp')).toBe(Number(stats.mvcc.timestamp));
    expect(total(held, 'lightning_operations_total', { operation: 'batch', partition: 'multi' })).toBe(1);
    expectHistogram(held, 'lightning_operation_duration_seconds', { operation: 'batch', partition: 'multi' });

    snapshot.release();
    const released = await scrape(server.url);
    expect(total(released, 'lightning_snapshots_open')).toBe(total(held, 'lightning_snapshots_open') - 1);
  });

  it('reads transaction and snapshot counts from stats() when they are there', () => {
    expect(readTransactionStats({ entries: 1 })).toBeNull();
    const reading = readTransactionStats({
      transactions: { commits: 3, conflicts: 2, retries: 1, failed: 0, crossPartitionCommits: 1 },
      mvcc: { timestamp: 42n, openSnapshots: 2, leakedSnapshots: 0, versionsRetained: 7 },
    });
    expect(reading).toEqual({
      transactions: { commits: 3, conflicts: 2, retries: 1, failed: 0, crossPartitionCommits: 1 },
      mvcc: { timestamp: 42, openSnapshots: 2, leakedSnapshots: 0, versionsRetained: 7 },
    });
    expect(readTransactionStats({ transactions: { commits: 'many' } })).toBeNull();
  });
});

describe('admin server /health and /ready', () => {
  it('/ready is 503 until the database is handed over, 200 while it serves, 503 once it closed', async () => {
    const server = await startAdminServer({ port: 0, metricsCacheMs: 0 });
    cleanups.push(() => server.close());
    expect((await get(`${server.url}/ready`)).status).toBe(503);
    expect((await get(`${server.url}/health`)).status).toBe(200);
    expect(total(await scrape(server.url), 'lightning_ready')).toBe(0);

    const db = await openDatabase();
    server.setDatabase(db);
    const ready = await get(`${server.url}/ready`);
    expect([ready.status, JSON.parse(ready.body)]).toEqual([200, { ready: true }]);
    const health = await get(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({
      status: 'ok',
      workers: [{ state: 'running' }, { state: 'running' }],
    });
    expect(total(await scrape(server.url), 'lightning_ready')).toBe(1);

    await db.close();
    expect((await get(`${server.url}/ready`)).status).toBe(503);
  });

  it('/health is 503 naming the crashed owner worker after it dies', async () => {
    const db = await openDatabase({ failpoints: { 'owner.apply': 'crash-after:5' } });
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    expect((await get(`${server.url}/health`)).status).toBe(200);
    const writes = Array.from({ length: 40 }, (_, i) => db.put(`crash:${i}`, 'v').catch(codeOf));
    const outcomes = await within(Promise.all(writes), 10_000, 'writes to crashing workers');
    expect(outcomes).toContain('ERR_WORKER_CRASHED');

    const crashed = db
      .stats()
      .workerStats.filter((w) => w.state === 'crashed')
      .map((w) => w.worker);
    expect(crashed.length).toBeGreaterThan(0);
    const health = await get(`${server.url}/health`);
    expect(health.status).toBe(503);
    const body = JSON.parse(health.body) as { status: string; crashed: number[]; message: string };
    expect(body.status).toBe('unhealthy');
    expect(body.crashed).toEqual(crashed);
    expect(body.message).toContain(`${crashed[0]} (crashed)`);

    const metrics = await scrape(server.url);
    for (const worker of crashed) {
      expect(total(metrics, 'lightning_worker_up', { worker: String(worker) })).toBe(0);
      expect(total(metrics, 'lightning_worker_state', { worker: String(worker), state: 'crashed' })).toBe(1);
    }
    expect(total(metrics, 'lightning_operation_errors_total', { operation: 'put' })).toBe(
      outcomes.filter((o) => o === 'ERR_WORKER_CRASHED').length,
    );
  });
});

describe('admin server routes and options', () => {
  it('answers 404 elsewhere, 405 to other methods, HEAD without a body', async () => {
    const db = await openDatabase();
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    for (const path of ['/', '/metrics/', '/nope', '/healthz'])
      expect((await get(`${server.url}${path}`)).status, path).toBe(404);
    const post = await fetch(`${server.url}/metrics`, { method: 'POST', body: 'x' });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    const head = await get(`${server.url}/health`, { method: 'HEAD' });
    expect([head.status, head.body]).toEqual([200, '']);
  });

  it('refuses a non-loopback host unless allowRemote, and bad ports', async () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', 'localhost'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '10.1.2.3', '::', '192.168.0.1', 'example.com'])
      expect(isLoopbackHost(host), host).toBe(false);
    await expect(startAdminServer({ port: 0, host: '0.0.0.0' })).rejects.toSatisfy(
      (e) => codeOf(e) === 'ERR_BAD_ARGUMENT' && String(e).includes('allowRemote'),
    );
    const db = await openDatabase();
    await expect(db.serveAdmin({ port: 0, host: '10.1.2.3' })).rejects.toSatisfy(
      (e) => codeOf(e) === 'ERR_BAD_ARGUMENT',
    );
    for (const port of [-1, 65_536, 1.5, Number.NaN]) {
      await expect(startAdminServer({ port }), String(port)).rejects.toSatisfy(
        (e) => codeOf(e) === 'ERR_BAD_ARGUMENT',
      );
    }
  });

  it('closes with its database; one server per database; a new one times afresh, counts since open', async () => {
    const db = await openDatabase();
    const first = await db.serveAdmin({ port: 0 });
    await db.put('a', '1');
    await expect(db.serveAdmin({ port: 0 })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_BAD_ARGUMENT');
    await first.close();
    await expect(fetch(`${first.url}/metrics`)).rejects.toThrow();
    const second = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    await db.put('b', '2');
    db.get('b');
    const metrics = await scrape(second.url);
    // The counts live in the database's shared memory since open; the latencies in the server.
    expect(total(metrics, 'lightning_operations_total', { operation: 'put' })).toBe(2);
    expect(total(metrics, 'lightning_operations_total', { operation: 'get' })).toBe(1);
    expect(total(metrics, 'lightning_operation_duration_seconds_count', { operation: 'put' })).toBe(1);
    await db.close();
    await expect(fetch(`${second.url}/health`)).rejects.toThrow();
  });
});

const root = fileURLToPath(new URL('..', import.meta.url));

/** Starts `lightning-cli serve` and resolves once it printed its ready line, with the server URL. */
function startServe(
  args: string[],
): Promise<{ child: ChildProcessWithoutNullStreams; url: string; output: () => string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/main/cli/lightning-cli.ts'), 'serve', ...args],
    {
      cwd: root,
    },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`serve exited early with ${code}: ${stdout}${stderr}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url !== undefined && stdout.includes('\nready:'))
        resolve({ child, url, output: () => stdout + stderr });
    });
  });
}

describe('lightning-cli serve', () => {
  it('serves a database until SIGTERM (its data only with --token), then closes it and exits 0', async () => {
    const dir = join(await temporaryDirectory(), 'db');
    const db = await open(dir, { partitions, workers: 1 });
    for (let i = 0; i < 30; i++) await db.put(`k${i}`, `v${i}`);
    await db.close();

    const { child, url, output } = await within(
      startServe([dir, '--port', '0', '--token', 'serve-test-token-0123456789']),
      30_000,
      'serve never became ready',
    );
    cleanups.push(async () => child.kill('SIGKILL'));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    expect((await get(`${url}/ready`)).status).toBe(200);
    expect((await get(`${url}/health`)).status).toBe(200);
    const metrics = await scrape(url);
    expect(total(metrics, 'lightning_entries')).toBe(30);
    expect(total(metrics, 'lightning_recovery_replayed_records')).toBe(30);
    expect((await get(`${url}/v1/get?key=k1`)).status).toBe(401);
    const authorized = { headers: { authorization: 'Bearer serve-test-token-0123456789' } };
    const found = await get(`${url}/v1/get?key=k1`, authorized);
    expect([found.status, JSON.parse(found.body)]).toEqual([200, { key: 'k1', value: 'v1' }]);
    child.kill('SIGTERM');
    expect(await within(exited, 20_000, 'serve did not exit after SIGTERM'), output()).toBe(0);
    expect(output()).toContain('closed');
    // Closed cleanly: the lock is released and the data is all there.
    const reopened = await open(dir);
    expect(reopened.stats().entries).toBe(30);
    await reopened.close();
  });

  it('exits 3 without a database, 2 on bad arguments or a non-loopback host', async () => {
    const dir = join(await temporaryDirectory(), 'db');
    await (await open(dir, { partitions, workers: 1 })).close();
    expect((await runCli(['serve', join(dir, 'missing'), '--port', '0'])).code).toBe(3);
    expect((await runCli(['serve', dir])).code).toBe(2);
    expect((await runCli(['serve', dir, '--port', 'http'])).code).toBe(2);
    const remote = await runCli(['serve', dir, '--port', '0', '--host', '0.0.0.0']);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toContain('--allow-remote');
  });
});
