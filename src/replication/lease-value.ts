import { xxh32 } from '../main/xxh32.js';
import { LightningError } from '../shared-memory/errors.js';

/**
 * The value stored under the lease key: who holds it and in which term, as JSON with a format name,
 * a version and a checksum, like every other stored format of the database.
 *
 *     {"format":"lightning-lease","formatVersion":1,"holder":"<name>","term":<n>,"checksum":"<xxh32 hex>"}
 *
 * The checksum is the xxh32 of the JSON of the other four fields in that order. The term is the KV
 * revision at which the lease was created; the create itself cannot know its own revision, so it
 * writes 0, which a reader replaces with the entry's revision (see `readLeaderLease`).
 */
export const leaseValueFormat = 'lightning-lease';
export const leaseValueFormatVersion = 1;
/** Names are for people and logs: short enough that the value stays one small message. */
export const leaseHolderBytesMax = 256;

export interface LeaseValue {
  readonly holder: string;
  readonly term: number;
}

function checksumOf(value: LeaseValue): string {
  const canonical = JSON.stringify({
    format: leaseValueFormat,
    formatVersion: leaseValueFormatVersion,
    holder: value.holder,
    term: value.term,
  });
  return xxh32(new TextEncoder().encode(canonical)).toString(16).padStart(8, '0');
}

export function validateHolder(holder: unknown): asserts holder is string {
  if (typeof holder !== 'string' || holder.length === 0 || Buffer.byteLength(holder) > leaseHolderBytesMax) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `a lease holder must be a non-empty string of at most ${leaseHolderBytesMax} bytes`,
    );
  }
}

export function encodeLeaseValue(value: LeaseValue): Uint8Array {
  validateHolder(value.holder);
  const fields = {
    format: leaseValueFormat,
    formatVersion: leaseValueFormatVersion,
    holder: value.holder,
    term: value.term,
    checksum: checksumOf(value),
  };
  return new TextEncoder().encode(JSON.stringify(fields));
}

/** Decodes a lease value: ERR_FORMAT_VERSION for another version, ERR_CORRUPTION for anything else. */
export function decodeLeaseValue(bytes: Uint8Array, where: string): LeaseValue {
  const fail = (why: string): never => {
    throw new LightningError('ERR_CORRUPTION', `lease value at ${where}: ${why}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new LightningError('ERR_CORRUPTION', `lease value at ${where}: not JSON`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null) return fail('not an object');
  const fields = parsed as Record<string, unknown>;
  if (fields.format !== leaseValueFormat) fail('not a lease value');
  if (fields.formatVersion !== leaseValueFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `lease value at ${where}: format version ${String(fields.formatVersion)}; this build reads version ${leaseValueFormatVersion}`,
    );
  }
  const { holder, term } = fields;
  if (typeof holder !== 'string') return fail('holder is not a string');
  if (typeof term !== 'number' || !Number.isSafeInteger(term) || term < 0)
    return fail('term is not a safe integer');
  const value = { holder, term };
  if (fields.checksum !== checksumOf(value)) fail('checksum mismatch');
  return value;
}
