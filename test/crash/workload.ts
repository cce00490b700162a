/**
 * The vocabulary the crash child and the checking parent share: the key names, the self-describing
 * values, and the one-line reports the child sends for every write it issues and every write that is
 * acknowledged.
 *
 * Values carry who wrote them so that whatever a recovered database returns can be traced back to
 * exactly one write (or shown to be none): a 28-byte header (key, generation, sequence number, batch
 * entry, length, checksum) and a body generated from those same fields. The parent regenerates the
 * whole value from the fields it expects and compares bytes, so "exact value" means every byte. Values
 * shorter than the header (0..27 bytes: the engine must handle them too) carry no header; they are the
 * first bytes of the same generated stream and are matched by comparing bytes with every write that
 * could be there.
 */
import xxhash from 'xxhash-wasm';

/** The keyspace is bounded so that overwrites, deletes of live keys and re-creates all happen. */
export const keyCount = 256;

const keyPrefix = 'crash:';

/**
 * The key with index `index`. Every eleventh key is long (up to ~270 bytes), so key lengths vary
 * without leaving the bounded keyspace.
 */
export function keyName(index: number): string {
  const base = `${keyPrefix}${index.toString().padStart(4, '0')}`;
  return index % 11 === 0 ? `${base}:${'x'.repeat(60 + ((index * 37) % 200))}` : base;
}

/** The index of a key name, or null for a name this workload never writes. */
export function keyIndexOf(name: string): number | null {
  const match = /^crash:(\d{4})(?::x+)?$/.exec(name);
  if (match === null) return null;
  const index = Number(match[1]);
  return index < keyCount && keyName(index) === name ? index : null;
}

/** Who wrote a value: one entry of one operation of one generation. */
export interface ValueSpec {
  readonly key: number;
  /** Odd generations are the crash child's run r (2r + 1); even ones the parent's writes after recovery. */
  readonly gen: number;
  /** The operation's sequence number within its generation. */
  readonly seq: number;
  /** The entry's index within its batch (0 for a single put). */
  readonly entry: number;
  readonly length: number;
}

export const valueHeaderBytes = 28;
const valueMagic = 0x31_56_43_4c; // "LCV1" little-endian
/** The magic as it appears in bytes, to find a value inside a log record. */
export const valueMagicBytes = Buffer.from('LCV1');
const kMagic = 0;
const kKey = 4;
const kGen = 8;
const kSeq = 12;
const kEntry = 16;
const kLength = 20;
const kChecksum = 24;

export type H32 = (input: Uint8Array, seed?: number) => number;

let hasher: Promise<H32> | undefined;

/** xxh32, loaded once: xxhash-wasm compiles a WebAssembly module, too slow to repeat per value. */
export function loadH32(): Promise<H32> {
  hasher ??= xxhash().then((api) => api.h32Raw);
  return hasher;
}

/** A 32-bit seed that differs for every (key, gen, seq, entry): the body's bytes depend on all four. */
function streamSeed(spec: ValueSpec): number {
  let s = Math.imul(spec.key + 1, 0x9e37_79b1) ^ Math.imul(spec.gen + 1, 0x85eb_ca77);
  s ^= Math.imul(spec.seq + 1, 0xc2b2_ae3d) ^ Math.imul(spec.entry + 1, 0x27d4_eb2f);
  return (s ^ (s >>> 15)) >>> 0 || 1;
}

/** Fills `target[from..]` with xorshift32 output: cheap enough for 5 MB values, and never constant. */
function fillStream(target: Buffer, from: number, seed: number): void {
  let x = seed;
  let i = from;
  for (; i + 4 <= target.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    target.writeInt32LE(x | 0, i);
  }
  for (; i < target.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    target[i] = x & 0xff;
  }
}

/** The exact bytes of the value `spec` describes. O(length). */
export function encodeValue(h32: H32, spec: ValueSpec): Buffer {
  const value = Buffer.alloc(spec.length);
  if (spec.length < valueHeaderBytes) {
    fillStream(value, 0, streamSeed(spec));
    return value;
  }
  value.writeUInt32LE(valueMagic, kMagic);
  value.writeUInt32LE(spec.key, kKey);
  value.writeUInt32LE(spec.gen, kGen);
  value.writeUInt32LE(spec.seq, kSeq);
  value.writeUInt32LE(spec.entry, kEntry);
  value.writeUInt32LE(spec.length, kLength);
  fillStream(value, valueHeaderBytes, streamSeed(spec));
  value.writeUInt32LE(valueChecksum(h32, value), kChecksum);
  return value;
}

/** The checksum covers the header fields before it and the body: a torn or mixed value fails it. */
function valueChecksum(h32: H32, value: Buffer): number {
  return h32(value.subarray(valueHeaderBytes), h32(value.subarray(0, kChecksum), 0));
}

export type DecodedValue =
  | { readonly ok: true; readonly spec: ValueSpec }
  | { readonly ok: false; readonly reason: string };

/**
 * What a value read back claims to be, checked for tearing (length field and checksum). Values
 * shorter than the header claim nothing: the caller matches their bytes instead.
 */
export function decodeValue(h32: H32, value: Buffer): DecodedValue {
  if (value.length < valueHeaderBytes)
    return { ok: false, reason: `a ${value.length}-byte value (headerless)` };
  if (value.readUInt32LE(kMagic) !== valueMagic) {
    return {
      ok: false,
      reason: `${value.length} bytes without the value magic: not a value this test wrote`,
    };
  }
  const spec: ValueSpec = {
    key: value.readUInt32LE(kKey),
    gen: value.readUInt32LE(kGen),
    seq: value.readUInt32LE(kSeq),
    entry: value.readUInt32LE(kEntry),
    length: value.readUInt32LE(kLength),
  };
  const what = describeSpec(spec);
  if (spec.length !== value.length) {
    return { ok: false, reason: `TORN: ${what} claims ${spec.length} bytes but ${value.length} came back` };
  }
  if (value.readUInt32LE(kChecksum) !== valueChecksum(h32, value)) {
    return { ok: false, reason: `TORN: ${what} fails its checksum` };
  }
  return { ok: true, spec };
}

/** The key, generation and sequence number in the header of a value found at `at` in `bytes`. */
export function peekValueHeader(bytes: Buffer, at: number): { key: number; gen: number; seq: number } | null {
  if (at + valueHeaderBytes > bytes.length || bytes.readUInt32LE(at + kMagic) !== valueMagic) return null;
  return {
    key: bytes.readUInt32LE(at + kKey),
    gen: bytes.readUInt32LE(at + kGen),
    seq: bytes.readUInt32LE(at + kSeq),
  };
}

export function describeSpec(spec: ValueSpec): string {
  const entry = spec.entry === 0 ? '' : ` entry ${spec.entry}`;
  return `key ${spec.key} gen ${spec.gen} seq ${spec.seq}${entry} (${spec.length} B)`;
}

// ---------------------------------------------------------------------------------------------------
// Reports: one line each, written synchronously by the child to file descriptor 3.
//
//   O                         the child is about to open the database
//   R                         the database is open (recovery finished); writes start now
//   I <seq> <kind> <entries>  operation <seq> is about to be handed to the database. <kind> is p (put),
//                             d (del) or b (batch); <entries> is a comma-separated list of
//                             <key>.<length> (a put) or <key>.d (a delete), in batch order
//   A <seq>                   operation <seq> was acknowledged (its promise resolved)
//   X <seq> <code>            operation <seq> was rejected with <code> (a batch across partitions)
//   F <message>               the child failed unexpectedly; the parent fails the test
// ---------------------------------------------------------------------------------------------------

/** One entry of an operation: a put of `length` bytes, or a delete (`length` null). */
export interface OpEntry {
  readonly key: number;
  readonly length: number | null;
}

export type OpKind = 'p' | 'd' | 'b';

export function formatIssue(seq: number, kind: OpKind, entries: readonly OpEntry[]): string {
  const list = entries.map((e) => `${e.key}.${e.length === null ? 'd' : e.length}`).join(',');
  return `I ${seq} ${kind} ${list}\n`;
}

export function parseEntries(list: string): OpEntry[] {
  return list.split(',').map((item) => {
    const [key, length] = item.split('.');
    const keyIndex = Number(key);
    if (!Number.isInteger(keyIndex) || keyIndex < 0 || keyIndex >= keyCount || length === undefined) {
      throw new Error(`bad entry ${JSON.stringify(item)} in a report`);
    }
    if (length === 'd') return { key: keyIndex, length: null };
    const bytes = Number(length);
    if (!Number.isInteger(bytes) || bytes < 0) throw new Error(`bad length in entry ${JSON.stringify(item)}`);
    return { key: keyIndex, length: bytes };
  });
}
