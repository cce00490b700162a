/**
 * The types of keys and values as callers see them, for a database opened with `open<K, V>()`. The
 * default (K and V left out) is today's API: keys and values given as bytes or strings (UTF-8), and
 * returned as Buffers.
 */

/** What the default encoding takes: bytes, or a string stored as its UTF-8. */
export type Bytes = Uint8Array | string;

/** True when T is exactly the default `Bytes`. */
type IsBytes<T> = [T] extends [Bytes] ? ([Bytes] extends [T] ? true : false) : false;

/** What reads return for T: a Buffer for the default, else T itself. */
export type Out<T> = IsBytes<T> extends true ? Buffer : T;

/** An encoding of one's own: `decode(encode(x))` must give back x. */
export interface CustomEncoding<T> {
  /** The bytes stored for `value` (a string is stored as its UTF-8). */
  encode(value: T): Uint8Array | string;
  /** The value of stored bytes. The Buffer is the caller's to keep. */
  decode(bytes: Buffer): T;
}

/** The built-in encodings, by name. */
export type EncodingName = 'utf8' | 'binary' | 'json' | 'msgpack';

/**
 * The encodings a key or value of type T may use: 'utf8' for strings, 'binary' for bytes (and for the
 * default), 'json' and 'msgpack' for any declared type, or a custom one. With the type left at the
 * default only 'binary' is accepted: name the type (`open<string, User>()`) to use another.
 */
export type EncodingOption<T> =
  | CustomEncoding<T>
  | (IsBytes<T> extends true
      ? 'binary'
      : [T] extends [string]
        ? 'utf8' | 'json' | 'msgpack'
        : [T] extends [Uint8Array]
          ? 'binary' | 'msgpack'
          : 'json' | 'msgpack');

/** The encoding options of `open()`, `attach()` and `db.store()`. */
export interface EncodingOptions<K, V> {
  /** How keys are stored; their encoded bytes are also their sort order. Default: bytes as given. */
  keyEncoding?: EncodingOption<K>;
  /** How values are stored. Default: bytes as given, Buffers returned. */
  valueEncoding?: EncodingOption<V>;
}
