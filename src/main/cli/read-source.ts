import type { Command } from 'commander';
import { isLightningError, LightningError, type RangeOptions } from '../../shared-memory/index.js';
import type { DatabaseStats } from '../database.js';
import { type OpenFlags, openHowOf, withDatabase } from './cli-database.js';
import { adminTokenVariable, LiveClient, type LiveFlags } from './live-client.js';

/**
 * Where the read commands (get, scan, stats, dump) read from: the database directory, opened by
 * this process (which takes the database's lock), or with --url the admin server of the process
 * that holds it open. The commands format what they read the same way from either.
 */
export interface ReadSource {
  get(key: Uint8Array): Promise<Buffer | undefined>;
  stats(): Promise<DatabaseStats>;
  /** The entries of `range` in key order, or every entry for null; the value is null with keysOnly. */
  entries(range: RangeOptions | null, keysOnly: boolean): Iterable<Entry> | AsyncIterable<Entry>;
}

export type Entry = [Buffer, Buffer | null];
export type ReadFlags = LiveFlags & OpenFlags;

/** Runs `work` on the database at `directory`, directly or through the admin server at --url. */
export async function withReadSource<T>(
  directory: string,
  flags: ReadFlags,
  work: (source: ReadSource) => Promise<T>,
): Promise<T> {
  if (flags.url !== undefined) {
    const client = new LiveClient(flags.url, flags.token ?? process.env[adminTokenVariable], directory);
    return work({
      get: (key) => client.get(key),
      stats: () => client.stats(),
      entries: (range, keysOnly) => client.entries(range, keysOnly),
    });
  }
  try {
    return await withDatabase(directory, openHowOf(flags), (db) =>
      work({
        get: async (key) => db.get(key),
        stats: async () => db.stats(),
        entries: (range, keysOnly) => {
          const entries = db.range(range ?? undefined);
          return keysOnly ? keysOf(entries) : entries;
        },
      }),
    );
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

function* keysOf(entries: Iterable<[Buffer, Buffer]>): Iterable<Entry> {
  for (const [key] of entries) yield [key, null];
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
