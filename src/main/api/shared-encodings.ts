import { LightningError } from '../../shared-memory/index.js';
import type { DatabaseHandle } from '../database-handle.js';
import type { EncodingName } from './encoding-types.js';
import { type Codec, type Encodings, loadEncoding } from './encodings.js';

/**
 * Encodings crossing threads. A database handle names its database's built-in encodings, so a
 * thread that attaches reads and writes the same way. A custom encoding is code, which cannot be
 * structured-cloned: the handle says 'custom', and attach() must be given the encoding itself.
 */

/** The handle `db.share()` returns: the database's, with its encodings named when it has any. */
export function shareWithEncodings(handle: DatabaseHandle, encodings: Encodings): DatabaseHandle {
  if (encodings.keys === null && encodings.values === null) return handle;
  return { ...handle, keyEncoding: encodings.keys?.name, valueEncoding: encodings.values?.name };
}

/**
 * The encodings of an attaching thread: those given to attach() where given, else those the handle
 * names. A custom encoding named by the handle and not given is ERR_BAD_ARGUMENT.
 */
export async function attachEncodings(
  handle: DatabaseHandle,
  options: { keyEncoding?: unknown; valueEncoding?: unknown } | undefined,
): Promise<Encodings> {
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw new LightningError('ERR_BAD_ARGUMENT', 'attach options must be an object');
  return {
    keys: await pick(handle.keyEncoding, options?.keyEncoding, 'keyEncoding'),
    values: await pick(handle.valueEncoding, options?.valueEncoding, 'valueEncoding'),
  };
}

async function pick(
  named: EncodingName | 'custom' | undefined,
  given: unknown,
  what: string,
): Promise<Codec | null> {
  if (given !== undefined) return loadEncoding(given, what);
  if (named === 'custom') {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `the database uses a custom ${what}, which cannot cross threads: pass it to attach(handle, { ${what} })`,
    );
  }
  return loadEncoding(named, what);
}
