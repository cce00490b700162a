import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLightningError, LightningError, type RangeOptions } from '../../shared-memory/index.js';
import { decodeText, type EntryEncodings, isEncoding } from '../cli/byte-encoding.js';
import { jsonLine } from '../cli/entry-format.js';
import { prefixEnd } from '../cli/scan-command.js';
import type { Database } from '../database.js';

/**
 * The admin server's read endpoints, for `lightning-cli get|scan|stats|dump --url` while a process
 * holds the database open (the CLI cannot open it then: one process owns a database directory):
 *
 *   GET /v1/get?key=K             the entry as one JSON line, 404 if there is no such key;
 *   GET /v1/scan?gte=&lt=&...     the entries within bounds as JSON lines, streamed, in key order;
 *   GET /v1/dump                  every entry as JSON lines, streamed: the format `lightning-cli dump`
 *                                 writes and `load` reads;
 *   GET /v1/stats                 db.stats() as JSON.
 *
 * Lines are the CLI's dump lines (cli/entry-format.ts): bytes that are not valid UTF-8 travel as
 * base64 and say so, so keys and values of any bytes survive the trip. Keys and bounds in the query
 * are UTF-8 unless `keyEncoding` (hex, base64) says otherwise; `valueEncoding` picks how values are
 * written. Scans and dumps read one snapshot, as db.range() does. Every response names the database's
 * directory in the `lightning-database` header, so a client can check it reached the one it meant.
 *
 * This module loads the CLI's encoding helpers, so the admin server imports it on the first /v1
 * request only.
 */

const dataEndpoints = ['/v1/get', '/v1/scan', '/v1/dump', '/v1/stats'];
/** The response header naming the database served (its directory, URI-encoded). */
export const databaseHeader = 'lightning-database';
const linesType = 'application/x-ndjson; charset=utf-8';
const jsonType = 'application/json; charset=utf-8';
/** Lines are written in chunks of about this many characters: fewer writes, bounded memory. */
const chunkChars = 64 * 1024;

/** Answers one request under /v1/; the caller has checked the method and the token. */
export async function serveData(
  db: Database,
  url: URL,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const path = url.pathname;
  if (!dataEndpoints.includes(path)) {
    sendText(response, 404, `not found; data endpoints: ${dataEndpoints.join(', ')}\n`);
    return;
  }
  const query = url.searchParams;
  let encodings: EntryEncodings;
  let entries: IterableIterator<[Buffer, Buffer]>;
  let keysOnly = false;
  try {
    encodings = {
      key: encodingParameter(query, 'keyEncoding'),
      value: encodingParameter(query, 'valueEncoding'),
    };
    if (path === '/v1/get') {
      const keyText = query.get('key');
      if (keyText === null) throw new LightningError('ERR_BAD_ARGUMENT', 'key is required');
      const key = decodeText(keyText, encodings.key, 'key');
      const value = db.get(key);
      if (value === undefined) {
        send(response, 404, jsonType, db, `${JSON.stringify({ error: 'not found' })}\n`);
        return;
      }
      send(response, 200, linesType, db, `${jsonLine(key, value, encodings)}\n`);
      return;
    }
    if (path === '/v1/stats') {
      send(response, 200, jsonType, db, statsJson(db));
      return;
    }
    keysOnly = path === '/v1/scan' && booleanParameter(query, 'keysOnly');
    entries = db.range(path === '/v1/scan' ? rangeParameters(query, encodings) : {});
  } catch (error) {
    if (!isLightningError(error, 'ERR_BAD_ARGUMENT') && !isLightningError(error, 'ERR_KEY_TOO_LARGE'))
      throw error;
    sendText(response, 400, `${error.message}\n`);
    return;
  }
  await streamEntries(db, entries, keysOnly, encodings, request, response);
}

/** Writes the entries as lines, waiting whenever the client reads slower than we scan. */
async function streamEntries(
  db: Database,
  entries: IterableIterator<[Buffer, Buffer]>,
  keysOnly: boolean,
  encodings: EntryEncodings,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  response.writeHead(200, {
    'content-type': linesType,
    'cache-control': 'no-store',
    [databaseHeader]: encodeURIComponent(db.path),
  });
  let chunk = '';
  try {
    for (const [key, value] of entries) {
      chunk += `${jsonLine(key, keysOnly ? null : value, encodings)}\n`;
      if (chunk.length < chunkChars) continue;
      const more = response.write(chunk);
      chunk = '';
      if (!more && !(await drained(response))) return;
      if (request.destroyed) return;
    }
  } catch (error) {
    // The status line is gone already: cutting the connection before the last chunk is how the
    // client learns that the stream is incomplete.
    response.destroy(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  response.end(chunk);
}

/** Resolves true once `response` drained, false if it closed first (the client went away). */
function drained(response: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const settle = (more: boolean) => {
      response.off('drain', onDrain);
      response.off('close', onClose);
      resolve(more);
    };
    const onDrain = () => settle(true);
    const onClose = () => settle(false);
    response.once('drain', onDrain);
    response.once('close', onClose);
  });
}

function statsJson(db: Database): string {
  // Timestamps are bigints: decimal strings, as JSON has no 64-bit integers.
  return `${JSON.stringify(db.stats(), (_, field: unknown) => (typeof field === 'bigint' ? field.toString() : field))}\n`;
}

function encodingParameter(query: URLSearchParams, name: string): EntryEncodings['key'] {
  const text = query.get(name);
  if (text === null) return 'utf8';
  if (!isEncoding(text)) throw new LightningError('ERR_BAD_ARGUMENT', `${name} must be utf8, hex or base64`);
  return text;
}

function booleanParameter(query: URLSearchParams, name: string): boolean {
  const text = query.get(name);
  if (text === null || text === 'false' || text === '0') return false;
  if (text === '' || text === 'true' || text === '1') return true;
  throw new LightningError('ERR_BAD_ARGUMENT', `${name} must be true or false`);
}

/** gte, gt, lte, lt or prefix (keys in keyEncoding), limit and reverse, as db.range() takes them. */
function rangeParameters(query: URLSearchParams, encodings: EntryEncodings): RangeOptions {
  const range: RangeOptions = { reverse: booleanParameter(query, 'reverse') };
  const limit = query.get('limit');
  if (limit !== null) {
    if (!/^\d+$/.test(limit) || !Number.isSafeInteger(Number(limit)))
      throw new LightningError('ERR_BAD_ARGUMENT', 'limit must be a non-negative integer');
    range.limit = Number(limit);
  }
  const bounds = (['gte', 'gt', 'lte', 'lt'] as const).filter((name) => query.has(name));
  if ((query.has('gte') && query.has('gt')) || (query.has('lte') && query.has('lt')))
    throw new LightningError('ERR_BAD_ARGUMENT', 'give gte or gt, and lte or lt, not both of a pair');
  const prefixText = query.get('prefix');
  if (prefixText !== null) {
    if (bounds.length > 0) throw new LightningError('ERR_BAD_ARGUMENT', 'prefix sets both bounds');
    const prefix = decodeText(prefixText, encodings.key, 'prefix');
    range.gte = prefix;
    const end = prefixEnd(prefix);
    if (end !== null) range.lt = end;
    return range;
  }
  for (const name of bounds) range[name] = decodeText(query.get(name)!, encodings.key, name);
  return range;
}

/** Writes a whole response naming the database served. */
export function send(
  response: ServerResponse,
  status: number,
  type: string,
  db: Database,
  body: string,
): void {
  response.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [databaseHeader]: encodeURIComponent(db.path),
  });
  response.end(body);
}

function sendText(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}
