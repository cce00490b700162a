import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../shared-memory/errors.js';
import { type Manifest, manifestFileName, readManifest, writeManifest } from './checkpoint/manifest.js';
import {
  type DatabaseMetadata,
  metadataFileName,
  newDatabaseId,
  readMetadata,
  writeMetadata,
} from './database-metadata.js';
import { ensureDirectory, readdirIfExists } from './durable-file.js';
import { partitionDirectory, walDirectory } from './layout.js';
import { lockFileName } from './lock-file.js';
import { legacyPartitionHash, newDatabasePartitionHash, type PartitionHash } from './partition-hash.js';
import { parseSegmentFileName, segmentHeaderBytes } from './wal/wal-format.js';

/**
 * Every file a database needs, accounted for. A database is its identity (LIGHTNING.json: the
 * partition count and a random database id), one manifest per partition (which repeats the id and
 * says what the partition's checkpoint and logs must hold), the checkpoints the manifests name, and
 * the logs. Anything missing is ERR_CORRUPTION naming it, never a smaller or a fresh database.
 */

/** What open() found in the directory. */
export type DatabaseFiles =
  | { kind: 'database'; metadata: DatabaseMetadata; manifests: Manifest[] }
  /** Nothing of a database, or only what an interrupted creation leaves (no data): create one. */
  | { kind: 'none' };

/**
 * Reads and checks the identity and every partition's manifest of the database in `directory`.
 * Without LIGHTNING.json, the directory must hold no data of a database (ERR_CORRUPTION naming what
 * it holds) and, unless `create` is true, nothing else either (ERR_BAD_ARGUMENT): a database is
 * created only where it cannot hide anything. `create: false` refuses to create (ERR_BAD_ARGUMENT).
 */
export async function accountForFiles(
  directory: string,
  create: boolean | undefined,
  readOnly = false,
): Promise<DatabaseFiles> {
  const metadata = await readMetadata(directory);
  if (metadata === null) {
    await refuseCreationOver(directory, create);
    return { kind: 'none' };
  }
  if (metadata.databaseId === null) {
    if (readOnly) {
      throw new LightningError(
        'ERR_READ_ONLY',
        `${join(directory, metadataFileName)} is of format version 1: open the database once without readOnly to upgrade it`,
      );
    }
    return { kind: 'database', metadata, manifests: await upgrade(directory, metadata) };
  }
  const manifests: Manifest[] = [];
  for (let partition = 0; partition < metadata.partitions; partition++) {
    manifests.push(await readPartitionManifest(directory, metadata, partition));
  }
  return { kind: 'database', metadata, manifests };
}

/**
 * The manifest of one partition, checked against the database's identity: a missing partition
 * directory or manifest, or one of another database, is ERR_CORRUPTION.
 */
export async function readPartitionManifest(
  directory: string,
  metadata: DatabaseMetadata,
  partition: number,
): Promise<Manifest> {
  const partitionPath = partitionDirectory(directory, partition);
  const file = join(partitionPath, manifestFileName);
  const manifest = await readManifest(partitionPath);
  if (manifest === null) {
    const directoryExists = await exists(partitionPath);
    throw new LightningError(
      'ERR_CORRUPTION',
      directoryExists
        ? `partition ${partition}: ${file} is missing`
        : `partition ${partition}: its directory ${partitionPath} is missing`,
    );
  }
  if (manifest.databaseId !== metadata.databaseId) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${partition}: ${file} belongs to database ${String(manifest.databaseId)}, but ${join(directory, metadataFileName)} names database ${String(metadata.databaseId)}: one of them was replaced`,
    );
  }
  if (manifest.partitions !== metadata.partitions) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${partition}: ${file} says ${manifest.partitions} partitions, ${metadataFileName} says ${metadata.partitions}`,
    );
  }
  if ((manifest.hash ?? legacyPartitionHash) !== metadata.hash) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `partition ${partition}: ${file} says partition hash ${String(manifest.hash)}, ${metadataFileName} says ${metadata.hash}`,
    );
  }
  return manifest;
}

/**
 * Creates the files of a new database's partitions: each partition's directory and manifest, with
 * the new database's id. LIGHTNING.json is written last, once the database started (createIdentity):
 * until then the directory holds no data, and an interrupted creation is simply done again.
 */
export async function createPartitionFiles(directory: string, partitions: number): Promise<string> {
  const databaseId = newDatabaseId();
  // Concurrently: each is a few fsyncs, which the thread pool overlaps.
  await ensureDirectory(join(directory, 'partitions'));
  await Promise.all(
    Array.from({ length: partitions }, (_, partition) =>
      writeManifest(partitionDirectory(directory, partition), {
        databaseId,
        partitions,
        hash: newDatabasePartitionHash,
        checkpoints: [],
        durable: { lsn: 0n, log: null },
      }),
    ),
  );
  return databaseId;
}

export async function createIdentity(
  directory: string,
  partitions: number,
  databaseId: string,
  hash: PartitionHash = newDatabasePartitionHash,
): Promise<void> {
  await writeMetadata(directory, {
    format: 'lightning-db',
    partitions,
    hash,
    createdAt: new Date().toISOString(),
    databaseId,
  });
}

/**
 * A version 1 database (no id; manifests only for partitions that checkpointed): gives every
 * partition a version 2 manifest with a new id, then LIGHTNING.json. A crash in between is finished
 * by the next open, with the id the manifests already carry.
 */
async function upgrade(directory: string, metadata: DatabaseMetadata): Promise<Manifest[]> {
  const existing: (Manifest | null)[] = [];
  for (let partition = 0; partition < metadata.partitions; partition++) {
    existing.push(await readManifest(partitionDirectory(directory, partition)));
  }
  const databaseId =
    existing.find((manifest) => typeof manifest?.databaseId === 'string')?.databaseId ?? newDatabaseId();
  const manifests = existing.map(
    (manifest): Manifest => ({
      databaseId,
      partitions: metadata.partitions,
      hash: legacyPartitionHash,
      checkpoints: manifest?.checkpoints ?? [],
      durable: manifest?.durable ?? { lsn: 0n, log: null },
    }),
  );
  for (let partition = 0; partition < metadata.partitions; partition++) {
    if (existing[partition]?.databaseId === databaseId) continue;
    await writeManifest(partitionDirectory(directory, partition), manifests[partition]!);
  }
  await writeMetadata(directory, { ...metadata, databaseId });
  return manifests;
}

/**
 * Without LIGHTNING.json: refuses a directory that holds a database's data (its identity is what
 * is missing), and one holding anything but a database's files unless `create` is true.
 */
async function refuseCreationOver(directory: string, create: boolean | undefined): Promise<void> {
  if (create === false) {
    throw new LightningError('ERR_BAD_ARGUMENT', `no database at ${directory} (create: false)`);
  }
  // The lock (and the temporary file it is linked from) is this open's own.
  const names = (await readdirIfExists(directory)).filter(
    (name) => name !== lockFileName && !name.startsWith(`${lockFileName}.`),
  );
  const data = await dataWithoutIdentity(directory);
  if (data.length > 0) {
    throw new LightningError(
      'ERR_CORRUPTION',
      `${join(directory, metadataFileName)} is missing, but the directory holds a database's data (${data.slice(0, 3).join(', ')}${data.length > 3 ? ', ...' : ''}): ` +
        `restore ${metadataFileName} from a backup, or run \`lightning-cli repair ${directory}\` to rebuild it from the partitions' manifests; a new database is never created over these files`,
    );
  }
  // What a creation that was interrupted leaves is the database's own, not another program's.
  const own = new Set(['partitions', 'wal', `${metadataFileName}.tmp`]);
  const foreign = names.filter((name) => !own.has(name));
  if (foreign.length > 0 && create !== true) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `${directory} is not empty and holds no database (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}): pass create: true to create one there`,
    );
  }
}

/**
 * The files of a database that hold data: a log segment with records, a manifest naming a
 * checkpoint or a durable record, a checkpoint file. Empty segments and fresh manifests are what an
 * interrupted creation leaves: no data.
 */
export async function dataWithoutIdentity(directory: string): Promise<string[]> {
  const names = await readdirIfExists(directory);
  const found: string[] = [];
  if (names.includes('wal')) {
    for (const name of await readdirIfExists(walDirectory(directory))) {
      const path = join(walDirectory(directory), name);
      if (parseSegmentFileName(name) === null) continue;
      if ((await stat(path)).size > segmentHeaderBytes) found.push(path);
    }
  }
  if (names.includes('partitions')) {
    const root = join(directory, 'partitions');
    for (const name of await readdirIfExists(root)) {
      const path = join(root, name);
      const files = await readdirIfExists(path);
      if (files.some((file) => file !== manifestFileName && !file.endsWith('.tmp'))) {
        found.push(path);
        continue;
      }
      // A damaged manifest is no proof of an empty partition: count it as data.
      const manifest = await readManifest(path).catch(() => 'damaged' as const);
      if (manifest === 'damaged') found.push(path);
      if (manifest === null || manifest === 'damaged') continue;
      if (manifest.checkpoints.length > 0 || (manifest.durable?.lsn ?? 0n) > 0n) found.push(path);
    }
  }
  return found;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * What LIGHTNING.json said, read back from the partitions' manifests (each repeats the database id
 * and the partition count): how a repair rebuilds a lost identity. ERR_CORRUPTION if the manifests
 * disagree or too few of them remain to be sure.
 */
export async function identityFromManifests(
  directory: string,
): Promise<{ partitions: number; databaseId: string; hash: PartitionHash }> {
  const root = join(directory, 'partitions');
  const seen = new Map<string, number>();
  for (const name of await readdirIfExists(root)) {
    const manifest = await readManifest(join(root, name)).catch(() => null);
    if (typeof manifest?.databaseId !== 'string') continue;
    const key = `${manifest.databaseId} ${manifest.partitions} ${manifest.hash ?? legacyPartitionHash}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  if (seen.size !== 1) {
    throw new LightningError(
      'ERR_CORRUPTION',
      seen.size === 0
        ? `${root}: no readable manifest names the database; its identity cannot be rebuilt`
        : `${root}: the manifests name ${seen.size} different databases; its identity cannot be rebuilt`,
    );
  }
  const [key] = [...seen.keys()];
  const [databaseId, partitions, hash] = key!.split(' ');
  return { databaseId: databaseId!, partitions: Number(partitions), hash: hash as PartitionHash };
}
