import { join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import { ensureDirectory, readTextIfExists, writeFileDurably } from './durable-file.js';
import { xxhashApi } from './xxhash.js';

/** The file naming a directory as a lightning-db database, with what is fixed at creation. */
export const metadataFileName = 'LIGHTNING.json';
export const metadataFormatVersion = 1;

export interface DatabaseMetadata {
  format: 'lightning-db';
  formatVersion: number;
  /** Fixed at creation: a key's partition is xxh64(key) mod partitions. */
  partitions: number;
  hash: 'xxh64';
  createdAt: string;
}

interface MetadataFile extends DatabaseMetadata {
  /** xxh64 (hex) of the JSON of the other fields, in this order. */
  checksum: string;
}

async function checksumOf(metadata: DatabaseMetadata): Promise<string> {
  const { h64ToString } = await xxhashApi();
  const { format, formatVersion, partitions, hash, createdAt } = metadata;
  return h64ToString(JSON.stringify({ format, formatVersion, partitions, hash, createdAt }));
}

/** Reads the metadata of the database at `path`, or null if the directory holds none yet. */
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
  if (parsed.format !== 'lightning-db')
    throw new LightningError('ERR_CORRUPTION', `${file}: not a lightning-db metadata file`);
  if (parsed.formatVersion !== metadataFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `${file}: format version ${String(parsed.formatVersion)}; this build reads version ${metadataFormatVersion}`,
    );
  }
  const metadata: DatabaseMetadata = {
    format: parsed.format,
    formatVersion: parsed.formatVersion,
    partitions: parsed.partitions,
    hash: parsed.hash,
    createdAt: parsed.createdAt,
  };
  if (parsed.checksum !== (await checksumOf(metadata))) {
    throw new LightningError('ERR_CORRUPTION', `${file}: checksum mismatch`);
  }
  return metadata;
}

/** Writes the metadata durably: a temporary file, fsync, rename over, fsync of the directory. */
export async function writeMetadata(path: string, metadata: DatabaseMetadata): Promise<void> {
  await ensureDirectory(path);
  const content: MetadataFile = { ...metadata, checksum: await checksumOf(metadata) };
  await writeFileDurably(join(path, metadataFileName), `${JSON.stringify(content, null, 2)}\n`);
}
