import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { LightningError } from '../../shared-memory/index.js';
import { addEncodingOptions, type EncodingFlags, entryEncodings } from './byte-encoding.js';
import { type OpenFlags, openExitCodesHelp, openHowOf, withDatabase } from './cli-database.js';
import { jsonText } from './cli-format.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitOk } from './database-inspection.js';
import { formatOfFileName, type LoadFormat, loadFormats, readEntries } from './entry-reader.js';
import { PartitionLoader } from './partition-loader.js';
import {
  addStoreOption,
  type StoreFlags,
  storeKeyBytesMax,
  storeMissingHelp,
  storeOfFlags,
} from './store-option.js';
import { count, createTransferProgress, humanBytes } from './transfer-progress.js';

/**
 * `lightning-cli load <directory> <file>`: puts every entry of a JSON lines or CSV file (the formats
 * `dump` writes) into a database, in per-partition batches, with progress in rows and bytes. A bad
 * line stops the load with its line number, after writing every entry before it; with --skip-bad it
 * is counted and reported instead.
 */

interface LoadFlags extends EncodingFlags, OpenFlags, StoreFlags {
  format?: LoadFormat;
  header: boolean;
  skipBad?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** Bad lines listed on stderr with --skip-bad; the rest are only counted. */
const badLinesShownMax = 20;

interface BadLine {
  line: number;
  error: string;
}

export interface LoadSummary {
  command: 'load';
  database: string;
  source: string;
  format: LoadFormat;
  rows: number;
  bytes: number;
  badLines: number;
  /** The first bad lines, up to 20. */
  skipped: BadLine[];
  seconds: number;
}

export async function runLoad(directory: string, file: string, flags: LoadFlags): Promise<number> {
  const fromStdin = file === '-';
  const source = fromStdin ? 'stdin' : resolve(file);
  const format = flags.format ?? (fromStdin ? 'jsonl' : formatOfFileName(file));
  // Checked before opening, so a missing input file neither touches nor creates a database.
  const totalBytes = fromStdin ? null : await inputSize(source);
  const startedMs = Date.now();
  const bad: BadLine[] = [];
  let badLines = 0;
  let rows = 0;
  let bytes = 0;
  const interrupt = interruptFlag();
  // Every entry written is synced by close(), whatever the durability mode: a load that exits 0 is
  // durable, and one that does not is partial either way, so syncing each batch would only slow it.
  await withDatabase(directory, openHowOf(flags, { canCreate: true, durability: 'none' }), async (db) => {
    // With --create, a missing --store is made too: loading a dump into a new store is the usual case.
    const store = await storeOfFlags(db, flags, flags.create === true);
    const keyBytesMax = store === null ? null : storeKeyBytesMax;
    const loader = await PartitionLoader.create(db, store);
    const input = fromStdin ? process.stdin : createReadStream(source, { highWaterMark: 256 * 1024 });
    const progress = createTransferProgress('load', { bytes: totalBytes }, { quiet: flags.quiet === true });
    try {
      const chunks = readEntries(input, { format, header: flags.header, encodings: entryEncodings(flags) });
      for await (const chunk of chunks) {
        for (const item of chunk.items) {
          const keyError = item.error === undefined ? storeKeyError(item.key, keyBytesMax) : undefined;
          if (keyError !== undefined || item.error !== undefined) {
            const error = keyError ?? item.error ?? '';
            badLines++;
            if (flags.skipBad !== true) {
              await loader.finish();
              throw new LightningError(
                'ERR_BAD_ARGUMENT',
                `${source}: line ${item.line}: ${error}. The ${count(rows)} entries before it were loaded; --skip-bad skips bad lines`,
              );
            }
            if (bad.length < badLinesShownMax) bad.push({ line: item.line, error });
            continue;
          }
          rows++;
          const full = loader.add(item.key, item.value);
          if (full !== null) await full;
        }
        bytes += chunk.bytes;
        progress.update(rows, bytes);
        if (interrupt.requested) break;
      }
      await loader.finish();
      progress.update(rows, bytes);
    } finally {
      progress.done();
      interrupt.remove();
      if (!fromStdin) (input as ReturnType<typeof createReadStream>).destroy();
    }
  });
  const summary: LoadSummary = {
    command: 'load',
    database: resolve(directory),
    source,
    format,
    rows,
    bytes,
    badLines,
    skipped: bad,
    seconds: (Date.now() - startedMs) / 1000,
  };
  if (interrupt.requested) {
    process.stderr.write(
      `lightning-cli: load interrupted after ${count(rows)} entries, which were loaded; the rest of ${source} was not\n`,
    );
    return exitInterrupted;
  }
  process.stdout.write(flags.json === true ? jsonText(summary) : summaryText(summary));
  return exitOk;
}

/** Why a key cannot go into a named store (whose keys are at most `keyBytesMax`), or undefined. */
function storeKeyError(key: Buffer, keyBytesMax: number | null): string | undefined {
  if (keyBytesMax === null || key.length <= keyBytesMax) return undefined;
  return `the key is ${key.length} bytes; a named store's limit is ${keyBytesMax}`;
}

async function inputSize(file: string): Promise<number> {
  try {
    const stats = await stat(file);
    if (stats.isDirectory())
      throw new LightningError('ERR_BAD_ARGUMENT', `${file} is a directory, not a file`);
    return stats.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new LightningError('ERR_BAD_ARGUMENT', `no input file ${file}`, { cause: error });
  }
}

/** What a shell reports for a command ended by Ctrl-C (128 + SIGINT). */
const exitInterrupted = 130;

/**
 * The first Ctrl-C asks the load to stop after the current chunk, so the database is closed cleanly
 * with everything read so far written; a second one ends the process at once.
 */
function interruptFlag() {
  const flag = {
    requested: false,
    remove: () => void process.off('SIGINT', onInterrupt),
  };
  const onInterrupt = () => {
    if (flag.requested) process.exit(exitInterrupted);
    flag.requested = true;
    process.stderr.write(
      '\nlightning-cli: stopping the load after the current chunk (Ctrl-C again to quit now)\n',
    );
  };
  process.on('SIGINT', onInterrupt);
  return flag;
}

function summaryText(summary: LoadSummary): string {
  const rate = summary.seconds > 0 ? `, ${count(Math.round(summary.rows / summary.seconds))} entries/s` : '';
  const lines = [
    `loaded ${count(summary.rows)} entries (${humanBytes(summary.bytes)} of ${summary.format}) from ${summary.source} in ${summary.seconds.toFixed(1)} s${rate}`,
  ];
  if (summary.badLines > 0) {
    lines.push(`skipped ${count(summary.badLines)} bad line(s):`);
    for (const { line, error } of summary.skipped) lines.push(`  line ${line}: ${error}`);
    if (summary.badLines > summary.skipped.length) {
      lines.push(`  ... and ${count(summary.badLines - summary.skipped.length)} more`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const loadHelp = `
Puts every entry of <file> (- for stdin) into the database; a key already there is replaced, and of
a key given twice the later line wins. The command returns when everything is synced to disk.

Formats (--format, else by the file name: .csv is CSV, anything else JSON lines):
  jsonl  one object per line: {"key": "user:1", "value": "alice"}; "keyEncoding" / "valueEncoding"
         ("utf8", "hex", "base64") on a line override --encoding for that line, as dump writes them
  csv    RFC 4180: a header row naming a "key" and a "value" column (other columns are ignored), or
         with --no-header exactly two columns, key then value. Quote fields with commas, quotes or
         line breaks, doubling the quotes inside

A bad line (not JSON, a missing field, bad hex or base64, a key over 1,024 bytes, a wrong number of
CSV fields) stops the load with its line number, after every entry before it was written. With
--skip-bad it is skipped and counted, and the summary lists the first ${badLinesShownMax}.

Progress (rows and bytes) goes to stderr; the summary to stdout. Ctrl-C stops after the current chunk
with everything read so far written (exit 130).

Examples:
  $ lightning-cli load ./data users.jsonl
  $ lightning-cli load ./data users.csv --skip-bad
  $ lightning-cli load ./new-db dump.jsonl --create --partitions 32
  $ gunzip -c dump.jsonl.gz | lightning-cli load ./data - --quiet
  $ lightning-cli load ./data blobs.csv --value-encoding base64 --no-header
  $ lightning-cli load ./data users.jsonl --store users --create

With --store, the entries go into the named store (its keys at most 1,018 bytes: a longer one is a bad
line); the store must exist unless --create is given, which makes the database and the store as
needed.

${openExitCodesHelp({
  create: true,
  extra: [storeMissingHelp, '  130  interrupted (Ctrl-C); the entries read before it were loaded'],
})}`;

export function registerLoadCommand(program: Command): void {
  const load = program
    .command('load')
    .description('put every entry of a JSON lines or CSV file (with progress)')
    .argument('<directory>', 'the database directory')
    .argument('<file>', 'the input file, or - for stdin')
    .addOption(new Option('--format <format>', 'jsonl or csv (default: by file name)').choices(loadFormats))
    .option('--no-header', 'CSV: the first row is data, key then value')
    .option('--skip-bad', 'skip and count bad lines instead of stopping at the first')
    .option('--json', 'print the summary as JSON')
    .option('-q, --quiet', 'no progress on stderr');
  addStoreOption(load, 'load into');
  addEncodingOptions(load, 'are written in the file (for lines that do not say)');
  finishDatabaseCommand(load, { create: true, help: loadHelp }, runLoad);
}
