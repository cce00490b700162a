import { StringDecoder } from 'node:string_decoder';
import { messageWithoutCode } from '../../shared-memory/errors.js';
import { isLightningError, keyBytesMax, LightningError, valueBytesMax } from '../../shared-memory/index.js';
import { decodeText, type EntryEncodings } from './byte-encoding.js';
import { type CsvRecord, CsvRecordSplitter } from './csv-records.js';
import { parseJsonLine } from './entry-format.js';

/**
 * Turns the bytes of a JSON lines or CSV file into entries for `load`, chunk by chunk, each entry
 * (or the reason it is bad) with the line it came from. Bad lines are items, not exceptions, so the
 * caller decides whether one ends the load or is skipped and counted.
 */

export const loadFormats = ['jsonl', 'csv'] as const;
export type LoadFormat = (typeof loadFormats)[number];

export type LoadItem =
  | { readonly line: number; readonly key: Buffer; readonly value: Buffer; readonly error?: undefined }
  | { readonly line: number; readonly error: string };

export interface ReadOptions {
  format: LoadFormat;
  /** CSV: the first record names the columns, and `key` and `value` are picked by name. */
  header: boolean;
  encodings: EntryEncodings;
}

export interface ReadChunk {
  readonly items: LoadItem[];
  /** Input bytes this chunk consumed, for progress. */
  readonly bytes: number;
}

/** The format a file name suggests (`.csv`, else JSON lines), for when --format is not given. */
export function formatOfFileName(file: string): LoadFormat {
  return file.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl';
}

/**
 * Reads `input` to the end. A CSV header that names no key or value column is thrown as
 * ERR_BAD_ARGUMENT: no line of such a file could load, so there is nothing to skip past.
 */
export async function* readEntries(
  input: AsyncIterable<Buffer>,
  options: ReadOptions,
): AsyncGenerator<ReadChunk> {
  const decoder = new StringDecoder('utf8');
  const parse = options.format === 'csv' ? csvParser(options) : jsonLinesParser(options);
  let first = true;
  for await (const chunk of input) {
    let text = decoder.write(chunk);
    if (first && text.length > 0) {
      // A byte order mark is how some editors start UTF-8 files; it is not part of the first key.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    yield { items: parse.push(text), bytes: chunk.length };
  }
  yield { items: parse.push(decoder.end(), true), bytes: 0 };
}

interface Parser {
  push(text: string, last?: boolean): LoadItem[];
}

function jsonLinesParser(options: ReadOptions): Parser {
  let pending = '';
  let line = 0;
  const itemOf = (text: string): LoadItem | null => {
    line++;
    if (text.trim() === '') return null;
    try {
      const { key, value } = parseJsonLine(text, options.encodings);
      return checkedEntry(line, key, value);
    } catch (error) {
      return { line, error: messageOf(error) };
    }
  };
  return {
    push(text, last = false) {
      pending += text;
      const items: LoadItem[] = [];
      let start = 0;
      for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n', start)) {
        const item = itemOf(pending.slice(start, newline));
        if (item !== null) items.push(item);
        start = newline + 1;
      }
      pending = pending.slice(start);
      if (last && pending !== '') {
        const item = itemOf(pending);
        if (item !== null) items.push(item);
        pending = '';
      }
      return items;
    },
  };
}

function csvParser(options: ReadOptions): Parser {
  const splitter = new CsvRecordSplitter();
  let columns: { key: number; value: number; count: number } | null = options.header
    ? null
    : { key: 0, value: 1, count: 2 };
  const itemOf = (record: CsvRecord): LoadItem | null => {
    if (record.error !== undefined) return { line: record.line, error: record.error };
    if (columns === null) {
      columns = headerColumns(record.fields, record.line);
      return null;
    }
    if (record.fields.length !== columns.count) {
      const expected = options.header ? `${columns.count} (as in the header)` : '2 (key,value)';
      return { line: record.line, error: `expected ${expected} fields, found ${record.fields.length}` };
    }
    try {
      const key = decodeText(record.fields[columns.key]!, options.encodings.key, 'the key');
      const value = decodeText(record.fields[columns.value]!, options.encodings.value, 'the value');
      return checkedEntry(record.line, key, value);
    } catch (error) {
      return { line: record.line, error: messageOf(error) };
    }
  };
  return {
    push(text, last = false) {
      const records = splitter.push(text);
      if (last) records.push(...splitter.finish());
      const items: LoadItem[] = [];
      for (const record of records) {
        const item = itemOf(record);
        if (item !== null) items.push(item);
      }
      return items;
    },
  };
}

function headerColumns(fields: readonly string[], line: number) {
  const names = fields.map((field) => field.trim().toLowerCase());
  const key = names.indexOf('key');
  const value = names.indexOf('value');
  if (key === -1 || value === -1) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `line ${line}: the CSV header ${JSON.stringify(fields.join(','))} names no "key" and "value" columns; use --no-header if the file has no header`,
    );
  }
  return { key, value, count: fields.length };
}

/** Size limits checked here, so a line too large is a bad line with its number, not a failed write. */
function checkedEntry(line: number, key: Buffer, value: Buffer): LoadItem {
  if (key.length > keyBytesMax)
    return { line, error: `the key is ${key.length} bytes; the limit is ${keyBytesMax}` };
  if (value.length > valueBytesMax) {
    return { line, error: `the value is ${value.length} bytes; the limit is ${valueBytesMax}` };
  }
  return { line, key, value };
}

/** A bad line's reason without the error code in front: the line number is the useful prefix. */
function messageOf(error: unknown): string {
  if (!isLightningError(error)) throw error;
  return messageWithoutCode(error);
}
