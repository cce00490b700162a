import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { addEncodingOptions, type EncodingFlags, entryEncodings } from './byte-encoding.js';
import { openExitCodesHelp } from './cli-database.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitOk } from './database-inspection.js';
import { formatOfFileName, type LoadFormat, loadFormats } from './entry-reader.js';
import { addLiveOptions, liveHelp, type ReadFlags, withReadSource } from './read-source.js';
import { entryLineFormatter } from './scan-command.js';
import { addStoreOption, storeMissingHelp } from './store-option.js';
import { LineWriter, stdoutSink, type TextSink, writeFileAtomically } from './text-output.js';
import { count, createTransferProgress, humanBytes } from './transfer-progress.js';

/**
 * `lightning-cli dump <directory> [file]`: every entry, in key order, as JSON lines (or CSV) that
 * `load` reads back into an equal database. The command holds the database's lock, so no other
 * process writes while it runs and the dump is one consistent state.
 */

interface DumpFlags extends EncodingFlags, ReadFlags {
  format?: LoadFormat;
  header: boolean;
  force?: boolean;
  quiet?: boolean;
}

export async function runDump(
  directory: string,
  file: string | undefined,
  flags: DumpFlags,
): Promise<number> {
  const encodings = entryEncodings(flags);
  const format = flags.format ?? (file === undefined ? 'jsonl' : formatOfFileName(file));
  const toLine = entryLineFormatter(format, encodings);
  const startedMs = Date.now();
  const dumpTo = (sink: TextSink, showProgress: boolean) =>
    withReadSource(directory, flags, async (source) => {
      const entries = await source.entriesTotal();
      // Progress only when stdout is free for it to be read: with the data on stdout it would
      // interleave with the data in a terminal.
      const progress = createTransferProgress('dump', { rows: entries }, { quiet: !showProgress });
      const output = new LineWriter(sink);
      let rows = 0;
      try {
        if (format === 'csv' && flags.header) await output.line('key,value');
        for await (const [key, value] of source.entries(null, false)) {
          rows++;
          const written = output.line(toLine(key, value));
          if (written !== null) {
            await written;
            progress.update(rows, output.bytes);
          }
        }
        await output.flush();
        progress.update(rows, output.bytes);
      } finally {
        progress.done();
      }
      return { rows, bytes: output.bytes };
    });
  if (file === undefined) {
    await dumpTo(stdoutSink(), false);
    return exitOk;
  }
  const path = resolve(file);
  const { rows, bytes } = await writeFileAtomically(path, flags.force === true, (sink) =>
    dumpTo(sink, flags.quiet !== true),
  );
  const seconds = ((Date.now() - startedMs) / 1000).toFixed(1);
  process.stdout.write(`dumped ${count(rows)} entries (${humanBytes(bytes)}) to ${path} in ${seconds} s\n`);
  return exitOk;
}

const dumpHelp = `
Writes every entry in key order, one per line, to [file] (or stdout): JSON lines by default, or CSV
(--format csv, or a file name ending in .csv). "lightning-cli load" reads the result back.

JSON lines are lossless whatever the encoding: a key or value that is not valid UTF-8 is written as
base64 and marked ("valueEncoding": "base64"). CSV has no such mark: dump binary data as CSV with
--encoding base64 (and load it with the same), or a dump in UTF-8 fails on the first such entry.

A file is written under a temporary name and renamed when complete, so an interrupted dump never
leaves a partial file behind; an existing file is replaced only with --force. Progress goes to stderr
when writing to a file.

Examples:
  $ lightning-cli dump ./data backup.jsonl
  $ lightning-cli dump ./data | gzip > backup.jsonl.gz
  $ lightning-cli dump ./data export.csv --encoding base64
  $ lightning-cli dump ./data export.csv --no-header --force
  $ lightning-cli dump ./data backup.jsonl --url http://127.0.0.1:9464
  $ lightning-cli dump ./data users.jsonl --store users

With --store, the named store's entries (its keys without any prefix, its values' stored bytes)
instead of the default store's; "lightning-cli load --store" reads them back into a store.
${liveHelp}
${openExitCodesHelp({ extra: [storeMissingHelp] })}`;

export function registerDumpCommand(program: Command): void {
  const dump = program
    .command('dump')
    .description('write every entry as JSON lines or CSV, loadable by load')
    .argument('<directory>', 'the database directory')
    .argument('[file]', 'the output file (default: stdout)')
    .addOption(
      new Option('--format <format>', 'jsonl or csv (default: by file name, else jsonl)').choices(
        loadFormats,
      ),
    )
    .option('--no-header', 'CSV: no "key,value" header row')
    .option('--force', 'replace [file] if it exists')
    .option('-q, --quiet', 'no progress on stderr');
  addStoreOption(dump, 'dump');
  addEncodingOptions(dump, 'are written');
  addLiveOptions(dump);
  finishDatabaseCommand(dump, { create: false, help: dumpHelp }, runDump);
}
