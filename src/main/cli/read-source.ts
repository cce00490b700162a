import type { Command } from 'commander';
import { isLightningError, LightningError, type RangeOptions } from '../../shared-memory/index.js';
import type { DatabaseStats } from '../database.js';
import { type OpenFlags, openHowOf, withDatabase } from './cli-database.js';
import { adminTokenVariable, LiveClient, type LiveFlags } from './live-client.js';
import { assertStoreReadable, type StoreFlags, storeOfFlags } from './store-option.js';

/**
 * Where the read commands (get, scan, stats, dump) read from: the database directory, opened by
 * this process (which takes the database's lock), or with --url the admin server of the process
 * that holds it open. The commands format what they read the same way from either.
 */
export interface ReadSource {
  get(key: Uint8Array): Promise<Buffer | undefined>;
  stats(): Promise<DatabaseStats>;
  /** How many entries `entries(null)` will give, for progress: stats().entries, or a store's count. */
  entriesTotal(): Promise<number>;
  /** The entries of `range` in key order, or every entry for null; the value is null with keysOnly. */
  entries(range: RangeOptions | null, keysOnly: boolean): Iterable<Entry> | AsyncIterable<Entry>;
}

export type Entry = [Buffer, Buffer | null];
export type ReadFlags = LiveFlags & OpenFlags & StoreFlags;

/**
 * Runs `work` on the database at `directory`, directly or through the admin server at --url; on the
 * named store --store names, if it does (directly only).
 */
export async function withReadSource<T>(
  directory: string,
  flags: ReadFlags,
  work: (source: ReadSource) => Promise<T>,
): Promise<T> {
  assertStoreReadable(flags);
  if (flags.url !== undefined) {
    const client = new LiveClient(flags.url, flags.token ?? process.env[adminTokenVariable], directory);
    return work({
      get: (key) => client.get(key),
      stats: () => client.stats(),
      entriesTotal: async () => (await client.stats()).entries,
      entries: (range, keysOnly) => client.entries(range, keysOnly),
    });
  }
  try {
    return await withDatabase(directory, openHowOf(flags), async (db) => {
      const store = await storeOfFlags(db, flags);
      // A named store's keys come back without its prefix, as the default store's do.
      const reads = store ?? db;
      return work({
        get: async (key) => reads.get(key),
        stats: async () => db.stats(),
        entriesTotal: async () => (store === null ? db.stats().entries : store.count()),
        entries: (range, keysOnly) =>
          keysOnly ? keysOf(reads.keys(range ?? undefined)) : reads.range(range ?? undefined),
      });
    });
  } catch (error) {
    if (!isLightningError(error, 'ERR_LOCKED')) throw error;
    throw new LightningError(
      'ERR_LOCKED',
      `${error.message.replace(/^ERR_LOCKED: /, '')}\n` +
        'The read commands (get, scan, stats, dump) can read it while it runs through its admin server: ' +
        'add --url http://127.0.0.1:<port> (the port of "lightning-cli serve --port" or of db.serveAdmin() in ' +
        `that process; --token or ${adminTokenVariable} if it has one).`,
      { cause: error },
    );
  }
}

function* keysOf(keys: Iterable<Buffer>): Iterable<Entry> {
  for (const key of keys) yield [key, null];
}

/** --url and --token, for the read commands. */
export function addLiveOptions(command: Command): Command {
  return command
    .option(
      '--url <url>',
      'read through the admin server of the process holding the database (http://127.0.0.1:<port>)',
    )
    .option(
      '--token <token>',
      `the admin server's bearer token, with --url (default: $${adminTokenVariable})`,
    );
}

/** The lines read commands add to their help. */
export const liveHelp = `
While another process holds the database open (exit 5), read it through that process's admin server
with --url http://127.0.0.1:<port> ("lightning-cli serve" or db.serveAdmin()); add --token, or set
${adminTokenVariable}, if the server was given one. <directory> must be the database it serves.
`;
