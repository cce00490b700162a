import type { Command } from 'commander';
import { listStores } from '../stores/store-catalog.js';
import { type OpenFlags, openExitCodesHelp, openHowOf, withDatabase } from './cli-database.js';
import { formatTable, jsonText } from './cli-format.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitOk } from './database-inspection.js';

/** `lightning-cli stores <directory>`: the named stores of a database (db.store()), with their ids. */

interface StoresFlags extends OpenFlags {
  json?: boolean;
}

export async function runStores(directory: string, flags: StoresFlags): Promise<number> {
  const { path, stores } = await withDatabase(directory, openHowOf(flags), async (db) => ({
    path: db.stats().path,
    stores: listStores(db),
  }));
  if (flags.json === true) {
    process.stdout.write(jsonText({ command: 'stores', database: path, stores }));
    return exitOk;
  }
  const rows: (string | number)[][] = [['name', 'id'], ...stores.map((store) => [store.name, store.id])];
  const summary = `${stores.length} named store(s) in ${path}`;
  process.stdout.write(`${[...(stores.length === 0 ? [] : formatTable(rows)), summary].join('\n')}\n`);
  return exitOk;
}

const storesHelp = `
Opens the database and lists its named stores (made with db.store(name)), sorted by name, with the
id each has in the catalog. A store being dropped is not listed. The default store (the database's
own keys) is not a named store and is not listed.

Examples:
  $ lightning-cli stores ./data
  $ lightning-cli stores ./data --json

${openExitCodesHelp()}`;

export function registerStoresCommand(program: Command): void {
  const command = program
    .command('stores')
    .description('list the named stores of a database')
    .argument('<directory>', 'the database directory')
    .option('--json', 'print the stores as JSON');
  finishDatabaseCommand(command, { create: false, help: storesHelp }, runStores);
}
