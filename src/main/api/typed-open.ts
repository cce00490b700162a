import type { ReplicationOptions } from '../../replication/replication-options.js';
import { LightningError } from '../../shared-memory/errors.js';
import { attach as attachDatabase } from '../attach.js';
import type { Database } from '../database.js';
import { assertDatabaseHandle } from '../database-handle.js';
import { open as openDatabase } from '../open.js';
import type { OpenOptions } from '../open-options.js';
import type { Bytes, EncodingOptions } from './encoding-types.js';
import { type Encodings, loadEncoding } from './encodings.js';
import { attachEncodings } from './shared-encodings.js';

/**
 * Opens (creating if needed) the database in directory `path` and returns it for this thread (see
 * open.ts). `keyEncoding` and `valueEncoding` choose how keys and values are stored; with them, name
 * the types: `open<string, User>(path, { keyEncoding: 'utf8', valueEncoding: 'json' })`. Without
 * them the database takes bytes or strings and returns Buffers, as it always has.
 *
 * The second signature is the first without type parameters: it is what `ReturnType<typeof open>`
 * and `Parameters<typeof open>` see (they read the last one), so they name today's Database.
 */
export function open<K = Bytes, V = Bytes>(
  path: string,
  options?: OpenOptions & EncodingOptions<K, V>,
): Promise<Database<K, V>>;
export function open(path: string, options?: OpenOptions): Promise<Database>;
export async function open(path: string, options?: unknown): Promise<unknown> {
  const { encodings, rest } = await splitOptions(options);
  const db = await openDatabase(path, rest);
  return db.useEncodings(encodings);
}

/**
 * Opens (creating if needed) the database in `path` as a follower of the replication log that
 * `options.replication` names (docs/replication.md): it applies the leader's writes as they come,
 * serves reads like any database, refuses writes (ERR_NOT_LEADER) until `db.replication.promote()`.
 * A new, empty directory starts from the log's beginning; a restored backup from its position.
 */
export function openReplica<K = Bytes, V = Bytes>(
  path: string,
  options: OpenOptions & EncodingOptions<K, V> & { replication: ReplicationOptions },
): Promise<Database<K, V>>;
export function openReplica(
  path: string,
  options: OpenOptions & { replication: ReplicationOptions },
): Promise<Database>;
export async function openReplica(path: string, options: unknown): Promise<unknown> {
  const { encodings, rest } = await splitOptions(options);
  if (rest?.replication === undefined) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'openReplica needs the replication option');
  }
  const db = await openDatabase(path, rest, true);
  return db.useEncodings(encodings);
}

/**
 * Attaches this thread to a database another thread shared (`db.share()`; see attach.ts), with the
 * encodings the handle names, or those given here: a custom encoding cannot travel in a handle, so a
 * database with one must be attached with it. (The second signature: as for open.)
 */
export function attach<K = Bytes, V = Bytes>(
  handle: unknown,
  options?: EncodingOptions<K, V>,
): Promise<Database<K, V>>;
export function attach(handle: unknown): Promise<Database>;
export async function attach(handle: unknown, options?: EncodingOptions<unknown, unknown>): Promise<unknown> {
  assertDatabaseHandle(handle);
  const encodings = await attachEncodings(handle, options);
  const db = await attachDatabase(handle);
  return db.useEncodings(encodings);
}

/** The encodings an open() names, and its other options as open.ts checks them. */
async function splitOptions(
  options: unknown,
): Promise<{ encodings: Encodings; rest: OpenOptions | undefined }> {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    return { encodings: { keys: null, values: null }, rest: options as OpenOptions | undefined };
  const { keyEncoding, valueEncoding, ...rest } = options as EncodingOptions<unknown, unknown> & OpenOptions;
  return {
    encodings: {
      keys: await loadEncoding(keyEncoding, 'keyEncoding'),
      values: await loadEncoding(valueEncoding, 'valueEncoding'),
    },
    rest,
  };
}
