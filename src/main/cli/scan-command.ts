import { type Command, Option } from 'commander';
import { LightningError, type RangeOptions } from '../../shared-memory/index.js';
import {
  addEncodingOptions,
  decodeText,
  type EncodingFlags,
  type EntryEncodings,
  encodeBytes,
  entryEncodings,
} from './byte-encoding.js';
import { openExitCodesHelp, parseCount } from './cli-database.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitOk } from './database-inspection.js';
import { csvLine, jsonLine } from './entry-format.js';
import { addLiveOptions, liveHelp, type ReadFlags, withReadSource } from './read-source.js';
import { addStoreOption, storeMissingHelp } from './store-option.js';
import { LineWriter, stdoutSink } from './text-output.js';

/**
 * `lightning-cli scan <directory>`: the entries within bounds, in key order (unsigned bytes), as text
 * for reading or as JSON lines / CSV for other programs (the same lines `dump` writes and `load`
 * reads).
 */

export const scanFormats = ['text', 'jsonl', 'csv'] as const;
export type ScanFormat = (typeof scanFormats)[number];

interface ScanFlags extends EncodingFlags, ReadFlags {
  gte?: string;
  gt?: string;
  lte?: string;
  lt?: string;
  prefix?: string;
  limit?: number;
  reverse?: boolean;
  format: ScanFormat;
  keysOnly?: boolean;
}

/** Formats one entry as a line of `format`; `value` null (--keys-only) writes the key alone. */
export function entryLineFormatter(
  format: ScanFormat,
  encodings: EntryEncodings,
): (key: Uint8Array, value: Uint8Array | null) => string {
  if (format === 'jsonl') return (key, value) => jsonLine(key, value, encodings);
  if (format === 'csv') return (key, value) => csvLine(key, value, encodings);
  return (key, value) => {
    const keyText = encodeBytes(key, encodings.key);
    return value === null ? keyText : `${keyText}\t${encodeBytes(value, encodings.value)}`;
  };
}

/**
 * The smallest key greater than every key that starts with `prefix`: the prefix with its last byte
 * below 0xff incremented and what follows dropped. Null when there is none (empty or all 0xff), so
 * the range has no upper bound.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! !== 0xff) {
      const end = Uint8Array.from(prefix.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return null;
}

/** The range the flags ask for; contradictory bounds are ERR_BAD_ARGUMENT (exit 2). */
export function rangeOf(flags: ScanFlags, encodings: EntryEncodings): RangeOptions {
  const bound = (text: string | undefined, name: string) =>
    text === undefined ? undefined : decodeText(text, encodings.key, `--${name}`);
  const given = (['gte', 'gt', 'lte', 'lt'] as const).filter((name) => flags[name] !== undefined);
  if (flags.gte !== undefined && flags.gt !== undefined)
    throw new LightningError('ERR_BAD_ARGUMENT', 'give --gte or --gt, not both');
  if (flags.lte !== undefined && flags.lt !== undefined)
    throw new LightningError('ERR_BAD_ARGUMENT', 'give --lte or --lt, not both');
  const range: RangeOptions = { reverse: flags.reverse === true };
  if (flags.limit !== undefined) range.limit = flags.limit;
  if (flags.prefix !== undefined) {
    if (given.length > 0) {
      throw new LightningError('ERR_BAD_ARGUMENT', `--prefix sets both bounds; drop --${given.join(', --')}`);
    }
    const prefix = bound(flags.prefix, 'prefix')!;
    range.gte = prefix;
    const end = prefixEnd(prefix);
    if (end !== null) range.lt = end;
    return range;
  }
  for (const name of given) range[name] = bound(flags[name], name)!;
  return range;
}

export async function runScan(directory: string, flags: ScanFlags): Promise<number> {
  const encodings = entryEncodings(flags);
  const range = rangeOf(flags, encodings);
  const format = entryLineFormatter(flags.format, encodings);
  const keysOnly = flags.keysOnly === true;
  await withReadSource(directory, flags, async (source) => {
    const output = new LineWriter(stdoutSink());
    if (flags.format === 'csv') await output.line(keysOnly ? 'key' : 'key,value');
    for await (const [key, value] of source.entries(range, keysOnly)) {
      const written = output.line(format(key, keysOnly ? null : value));
      if (written !== null) await written;
    }
    await output.flush();
  });
  return exitOk;
}

const scanHelp = `
Prints the entries within the bounds in key order (unsigned bytes; --reverse for descending), one per
line: "key<TAB>value" as text, or JSON lines / CSV as dump writes them (load reads both). Bounds are
keys in the key encoding; --prefix selects the keys that start with it.

Text output is for reading: a value with a line break or invalid UTF-8 is printed as it is. For binary
data use --format jsonl (lossless: bytes that are not UTF-8 are written as base64 and marked) or an
--encoding.

Examples:
  $ lightning-cli scan ./data --prefix user: --limit 10
  $ lightning-cli scan ./data --gte a --lt b --reverse
  $ lightning-cli scan ./data --format jsonl --keys-only | wc -l
  $ lightning-cli scan ./data --gte 00 --lt 8000 --key-encoding hex --format jsonl
  $ lightning-cli scan ./data --prefix user: --url http://127.0.0.1:9464
  $ lightning-cli scan ./data --store users --prefix u

With --store, the entries of the named store (keys without any prefix) instead of the default store's.
${liveHelp}
${openExitCodesHelp({ extra: [storeMissingHelp] })}`;

export function registerScanCommand(program: Command): void {
  const scan = program
    .command('scan')
    .description('print the entries within bounds, in key order')
    .argument('<directory>', 'the database directory')
    .option('--gte <key>', 'keys greater than or equal to <key>')
    .option('--gt <key>', 'keys greater than <key>')
    .option('--lte <key>', 'keys less than or equal to <key>')
    .option('--lt <key>', 'keys less than <key>')
    .option('-p, --prefix <key>', 'keys that start with <key>')
    .option('-l, --limit <count>', 'at most <count> entries', parseCount)
    .option('-r, --reverse', 'descending key order')
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(scanFormats)
        .default('text' satisfies ScanFormat),
    )
    .option('-k, --keys-only', 'print keys without values');
  addStoreOption(scan, 'scan');
  addEncodingOptions(scan, 'are written (bounds and output)');
  addLiveOptions(scan);
  finishDatabaseCommand(scan, { create: false, help: scanHelp }, runScan);
}
