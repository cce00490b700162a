import { LightningError } from '../../shared-memory/index.js';
import {
  decodeText,
  type Encoding,
  type EntryEncodings,
  encodeBytes,
  isEncoding,
  losslessEncoding,
} from './byte-encoding.js';

/**
 * One entry as a line of text, the format `dump` and `scan --format jsonl` write and `load` reads.
 *
 * JSON lines: `{"key":"user:1","value":"alice"}`. A key or value written in another encoding than
 * UTF-8 says so in `keyEncoding` / `valueEncoding`, so every line reads back without knowing the
 * options it was written with; bytes that are not valid UTF-8 are written as base64 even when UTF-8
 * was asked for, so a dump never loses a byte.
 *
 * CSV: `key,value` rows (RFC 4180 quoting), every cell in the one encoding the command names: CSV
 * has no room for a per-cell marker, so bytes the encoding cannot carry are an error instead.
 */

export interface JsonEntry {
  key: string;
  value?: string;
  keyEncoding?: Encoding;
  valueEncoding?: Encoding;
}

/** One JSON line (without the newline) for an entry; `value` null writes the key alone. */
export function jsonLine(key: Uint8Array, value: Uint8Array | null, encodings: EntryEncodings): string {
  const keyEncoding = losslessEncoding(key, encodings.key);
  const entry: JsonEntry = { key: encodeBytes(key, keyEncoding) };
  if (keyEncoding !== 'utf8') entry.keyEncoding = keyEncoding;
  if (value !== null) {
    const valueEncoding = losslessEncoding(value, encodings.value);
    entry.value = encodeBytes(value, valueEncoding);
    if (valueEncoding !== 'utf8') entry.valueEncoding = valueEncoding;
  }
  return JSON.stringify(entry);
}

export interface ParsedEntry {
  key: Buffer;
  value: Buffer;
}

/**
 * The entry on one JSON line: an object with string `key` and `value`, and optionally the encoding
 * of each (else `defaults`). Anything else is ERR_BAD_ARGUMENT saying what is wrong with the line;
 * the caller adds the line number. Other fields are ignored, so lines may carry more than entries.
 */
export function parseJsonLine(text: string, defaults: EntryEncodings): ParsedEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LightningError('ERR_BAD_ARGUMENT', `not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'expected an object {"key": ..., "value": ...}');
  }
  const entry = parsed as Record<string, unknown>;
  const keyEncoding = encodingField(entry, 'keyEncoding', defaults.key);
  const valueEncoding = encodingField(entry, 'valueEncoding', defaults.value);
  return {
    key: decodeText(stringField(entry, 'key'), keyEncoding, 'the key'),
    value: decodeText(stringField(entry, 'value'), valueEncoding, 'the value'),
  };
}

function stringField(entry: Record<string, unknown>, name: string): string {
  const field = entry[name];
  if (typeof field !== 'string') {
    const got = field === undefined ? 'it is missing' : `got ${JSON.stringify(field)}`;
    throw new LightningError('ERR_BAD_ARGUMENT', `"${name}" must be a string; ${got}`);
  }
  return field;
}

function encodingField(entry: Record<string, unknown>, name: string, fallback: Encoding): Encoding {
  const field = entry[name];
  if (field === undefined) return fallback;
  if (!isEncoding(field)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `"${name}" must be "utf8", "hex" or "base64"; got ${JSON.stringify(field)}`,
    );
  }
  return field;
}

const csvQuoteNeeded = /[",\r\n]/;

/** One CSV cell: quoted (with quotes doubled) when it holds a comma, a quote or a line break. */
export function csvCell(text: string): string {
  return csvQuoteNeeded.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * One CSV row (without the line break) for an entry. In UTF-8, bytes that are not valid UTF-8 are
 * ERR_BAD_ARGUMENT: a CSV cell cannot say it holds base64, and a replaced byte would be lost data.
 */
export function csvLine(key: Uint8Array, value: Uint8Array | null, encodings: EntryEncodings): string {
  const cell = (bytes: Uint8Array, encoding: Encoding, what: string) => {
    if (losslessEncoding(bytes, encoding) !== encoding) {
      throw new LightningError(
        'ERR_BAD_ARGUMENT',
        `${what} ${JSON.stringify(encodeBytes(key, 'base64'))} (base64) is not valid UTF-8, which CSV in utf8 cannot carry; use --encoding base64 or --format jsonl`,
      );
    }
    return csvCell(encodeBytes(bytes, encoding));
  };
  const keyCell = cell(key, encodings.key, 'the key');
  return value === null ? keyCell : `${keyCell},${cell(value, encodings.value, 'the value of key')}`;
}
