import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import { ensureDirectory, readTextIfExists, writeFileDurably } from './durable-file.js';
import { isPartitionHash, legacyPartitionHash, type PartitionHash } from './partition-hash.js';
import { xxhashApi } from './xxhash.js';

/** The file naming a directory as a lightning-db database, with what is fixed at creation. */
export const metadataFileName = 'LIGHTNING.json';
/**
 * Version 2 added `databaseId`, which every partition's manifest repeats: a LIGHTNING.json that is
 * missing or belongs to another database is found out, never taken for a fresh one. Version 1 files
 * are read (with no id) and upgraded when the database opens. Version 3 allows `hash: 'xxh32'` (see
 * partition-hash.ts): a build that reads only versions 1 and 2 would route such a database's keys
 * with xxh64 and find none of them, so it must refuse the file. Older files keep 'xxh64'.
 */
export const metadataFormatVersion = 3;
const metadataFormatVersionsRead = [1, 2, 3];

export interface DatabaseMetadata {
  format: 'lightning-db';
  formatVersion: number;
  /** Fixed at creation: a key's partition is hash(key) mod partitions. */
  partitions: number;
  /** Fixed at creation: 'xxh32' since version 3, 'xxh64' before. */
  hash: PartitionHash;
  createdAt: string;
  /** Random, fixed at creation, repeated in every partition's manifest; null in a version 1 file. */
  databaseId: string | null;
}

interface MetadataFile extends DatabaseMetadata {
  /** xxh64 (hex) of the JSON of the other fields, in this order. */
  checksum: string;
}

/** A new database's identity: 128 random bits, in hex. */
export function newDatabaseId(): string {
  return randomBytes(16).toString('hex');
}

async function checksumOf(metadata: DatabaseMetadata): Promise<string> {
  const { h64ToString } = await xxhashApi();
  const { format, formatVersion, partitions, hash, createdAt, databaseId } = metadata;
  // Version 1 checksummed these five fields; versions 2 and 3 add the id after them.
  const fields =
    formatVersion === 1
      ? { format, formatVersion, partitions, hash, createdAt }
      : { format, formatVersion, partitions, hash, createdAt, databaseId };
  return h64ToString(JSON.stringify(fields));
}

/** Reads the metadata of the database at `path`, or null if the directory holds none. */
export async function readMetadata(path: string): Promise<DatabaseMetadata | null> {
  const file = join(path, metadataFileName);
  const text = await readTextIfExists(file);
  if (text === null) return null;
  let parsed: MetadataFile;
  try {
    parsed = JSON.parse(text) as MetadataFile;
  } catch (error) {
    throw new LightningError('ERR_CORRUPTION', `${file}: not valid JSON`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || parsed.format !== 'lightning-db')
    throw new LightningError('ERR_CORRUPTION', `${file}: not a lightning-db metadata file`);
  if (!metadataFormatVersionsRead.includes(parsed.formatVersion)) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `${file}: format version ${String(parsed.formatVersion)}; this build reads versions ${metadataFormatVersionsRead.join(' and ')}`,
    );
  }
  const metadata: DatabaseMetadata = {
    format: parsed.format,
    formatVersion: parsed.formatVersion,
    partitions: parsed.partitions,
    hash: parsed.hash,
    createdAt: parsed.createdAt,
    databaseId: parsed.formatVersion === 1 ? null : parsed.databaseId,
  };
  if (parsed.checksum !== (await checksumOf(metadata))) {
    throw new LightningError('ERR_CORRUPTION', `${file}: checksum mismatch`);
  }
  const { partitions, databaseId, hash } = metadata;
  if (!isPartitionHash(hash) || (parsed.formatVersion < 3 && hash !== legacyPartitionHash))
    throw new LightningError('ERR_CORRUPTION', `${file}: partition hash ${String(hash)}`);
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new LightningError('ERR_CORRUPTION', `${file}: partitions ${String(partitions)}`);
  if (parsed.formatVersion !== 1 && (typeof databaseId !== 'string' || !/^[0-9a-f]{32}$/.test(databaseId)))
    throw new LightningError('ERR_CORRUPTION', `${file}: database id ${String(databaseId)}`);
  return metadata;
}

/** Writes the metadata (always in the current version) durably: a temporary file, fsync, rename over, fsync of the directory. */
export async function writeMetadata(
  path: string,
  metadata: Omit<DatabaseMetadata, 'formatVersion' | 'databaseId'> & { databaseId: string },
): Promise<void> {
  await ensureDirectory(path);
  const current: DatabaseMetadata = { ...metadata, formatVersion: metadataFormatVersion };
  const content: MetadataFile = { ...current, checksum: await checksumOf(current) };
  await writeFileDurably(join(path, metadataFileName), `${JSON.stringify(content, null, 2)}\n`);
}
