import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ReplicationStats } from '../../replication/replication-types.js';
import { LightningError, type LightningErrorCode, type RangeOptions } from '../../shared-memory/index.js';
import type { DatabaseStats } from '../database.js';
import { parseJsonLine } from './entry-format.js';

/**
 * The CLI's side of the admin server's data endpoints (admin/data-endpoints.ts): how `get`, `scan`,
 * `stats` and `dump --url` read a database another process holds open. Keys and bounds travel as
 * base64 and entries come back as the dump's JSON lines, so every byte survives.
 */

/** The environment variable holding the admin token, for `serve` and for the `--url` commands. */
export const adminTokenVariable = 'LIGHTNING_ADMIN_TOKEN';
const databaseHeader = 'lightning-database';
/** What a line's missing encoding fields mean: UTF-8, as in every dump line. */
const lossless = { key: 'utf8', value: 'utf8' } as const;

export interface LiveFlags {
  url?: string;
  token?: string;
}

export class LiveClient {
  readonly #base: URL;
  readonly #token: string | undefined;
  /** The directory the command named: every response must come from the server of that database. */
  readonly #directory: string;

  constructor(url: string, token: string | undefined, directory: string) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new LightningError('ERR_BAD_ARGUMENT', `--url ${url} is not a URL (http://127.0.0.1:<port>)`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new LightningError('ERR_BAD_ARGUMENT', `--url ${url} must be an http:// URL`);
    this.#base = base;
    this.#token = token === '' ? undefined : token;
    this.#directory = directory;
  }

  /** The value under `key`, or undefined. */
  async get(key: Uint8Array): Promise<Buffer | undefined> {
    const response = await this.#request('/v1/get', { key: base64(key), keyEncoding: 'base64' }, [404]);
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    return parseJsonLine((await response.text()).trim(), lossless).value;
  }

  async stats(): Promise<DatabaseStats> {
    const response = await this.#request('/v1/stats', {});
    const stats = (await response.json()) as DatabaseStats & { mvcc: { timestamp: string | bigint } };
    stats.mvcc.timestamp = BigInt(stats.mvcc.timestamp);
    return stats;
  }

  /** The entries of `range` (all of them for null: the dump endpoint), as the server streams them. */
  async *entries(range: RangeOptions | null, keysOnly: boolean): AsyncGenerator<[Buffer, Buffer | null]> {
    const query: Record<string, string> = { keyEncoding: 'base64' };
    if (range !== null) {
      for (const name of ['gte', 'gt', 'lte', 'lt'] as const) {
        const bound = range[name];
        if (bound !== undefined) query[name] = base64(typeof bound === 'string' ? Buffer.from(bound) : bound);
      }
      if (range.limit !== undefined) query.limit = String(range.limit);
      if (range.reverse === true) query.reverse = 'true';
      if (keysOnly) query.keysOnly = 'true';
    }
    const response = await this.#request(range === null ? '/v1/dump' : '/v1/scan', query);
    const decoder = new TextDecoder();
    let pending = '';
    const reader = response.body;
    if (reader === null) return;
    for await (const chunk of reader) {
      pending += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        yield entryOf(pending.slice(0, newline), keysOnly);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    }
    pending += decoder.decode();
    if (pending.trim() !== '') yield entryOf(pending, keysOnly);
  }

  /** The served database's `stats().replication`; ERR_BAD_ARGUMENT if it is not replicated. */
  async replication(): Promise<ReplicationStats> {
    return this.#replicationAnswer(await this.#request('/v1/replication', {}, replicationStatuses));
  }

  /**
   * Promotes the served follower and returns its new replication stats: waits for the lease up to
   * `timeoutMs`, or with `wait` false fails at once (ERR_LOCKED) while another database holds it.
   */
  async promote(wait: boolean, timeoutMs: number): Promise<ReplicationStats> {
    const query = { wait: String(wait), timeoutMs: String(timeoutMs) };
    return this.#replicationAnswer(
      await this.#request('/v1/replication/promote', query, replicationStatuses, 'POST'),
    );
  }

  /** Stats from a 200, or the server's error (JSON: error, message) as the LightningError it names. */
  async #replicationAnswer(response: Response): Promise<ReplicationStats> {
    const text = await response.text();
    let body: ReplicationStats | { error: string; message: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `${this.#base.origin} has no replication endpoints (an older server?): ${text.trim().slice(0, 200)}`,
      );
    }
    if (response.status === 200) return body as ReplicationStats;
    const { error, message } = body as { error: string; message: string };
    if (response.status === 404) {
      throw new LightningError('ERR_BAD_ARGUMENT', `${this.#base.origin}: ${message}`);
    }
    const code = isErrorCode(error) ? error : 'ERR_REPLICATION';
    throw new LightningError(code, `the admin server answered ${response.status}: ${message}`);
  }

  async #request(
    path: string,
    query: Record<string, string>,
    allowed: number[] = [],
    method: 'GET' | 'POST' = 'GET',
  ): Promise<Response> {
    const url = new URL(path, this.#base);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    const headers: Record<string, string> = {};
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    let response: Response;
    try {
      response = await fetch(url, { headers, method });
    } catch (error) {
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? String(error);
      throw failure(`cannot reach the admin server at ${this.#base.origin}: ${reason}`, error);
    }
    if (response.status !== 200 && !allowed.includes(response.status)) {
      const detail = (await response.text()).trim();
      if (response.status === 401 || response.status === 403)
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `the admin server refused the request (${response.status}): ${detail}; pass --token or set ${adminTokenVariable}`,
        );
      if (response.status === 404 && detail.startsWith('not found; endpoints'))
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `${this.#base.origin} has no data endpoints (an older server?)`,
        );
      const message = `the admin server answered ${response.status}: ${detail}`;
      throw response.status === 400 ? new LightningError('ERR_BAD_ARGUMENT', message) : failure(message);
    }
    await this.#checkDatabase(response);
    return response;
  }

  /** Refuses the answer of a server that serves another database than the directory named. */
  async #checkDatabase(response: Response): Promise<void> {
    const served = response.headers.get(databaseHeader);
    if (served === null) return;
    const servedPath = decodeURIComponent(served);
    const [mine, theirs] = await Promise.all([canonical(this.#directory), canonical(servedPath)]);
    if (mine === theirs) return;
    await response.body?.cancel();
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `the admin server at ${this.#base.origin} serves ${servedPath}, not ${resolve(this.#directory)}`,
    );
  }
}

/** The error statuses the replication endpoints answer with a JSON body (replication-endpoints.ts). */
const replicationStatuses = [404, 409, 503, 504];

function isErrorCode(code: string): code is LightningErrorCode {
  return /^ERR_[A-Z_]+$/.test(code);
}

function entryOf(line: string, keysOnly: boolean): [Buffer, Buffer | null] {
  if (!keysOnly) {
    const { key, value } = parseJsonLine(line, lossless);
    return [key, value];
  }
  // A keys-only line has no value: parse it with an empty one, as parseJsonLine needs both.
  const parsed = JSON.parse(line) as Record<string, unknown>;
  return [parseJsonLine(JSON.stringify({ ...parsed, value: '' }), lossless).key, null];
}

/**
 * An environment failure of the HTTP path (exit 1): an Error with a string `code`, which the CLI's
 * entry reports as one line, as it does file system errors.
 */
function failure(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, cause === undefined ? {} : { cause }), {
    code: 'ERR_ADMIN_SERVER',
  });
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

async function canonical(path: string): Promise<string> {
  return realpath(resolve(path)).catch(() => resolve(path));
}
