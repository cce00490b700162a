import type { Command } from 'commander';
import { isLightningError, LightningError } from '../../shared-memory/index.js';
import type { Database } from '../database.js';
import type { Store } from '../stores/store.js';

export { storeKeyBytesMax } from '../stores/store-keys.js';

/**
 * `--store <name>` of the data commands (get, scan, dump, load): the command reads or writes that
 * named store (db.store(name)) instead of the default store. Keys and values are the store's stored
 * bytes, as the commands treat the default store's; a missing store is its own exit code.
 */

export interface StoreFlags {
  store?: string;
}

/** Exit code of a command whose --store names no store of the database. */
export const exitStoreMissing = 7;

export class StoreMissingError extends LightningError {
  constructor(message: string) {
    super('ERR_NOT_FOUND', message);
    this.name = 'StoreMissingError';
  }
}

/** Adds --store to `command`; `what` says what the command does with it. */
export function addStoreOption(command: Command, what: string): Command {
  return command.option('--store <name>', `${what} the named store <name> (default: the default store)`);
}

/**
 * The store --store names, or null without it. A store that does not exist is StoreMissingError
 * (exit 7), unless `create` (then it is made); a bad name is ERR_BAD_ARGUMENT (exit 2).
 */
export async function storeOfFlags(db: Database, flags: StoreFlags, create = false): Promise<Store | null> {
  if (flags.store === undefined) return null;
  try {
    return await db.store(flags.store, { create });
  } catch (error) {
    if (!isLightningError(error, 'ERR_NOT_FOUND')) throw error;
    throw new StoreMissingError(
      `no store named ${JSON.stringify(flags.store)} in ${db.stats().path} ("lightning-cli stores" lists them)`,
    );
  }
}

/** The admin server reads the default store only: --store with --url is a usage error. */
export function assertStoreReadable(flags: StoreFlags & { url?: string }): void {
  if (flags.store !== undefined && flags.url !== undefined) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      '--store cannot be read through --url: the admin server serves the default store only',
    );
  }
}

/** The help line of the exit code. */
export const storeMissingHelp = `  ${exitStoreMissing}  --store names a store the database does not have`;
