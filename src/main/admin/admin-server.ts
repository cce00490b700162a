import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, BlockList, isIP } from 'node:net';
import { isLightningError, LightningError } from '../../shared-memory/index.js';
import { attachThreadCounters } from '../../shared-memory/thread-counters-layout.js';
import type { Database, DatabaseStats } from '../database.js';
import { DataAccess, dataPathPrefix, promotePath, replicationPaths } from './data-access.js';
import type { AdminMetrics, MetricsSource } from './metrics.js';
import { MetricsCache } from './metrics-cache.js';
import { type OperationObserver, OperationRecorder } from './operation-observer.js';

export interface AdminServerOptions {
  /** TCP port; 0 picks a free one (read it back from `port`). */
  port: number;
  /** Address to bind; default 127.0.0.1. Anything but a loopback address needs `allowRemote: true`. */
  host?: string;
  /**
   * Allow a non-loopback `host`. Only the data endpoints (/v1/*) can ask for a token, and beyond
   * loopback they answer only with one: bind beyond loopback only behind a firewall or a proxy that
   * restricts who can reach /metrics, /health and /ready.
   */
  allowRemote?: boolean;
  /**
   * A bearer token the data endpoints (/v1/get, /v1/scan, /v1/dump, /v1/stats: everything that
   * returns the database's data) require in `Authorization: Bearer <token>`, else 401. Without one
   * they answer any client that reaches them on loopback.
   */
  token?: string;
  /**
   * How long, in milliseconds, a collected /metrics text is served again before the next scrape
   * collects anew; default 1000, 0 collects on every scrape. A burst of scrapes then costs one
   * collection per interval instead of one each, on the thread that serves the database.
   */
  metricsCacheMs?: number;
}

export interface AdminServer {
  /** `http://host:port`, the base of /metrics, /health and /ready. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /**
   * Serves this database: /ready turns 200 and /metrics reports it, and its operations on this thread
   * are timed. Until then (while it opens and recovers) /ready is 503. When the database closes the
   * server stops serving it (and, if started by `db.serveAdmin()`, closes). One admin server per
   * database at a time (ERR_BAD_ARGUMENT otherwise).
   */
  setDatabase(db: Database | null): void;
  /** Stops listening and drops open connections; idempotent. */
  close(): Promise<void>;
}

/** What a Database keeps of the admin server attached to it. */
export interface AdminAttachment {
  observer: OperationObserver;
  /** Called when the database starts closing. */
  detach(): Promise<void>;
}

/** Default of AdminServerOptions.metricsCacheMs: within Prometheus' usual 10–60 s scrape interval. */
export const metricsCacheMsDefault = 1000;
/** The most metricsCacheMs may be: a text older than this would mislead more than it saves. */
const metricsCacheMsMax = 60_000;

const jsonType = 'application/json; charset=utf-8';
const textType = 'text/plain; charset=utf-8';
const endpoints = [
  '/metrics',
  '/health',
  '/ready',
  '/v1/get',
  '/v1/scan',
  '/v1/dump',
  '/v1/stats',
  ...replicationPaths,
];

/**
 * Starts the admin HTTP server (node:http): Prometheus metrics on /metrics, liveness on /health and
 * readiness on /ready, 404 for anything else. It can start before the database opens, so that /ready
 * answers 503 during recovery; hand it the database with `setDatabase` once open() resolved.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { port, host, metricsCacheMs, token } = validateOptions(options);
  const admin = await createAdminServer(host, false, metricsCacheMs, token);
  await admin.listen(port);
  return admin;
}

/** `db.serveAdmin()`: a server bound to one database, closed when the database closes. */
export async function serveDatabase(db: Database, options: AdminServerOptions): Promise<AdminServer> {
  const { port, host, metricsCacheMs, token } = validateOptions(options);
  const admin = await createAdminServer(host, true, metricsCacheMs, token);
  await admin.listen(port);
  try {
    admin.setDatabase(db);
  } catch (error) {
    await admin.close();
    throw error;
  }
  return admin;
}

/** prom-client is loaded only once an admin server starts, so that importing the engine stays light. */
async function createAdminServer(
  host: string,
  closeWithDatabase: boolean,
  metricsCacheMs: number,
  token: string | null,
): Promise<AdminHttpServer> {
  const { AdminMetrics } = await import('./metrics.js');
  const dataAccess = new DataAccess(token, isLoopbackHost(host));
  return new AdminHttpServer(host, closeWithDatabase, new AdminMetrics(), metricsCacheMs, dataAccess);
}

class AdminHttpServer implements AdminServer {
  readonly host: string;
  readonly #closeWithDatabase: boolean;
  readonly #server: Server;
  readonly #metrics: AdminMetrics;
  readonly #metricsCache: MetricsCache;
  readonly #dataAccess: DataAccess;
  #source: MetricsSource | null = null;
  #port = 0;
  #closing: Promise<void> | null = null;

  constructor(
    host: string,
    closeWithDatabase: boolean,
    metrics: AdminMetrics,
    metricsCacheMs: number,
    dataAccess: DataAccess,
  ) {
    this.host = host;
    this.#dataAccess = dataAccess;
    this.#metrics = metrics;
    this.#metricsCache = new MetricsCache(metrics, metricsCacheMs);
    this.#closeWithDatabase = closeWithDatabase;
    this.#server = createServer((request, response) => {
      this.#respond(request, response).catch((error: unknown) => {
        if (!response.headersSent) send(request, response, 500, textType, `${describe(error)}\n`);
        else response.destroy();
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = isIP(this.host) === 6 ? `[${this.host}]` : this.host;
    return `http://${host}:${this.#port}`;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, this.host, () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  setDatabase(db: Database | null): void {
    if (this.#closing !== null) throw new LightningError('ERR_CLOSED', 'the admin server is closed');
    if (db === (this.#source?.db ?? null)) return;
    let source: MetricsSource | null = null;
    if (db !== null) {
      const recorder = new OperationRecorder(db.stats().partitions);
      const handle = db.ownHandle;
      const workerControls = handle.workerControls.map((sab) => new Int32Array(sab));
      const { threadsMax, partitions } = handle;
      const rows = attachThreadCounters(handle.counters, threadsMax, partitions);
      source = { db, recorder, workerControls, counters: { rows, threadsMax, partitions } };
      db.attachAdmin({ observer: recorder, detach: () => this.#databaseClosing(db) });
    }
    this.#release();
    this.#source = source;
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#release();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  /** Stops serving the current database and takes its observer back. */
  #release(): void {
    const source = this.#source;
    this.#source = null;
    source?.db.attachAdmin(null);
  }

  async #databaseClosing(db: Database): Promise<void> {
    if (this.#source?.db !== db) return;
    if (this.#closeWithDatabase) await this.close();
    else this.#release();
  }

  async #respond(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path.startsWith(dataPathPrefix)) {
      await this.#respondData(url, request, response);
      return;
    }
    if (!endpoints.includes(path)) {
      send(request, response, 404, textType, `not found; endpoints: ${endpoints.join(', ')}\n`);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(request, response, 405, textType, 'method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      const collected = await this.#metricsCache.text(this.#source);
      const contentType = this.#metrics.registry.contentType;
      if (acceptsGzip(request)) {
        send(request, response, 200, contentType, await collected.gzipped(), 'gzip');
      } else {
        send(request, response, 200, contentType, collected.body);
      }
      return;
    }
    const stats = this.#stats();
    if (path === '/ready') {
      const ready = stats !== null;
      const body = ready ? { ready } : { ready, reason: 'the database is not open yet, or is closing' };
      send(request, response, ready ? 200 : 503, jsonType, `${JSON.stringify(body)}\n`);
      return;
    }
    const { status, body } = health(stats);
    send(request, response, status, jsonType, `${JSON.stringify(body)}\n`);
  }

  /**
   * The data and replication endpoints: GET only (POST for promotion), the token checked first, then
   * the database must be served.
   */
  async #respondData(url: URL, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = url.pathname === promotePath ? 'POST' : 'GET';
    if (request.method !== method) {
      response.setHeader('allow', method);
      send(request, response, 405, textType, 'method not allowed\n');
      return;
    }
    const refusal = this.#dataAccess.refusal(request);
    if (refusal !== null) {
      if (refusal.status === 401) response.setHeader('www-authenticate', 'Bearer');
      send(request, response, refusal.status, textType, `${refusal.message}\n`);
      return;
    }
    const db = this.#stats() === null ? null : this.#source!.db;
    if (db === null) {
      send(request, response, 503, textType, 'the database is not open yet, or is closing\n');
      return;
    }
    if (replicationPaths.includes(url.pathname)) {
      const { serveReplication } = await import('./replication-endpoints.js');
      await serveReplication(db, url, response);
      return;
    }
    const { serveData } = await import('./data-endpoints.js');
    await serveData(db, url, request, response);
  }

  /** The served database's stats, or null when there is none or it closed. */
  #stats(): DatabaseStats | null {
    const db = this.#source?.db;
    if (db === undefined) return null;
    try {
      return db.stats();
    } catch (error) {
      if (isLightningError(error, 'ERR_CLOSED')) return null;
      throw error;
    }
  }
}

/**
 * Liveness: 200 while every owner worker runs, 503 naming the ones that do not. A process whose
 * database is still opening is alive (recovery can take a while; restarting it would start over).
 */
function health(stats: DatabaseStats | null): { status: number; body: object } {
  if (stats === null) return { status: 200, body: { status: 'ok', database: 'not open' } };
  const workers = stats.workerStats.map(({ worker, state, partitions }) => ({ worker, state, partitions }));
  const down = workers.filter((worker) => worker.state !== 'running');
  if (down.length === 0) return { status: 200, body: { status: 'ok', workers } };
  const crashed = down.filter((worker) => worker.state === 'crashed').map((worker) => worker.worker);
  const message = `owner worker(s) ${down.map((w) => `${w.worker} (${w.state})`).join(', ')} not running`;
  return { status: 503, body: { status: 'unhealthy', message, crashed, workers } };
}

function send(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  contentEncoding?: 'gzip',
): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...(contentEncoding === undefined
      ? {}
      : { 'content-encoding': contentEncoding, vary: 'accept-encoding' }),
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** Whether the request's Accept-Encoding lists gzip (without q=0), as Prometheus' scrapes do. */
function acceptsGzip(request: IncomingMessage): boolean {
  const accepted = request.headers['accept-encoding'];
  if (typeof accepted !== 'string') return false;
  return accepted.split(',').some((part) => {
    const [coding = '', ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
    if (coding !== 'gzip') return false;
    const quality = parameters.find((parameter) => parameter.startsWith('q='));
    return quality === undefined || Number(quality.slice(2)) > 0;
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** Whether `host` is this machine only: localhost, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const family = isIP(host);
  if (family === 4) return loopback.check(host, 'ipv4');
  if (family === 6) return loopback.check(host, 'ipv6');
  return false;
}

/** The shortest token accepted: anything shorter is guessable by trying. */
const tokenCharsMin = 16;

function validateOptions(
  options: AdminServerOptions,
): Required<Omit<AdminServerOptions, 'token'>> & { token: string | null } {
  if (typeof options !== 'object' || options === null)
    throw new LightningError('ERR_BAD_ARGUMENT', 'the admin server takes an options object { port, host }');
  const {
    port,
    host = '127.0.0.1',
    allowRemote = false,
    metricsCacheMs = metricsCacheMsDefault,
    token = null,
  } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `port must be an integer from 0 to 65535, got ${String(port)}`,
    );
  if (typeof host !== 'string' || host === '')
    throw new LightningError('ERR_BAD_ARGUMENT', 'host must be a non-empty string');
  if (typeof allowRemote !== 'boolean')
    throw new LightningError('ERR_BAD_ARGUMENT', 'allowRemote must be a boolean');
  if (!allowRemote && !isLoopbackHost(host)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `host ${host} is not a loopback address: /metrics, /health and /ready have no authentication. ` +
        'Pass allowRemote: true (lightning-cli serve --allow-remote) to bind it anyway',
    );
  }
  if (!Number.isInteger(metricsCacheMs) || metricsCacheMs < 0 || metricsCacheMs > metricsCacheMsMax) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `metricsCacheMs must be an integer from 0 to ${metricsCacheMsMax}, got ${String(metricsCacheMs)}`,
    );
  }
  if (token !== null && (typeof token !== 'string' || token.length < tokenCharsMin || /\s/.test(token)))
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `token must be a string of at least ${tokenCharsMin} characters without spaces`,
    );
  return { port, host, allowRemote, metricsCacheMs, token };
}
