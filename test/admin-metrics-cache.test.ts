/**
 * /metrics collects at most once per metricsCacheMs: scrapes within the interval, one after another or
 * all at once, are answered from one collection (counted by lightning_metrics_collections_total, never
 * by timing); with metricsCacheMs 0 every scrape collects. And the directly written histograms are
 * exactly what prom-client's registry would render.
 */
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import { AdminMetrics } from '../src/main/admin/metrics.js';
import { OperationRecorder } from '../src/main/admin/operation-observer.js';
import { attachThreadCounters } from '../src/shared-memory/thread-counters-layout.js';
import { codeOf } from './support/async.js';
import { parseExposition, total } from './support/prometheus-text.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';
import { useTemporaryDirectories } from './support/wal-fixtures.js';

const seed = seedFromEnv(0x3e7c_0012);
console.log(`admin-metrics-cache seed ${seed} (LIGHTNING_SEED to replay)`);

const temporaryDirectory = useTemporaryDirectories('lightning-metrics-cache-');
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function openDatabase(): Promise<Database> {
  const db = await open(join(await temporaryDirectory(), 'db'), { partitions: 4, workers: 2 });
  cleanups.push(() => db.close());
  return db;
}

async function scrapeText(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** A GET through node:http, which (unlike fetch) neither asks for nor undoes compression by itself. */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ encoding: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ encoding: response.headers['content-encoding'], body: Buffer.concat(chunks) }),
      );
    }).on('error', reject);
  });
}

const collections = (text: string): number =>
  total(parseExposition(text), 'lightning_metrics_collections_total');

describe('/metrics collection cache', () => {
  it('answers scrapes within metricsCacheMs from one collection, even with writes between them', async () => {
    const db = await openDatabase();
    // An interval no test run reaches, so the outcome never depends on timing.
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 60_000 });
    cleanups.push(() => server.close());
    const first = await scrapeText(server.url);
    expect(collections(first)).toBe(1);
    await db.put('k', 'v');
    const second = await scrapeText(server.url);
    expect(second).toBe(first);
    const burst = await Promise.all(Array.from({ length: 20 }, () => scrapeText(server.url)));
    for (const text of burst) expect(text).toBe(first);
  });

  it('collects once for scrapes that arrive together before any collection', async () => {
    const db = await openDatabase();
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 60_000 });
    cleanups.push(() => server.close());
    const burst = await Promise.all(Array.from({ length: 20 }, () => scrapeText(server.url)));
    for (const text of burst) expect(collections(text)).toBe(1);
  });

  it('collects on every scrape with metricsCacheMs 0', async () => {
    const db = await openDatabase();
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 0 });
    cleanups.push(() => server.close());
    expect(collections(await scrapeText(server.url))).toBe(1);
    await db.put('k', 'v');
    const second = parseExposition(await scrapeText(server.url));
    expect(total(second, 'lightning_metrics_collections_total')).toBe(2);
    expect(total(second, 'lightning_operations_total', { operation: 'put' })).toBe(1);
  });

  it('gzips the text for a scraper that accepts it, and only then', async () => {
    const db = await openDatabase();
    const server = await db.serveAdmin({ port: 0, metricsCacheMs: 60_000 });
    cleanups.push(() => server.close());
    const plain = await rawGet(`${server.url}/metrics`, {});
    expect(plain.encoding).toBeUndefined();
    const gzipped = await rawGet(`${server.url}/metrics`, { 'accept-encoding': 'deflate, gzip' });
    expect(gzipped.encoding).toBe('gzip');
    expect(gunzipSync(gzipped.body).equals(plain.body)).toBe(true);
    const refused = await rawGet(`${server.url}/metrics`, { 'accept-encoding': 'gzip;q=0' });
    expect(refused.encoding).toBeUndefined();
  });

  it('refuses a metricsCacheMs that is not an integer from 0 to 60000', async () => {
    const db = await openDatabase();
    for (const metricsCacheMs of [-1, 1.5, 60_001, Number.NaN])
      await expect(db.serveAdmin({ port: 0, metricsCacheMs }), String(metricsCacheMs)).rejects.toSatisfy(
        (error) => codeOf(error) === 'ERR_BAD_ARGUMENT',
      );
  });
});

describe('the metrics text', () => {
  it('is what the prom-client registry renders, histograms included', async () => {
    const random = mulberry32(seed);
    const db = await openDatabase();
    const recorder = new OperationRecorder(db.stats().partitions);
    db.attachAdmin({ observer: recorder, detach: async () => {} });
    const operations = 200 + (random() % 200);
    for (let i = 0; i < operations; i++) {
      const key = `key:${random() % 50}`;
      const pick = random() % 4;
      if (pick === 0) await db.put(key, `v${i}`);
      else if (pick === 1) db.get(key);
      else if (pick === 2) await db.del(key);
      else await db.batch([{ type: 'put', key, value: 'b' }]);
    }
    const metrics = new AdminMetrics();
    const handle = db.share();
    const source = {
      db,
      recorder,
      workerControls: handle.workerControls.map((sab) => new Int32Array(sab)),
      counters: {
        rows: attachThreadCounters(handle.counters, handle.threadsMax, handle.partitions),
        threadsMax: handle.threadsMax,
        partitions: handle.partitions,
      },
    };
    metrics.collect(source);
    const text = await metrics.text();
    expect(text).toBe(await metrics.registry.metrics());
    expect(text).toContain('lightning_operation_duration_seconds_bucket{operation="put",partition=');
    db.attachAdmin(null);
  });
});
