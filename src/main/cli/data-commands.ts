import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { LightningError } from '../../shared-memory/index.js';
import {
  addEncodingOptions,
  decodeText,
  type EncodingFlags,
  encodeBytes,
  entryEncodings,
} from './byte-encoding.js';
import { type OpenFlags, openExitCodesHelp, openHowOf, withDatabase } from './cli-database.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitNotFound, exitOk } from './database-inspection.js';
import { jsonLine } from './entry-format.js';
import { addLiveOptions, liveHelp, type ReadFlags, withReadSource } from './read-source.js';
import { addStoreOption, storeMissingHelp } from './store-option.js';

/**
 * `get`, `put` and `del`: one key at a time, for looking at and fixing single entries from a shell.
 * Keys and values are UTF-8 unless an encoding says otherwise; `get` writes a UTF-8 value's bytes
 * exactly as stored, so `get -n db key > file` gives back what `put --file` stored.
 */

interface GetFlags extends EncodingFlags, ReadFlags {
  json?: boolean;
  newline: boolean;
}

interface PutFlags extends EncodingFlags, OpenFlags {
  file?: string;
}

const keyHelp = 'the key (a key that starts with "-" goes after "--")';

export async function runGet(directory: string, keyText: string, flags: GetFlags): Promise<number> {
  const encodings = entryEncodings(flags);
  const key = decodeText(keyText, encodings.key, 'the key');
  const value = await withReadSource(directory, flags, (source) => source.get(key));
  if (value === undefined) {
    const where = flags.store === undefined ? '' : ` in store ${JSON.stringify(flags.store)}`;
    process.stderr.write(`lightning-cli: not found: no key ${JSON.stringify(keyText)}${where}\n`);
    return exitNotFound;
  }
  if (flags.json === true) {
    process.stdout.write(`${jsonLine(key, value, encodings)}\n`);
  } else {
    // UTF-8 is written as the stored bytes, not decoded and re-encoded, so nothing is replaced.
    process.stdout.write(encodings.value === 'utf8' ? value : encodeBytes(value, encodings.value));
    if (flags.newline) process.stdout.write('\n');
  }
  return exitOk;
}

export async function runPut(
  directory: string,
  keyText: string,
  valueText: string | undefined,
  flags: PutFlags,
): Promise<number> {
  const encodings = entryEncodings(flags);
  if ((valueText === undefined) === (flags.file === undefined)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      valueText === undefined
        ? 'put needs a value: as an argument, or --file <path> (- for stdin)'
        : 'give the value as an argument or with --file, not both',
    );
  }
  const key = decodeText(keyText, encodings.key, 'the key');
  // Read before opening, so a missing file fails without touching (or creating) the database.
  const value =
    flags.file === undefined
      ? decodeText(valueText!, encodings.value, 'the value')
      : await readInput(flags.file);
  await withDatabase(directory, openHowOf(flags, { canCreate: true }), (db) => db.put(key, value));
  return exitOk;
}

export async function runDel(
  directory: string,
  keyText: string,
  flags: EncodingFlags & OpenFlags,
): Promise<number> {
  const key = decodeText(keyText, entryEncodings(flags).key, 'the key');
  await withDatabase(directory, openHowOf(flags), (db) => db.del(key));
  return exitOk;
}

/** A file's bytes as they are, or stdin's for `-`. */
async function readInput(file: string): Promise<Buffer> {
  if (file !== '-') {
    return readFile(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT' && error.code !== 'EISDIR') throw error;
      throw new LightningError('ERR_BAD_ARGUMENT', `cannot read --file ${file}: ${error.code}`, {
        cause: error,
      });
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const getHelp = `
Prints the value stored under <key>, followed by a newline (none with -n). A UTF-8 value is written
as its exact bytes; with --encoding hex or base64 the value is printed in that encoding.

A missing key prints nothing on stdout, says so on stderr and exits 6.

Examples:
  $ lightning-cli get ./data user:1
  $ lightning-cli get ./data user:1 --json
  $ lightning-cli get ./data 75736572 --key-encoding hex --value-encoding base64
  $ lightning-cli get -n ./data avatar:7 > avatar.png
  $ lightning-cli get ./data user:1 --url http://127.0.0.1:9464
  $ lightning-cli get ./data u1 --store users
${liveHelp}
${openExitCodesHelp({ extra: ['  6  the key was not found', storeMissingHelp] })}`;

const putHelp = `
Stores <value> under <key>, replacing any value there; the command returns once the write is synced
to disk. The value comes from the argument, or from a file with --file (the file's bytes as they are;
--file - reads stdin).

Examples:
  $ lightning-cli put ./data user:1 alice
  $ lightning-cli put ./data avatar:7 --file avatar.png
  $ echo -n '{"name":"alice"}' | lightning-cli put ./data user:1 --file -
  $ lightning-cli put ./data 00ff 0102 --encoding hex
  $ lightning-cli put ./new-db greeting hello --create --partitions 4

${openExitCodesHelp({ create: true })}`;

const delHelp = `
Removes <key>. Removing a key that is not there is not an error.

Examples:
  $ lightning-cli del ./data user:1
  $ lightning-cli del ./data -- -odd-key

${openExitCodesHelp()}`;

export function registerDataCommands(program: Command): void {
  const get = program
    .command('get')
    .description('print the value of a key')
    .argument('<directory>', 'the database directory')
    .argument('<key>', keyHelp)
    .option('--json', 'print {"key": ..., "value": ...} as one JSON line')
    .option('-n, --no-newline', 'no newline after the value');
  addStoreOption(get, 'read');
  addEncodingOptions(get, 'are written (values: how they are printed)');
  addLiveOptions(get);
  finishDatabaseCommand(get, { create: false, help: getHelp }, runGet);

  const put = program
    .command('put')
    .description('store a value under a key')
    .argument('<directory>', 'the database directory')
    .argument('<key>', keyHelp)
    .argument('[value]', 'the value (or use --file)')
    .option('-f, --file <path>', 'read the value from a file, or from stdin with -');
  addEncodingOptions(put, 'are given on the command line');
  finishDatabaseCommand(put, { create: true, help: putHelp }, runPut);

  const del = program
    .command('del')
    .description('remove a key')
    .argument('<directory>', 'the database directory')
    .argument('<key>', keyHelp);
  addEncodingOptions(del, 'are given on the command line');
  finishDatabaseCommand(del, { create: false, help: delHelp }, runDel);
}
