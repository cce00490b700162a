import { keyToScratchBytes } from '../../shared-memory/bytes.js';
import { keyToBytes, LightningError, type RangeOptions, valueToBytes } from '../../shared-memory/index.js';
import type { EncodingName } from './encoding-types.js';

/**
 * An encoding at run time: values to stored bytes and back. Keys and values of a database (and of
 * each named store's view) each have one, or none: null is the default, bytes as given.
 */
export interface Codec {
  /** A built-in encoding's name travels in a database handle to attached threads; 'custom' cannot. */
  readonly name: EncodingName | 'custom';
  encode(value: unknown): Uint8Array;
  decode(bytes: Buffer): unknown;
}

/** The codecs of a database's keys and values. */
export interface Encodings {
  keys: Codec | null;
  values: Codec | null;
}

export const noEncodings: Encodings = { keys: null, values: null };

const names: readonly string[] = ['utf8', 'binary', 'json', 'msgpack'];

function bad(message: string, cause?: unknown): LightningError {
  return new LightningError('ERR_BAD_ARGUMENT', message, cause === undefined ? undefined : { cause });
}

const utf8: Codec = {
  name: 'utf8',
  encode(value) {
    if (typeof value !== 'string') throw bad(`the utf8 encoding takes a string, got ${typeof value}`);
    return Buffer.from(value, 'utf8');
  },
  decode: (bytes) => bytes.toString('utf8'),
};

const binary: Codec = {
  name: 'binary',
  encode(value) {
    if (!(value instanceof Uint8Array))
      throw bad(`the binary encoding takes a Uint8Array, got ${typeof value}`);
    return value;
  },
  decode: (bytes) => bytes,
};

const json: Codec = {
  name: 'json',
  encode(value) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      throw bad('the json encoding cannot encode this value', error);
    }
    if (text === undefined) throw bad(`the json encoding cannot encode ${typeof value}`);
    return Buffer.from(text, 'utf8');
  },
  decode(bytes) {
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (error) {
      throw bad('stored bytes are not JSON: were they written with another encoding?', error);
    }
  },
};

/** msgpack through msgpackr, loaded only by a database that uses it. Plain maps, no record extension. */
async function msgpack(): Promise<Codec> {
  const { Packr } = await import('msgpackr');
  const packr = new Packr({ useRecords: false });
  return {
    name: 'msgpack',
    encode(value) {
      try {
        return packr.pack(value);
      } catch (error) {
        throw bad('the msgpack encoding cannot encode this value', error);
      }
    },
    decode(bytes) {
      try {
        return packr.unpack(bytes) as unknown;
      } catch (error) {
        throw bad('stored bytes are not msgpack: were they written with another encoding?', error);
      }
    },
  };
}

function custom(option: { encode: unknown; decode: unknown }, what: string): Codec {
  const { encode, decode } = option;
  if (typeof encode !== 'function' || typeof decode !== 'function')
    throw bad(`${what} must be a name (${names.join(', ')}) or an object with encode() and decode()`);
  return {
    name: 'custom',
    encode(value) {
      const bytes: unknown = encode.call(option, value);
      if (typeof bytes === 'string') return Buffer.from(bytes, 'utf8');
      if (bytes instanceof Uint8Array) return bytes;
      throw bad(`${what}.encode() must return a Uint8Array or a string, got ${typeof bytes}`);
    },
    decode: (bytes) => decode.call(option, bytes) as unknown,
  };
}

/** The codec an option names (undefined: none, the default). Throws ERR_BAD_ARGUMENT on anything else. */
export async function loadEncoding(option: unknown, what: string): Promise<Codec | null> {
  if (option === undefined) return null;
  if (option === 'utf8') return utf8;
  if (option === 'binary') return binary;
  if (option === 'json') return json;
  if (option === 'msgpack') return msgpack();
  if (typeof option === 'object' && option !== null)
    return custom(option as { encode: unknown; decode: unknown }, what);
  throw bad(
    `${what} must be one of ${names.join(', ')} or an object with encode() and decode(), got ${String(option)}`,
  );
}

/** A key's stored bytes, checked (type, size). Without a codec, a string key goes to the thread's scratch. */
export function encodeKey(codec: Codec | null, key: unknown): Uint8Array {
  return codec === null ? keyToScratchBytes(key) : keyToBytes(codec.encode(key));
}

/** Like encodeKey, into bytes of its own (for a key kept past the call). */
export function encodeKeyCopy(codec: Codec | null, key: unknown, what?: string): Uint8Array {
  return keyToBytes(codec === null ? key : codec.encode(key), what);
}

export function encodeValue(codec: Codec | null, value: unknown): Uint8Array {
  return valueToBytes(codec === null ? value : codec.encode(value));
}

export function decode<T>(codec: Codec | null, bytes: Buffer | undefined): T | undefined {
  if (bytes === undefined) return undefined;
  return (codec === null ? bytes : codec.decode(bytes)) as T;
}

/**
 * Range options with their bounds encoded as keys (the prefix stays bytes), for parseRangeOptions to
 * check; as they are without a codec.
 */
export function encodeBounds(codec: Codec | null, options: object | undefined): RangeOptions | undefined {
  if (codec === null || typeof options !== 'object' || options === null)
    return options as RangeOptions | undefined;
  const encoded = { ...options } as Record<string, unknown>;
  for (const bound of ['gt', 'gte', 'lt', 'lte']) {
    const value = encoded[bound];
    if (value !== undefined) encoded[bound] = encodeKeyCopy(codec, value, bound);
  }
  return encoded as RangeOptions;
}
