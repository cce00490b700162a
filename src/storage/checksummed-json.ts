import { LightningError } from '../shared-memory/errors.js';
import { readTextIfExists, writeFileDurably } from './durable-file.js';
import { xxhashApi } from './xxhash.js';

/**
 * The small JSON files that guard themselves (the checkpoint manifest, a backup's descriptor): a
 * `format` name and a `formatVersion`, the fields, and `checksum`, the xxh64 of the canonical JSON of
 * everything else. The reading and writing around the fields is the same for each, and kept here so
 * that a damaged or newer file is reported the same way whichever it is; what the fields mean, and
 * how they are checked, stays with each file.
 */

/** Rejects a file (or an argument) with a reason; each caller decides the error code. */
export type Fail = (why: string) => never;

export interface ChecksummedJsonKind {
  /** The `format` field's value. */
  readonly format: string;
  readonly formatVersion: number;
  /** What the file is, for "not <description>": e.g. "a lightning-db manifest". */
  readonly description: string;
  /** The version's name in ERR_FORMAT_VERSION: e.g. "manifest format". */
  readonly versionName: string;
}

/** A u64 stored as a decimal string (JSON numbers lose precision past 2^53). */
export const decimalU64Pattern = /^(0|[1-9][0-9]{0,19})$/;

/**
 * Reads `file`: null if it is absent. ERR_CORRUPTION if it is not JSON or not of `kind`'s format,
 * ERR_FORMAT_VERSION if another version wrote it. Returns its fields, unchecked, and a `fail` that
 * throws ERR_CORRUPTION naming the file, for the caller's checks of the fields and the checksum.
 */
export async function readChecksummedJson(
  file: string,
  kind: ChecksummedJsonKind,
): Promise<{ fields: Record<string, unknown>; fail: Fail } | null> {
  const text = await readTextIfExists(file);
  if (text === null) return null;
  const fail: Fail = (why) => {
    throw new LightningError('ERR_CORRUPTION', `${file}: ${why}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LightningError('ERR_CORRUPTION', `${file}: not valid JSON`, { cause: error });
  }
  if (!isRecord(parsed) || parsed.format !== kind.format) fail(`not ${kind.description}`);
  // The version is checked before anything else: a later version may change every other field.
  if (parsed.formatVersion !== kind.formatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `${file}: ${kind.versionName} version ${String(parsed.formatVersion)}; this build reads version ${kind.formatVersion}`,
    );
  }
  return { fields: parsed, fail };
}

/** xxh64 (hex) of the JSON of `canonical`: the caller fixes its key order, so equal contents hash equal. */
export async function checksumOf(canonical: object): Promise<string> {
  const { h64ToString } = await xxhashApi();
  return h64ToString(JSON.stringify(canonical));
}

/**
 * Writes `canonical` and its checksum to `file` atomically and durably (temporary file, fsync,
 * rename, fsync of the directory), so a crash leaves the old file or the new one.
 */
export async function writeChecksummedJson(file: string, canonical: object): Promise<void> {
  const content = { ...canonical, checksum: await checksumOf(canonical) };
  await writeFileDurably(file, `${JSON.stringify(content, null, 2)}\n`);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
