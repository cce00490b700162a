import { isUtf8 } from 'node:buffer';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { LightningError } from '../../shared-memory/index.js';

/**
 * How keys and values, which are bytes, are written as text on the command line and in files:
 * UTF-8 (the default: most keys are text), or hex and base64 for binary data.
 */

export const encodings = ['utf8', 'hex', 'base64'] as const;
export type Encoding = (typeof encodings)[number];

const hexPattern = /^(?:[0-9a-fA-F]{2})*$/;
// Standard and URL-safe alphabets, padding optional: what common tools print.
const base64Pattern = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Commander's parser for an encoding option: an unknown name is a usage error (exit 2). */
export function parseEncoding(name: string): Encoding {
  const lower = name.toLowerCase() === 'utf-8' ? 'utf8' : name.toLowerCase();
  if (!(encodings as readonly string[]).includes(lower)) {
    throw new InvalidArgumentError(`expected one of ${encodings.join(', ')}`);
  }
  return lower as Encoding;
}

export function isEncoding(name: unknown): name is Encoding {
  return typeof name === 'string' && (encodings as readonly string[]).includes(name);
}

/**
 * Bytes from `text` in `encoding`. Malformed hex or base64 is ERR_BAD_ARGUMENT naming `what`, never
 * silently shortened the way Buffer.from would.
 */
export function decodeText(text: string, encoding: Encoding, what: string): Buffer {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  if (encoding === 'hex') {
    if (!hexPattern.test(text)) {
      throw new LightningError('ERR_BAD_ARGUMENT', `${what} is not hex (an even number of 0-9a-f digits)`);
    }
    return Buffer.from(text, 'hex');
  }
  if (!base64Pattern.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new LightningError('ERR_BAD_ARGUMENT', `${what} is not base64`);
  }
  return Buffer.from(text, 'base64');
}

/** `bytes` as text in `encoding`. UTF-8 that is not valid is replaced (U+FFFD); see `lossless`. */
export function encodeBytes(bytes: Uint8Array, encoding: Encoding): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding);
}

/**
 * The encoding that writes `bytes` without loss: `preferred`, unless that is UTF-8 and the bytes are
 * not valid UTF-8, in which case base64.
 */
export function losslessEncoding(bytes: Uint8Array, preferred: Encoding): Encoding {
  return preferred === 'utf8' && !isUtf8(bytes) ? 'base64' : preferred;
}

export interface EncodingFlags {
  encoding?: Encoding;
  keyEncoding?: Encoding;
  valueEncoding?: Encoding;
}

export interface EntryEncodings {
  key: Encoding;
  value: Encoding;
}

/** `--key-encoding` and `--value-encoding` each override `--encoding`, which defaults to UTF-8. */
export function entryEncodings(flags: EncodingFlags): EntryEncodings {
  const both = flags.encoding ?? 'utf8';
  return { key: flags.keyEncoding ?? both, value: flags.valueEncoding ?? both };
}

/** --encoding, --key-encoding and --value-encoding, with `what` saying where the encoding applies. */
export function addEncodingOptions(command: Command, what: string): Command {
  const option = (flags: string, description: string) =>
    new Option(flags, description).choices(encodings).argParser(parseEncoding);
  return command
    .addOption(option('-e, --encoding <name>', `how keys and values ${what}; default utf8`))
    .addOption(option('--key-encoding <name>', 'the encoding of keys only (overrides --encoding)'))
    .addOption(option('--value-encoding <name>', 'the encoding of values only (overrides --encoding)'));
}
