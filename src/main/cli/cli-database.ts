import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { isLightningError, LightningError } from '../../shared-memory/index.js';
import { metadataFileName, readMetadata } from '../../storage/database-metadata.js';
import type { Database } from '../database.js';
import { open } from '../open.js';
import type { Durability } from '../open-options.js';
import { DatabaseMissingError, locateDatabase } from './database-inspection.js';

/**
 * How the data commands (get, put, scan, load, ...) open a database: the CLI process becomes the
 * database's single writer for the length of the command (another live process holding it is
 * ERR_LOCKED, exit 5), and closes it cleanly, so everything written is synced before it exits.
 */

export interface OpenHow {
  /**
   * Create the database if the directory does not hold one; otherwise a missing one is exit 3.
   * False (not absent) for a command that has --create, so the error can mention it.
   */
  create?: boolean;
  /** Partitions of a database created here (ignored for an existing one of the same count). */
  partitions?: number;
  durability?: Durability;
  partitionBytesMax?: number;
}

/**
 * Opens the database at `directory`, runs `work` on it and closes it however `work` ends. Without
 * `create`, a directory that holds no database is DatabaseMissingError (open() alone would create
 * one). With it, only a missing or empty directory is made a database, so a typo cannot scatter
 * database files into a directory full of something else.
 */
export async function withDatabase<T>(
  directory: string,
  how: OpenHow,
  work: (db: Database) => Promise<T>,
): Promise<T> {
  const path = how.create === true ? await creatablePath(directory) : await existingPath(directory, how);
  const db = await open(path, {
    workers: 'auto',
    durability: how.durability ?? 'sync',
    ...(how.partitions === undefined ? {} : { partitions: how.partitions }),
    ...(how.partitionBytesMax === undefined ? {} : { partitionBytesMax: how.partitionBytesMax }),
  }).catch((error: unknown) => {
    // open() names the first damage it met; the operator's next step is to see all of it.
    if (!isLightningError(error, 'ERR_CORRUPTION')) throw error;
    const next = `"lightning-cli verify ${path}" checks every file and lists all damage`;
    throw new LightningError('ERR_CORRUPTION', `${withoutCodePrefix(error.message)}\n${next}`, {
      cause: error,
    });
  });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

async function existingPath(directory: string, how: OpenHow): Promise<string> {
  try {
    return (await locateDatabase(directory)).path;
  } catch (error) {
    // A command that could have created it says how, since that is the likely intent.
    if (how.create === false && error instanceof DatabaseMissingError) {
      throw new DatabaseMissingError(`${withoutCodePrefix(error.message)} (add --create to make one)`);
    }
    throw error;
  }
}

function withoutCodePrefix(message: string): string {
  return message.replace(/^ERR_[A-Z_]+: /, '');
}

async function creatablePath(directory: string): Promise<string> {
  if (directory.trim() === '')
    throw new LightningError('ERR_BAD_ARGUMENT', 'the directory must not be empty');
  const path = resolve(directory);
  let names: string[];
  try {
    names = await readdir(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return path;
    if (code === 'ENOTDIR') throw new DatabaseMissingError(`no database at ${path}: it is not a directory`);
    throw error;
  }
  if (names.length === 0 || (await readMetadata(path)) !== null) return path;
  throw new DatabaseMissingError(
    `no database at ${path}: it has no ${metadataFileName} and is not empty; --create makes a database only in a new or empty directory`,
  );
}

/** Commander's parser for a count such as --limit: a non-negative integer, else a usage error. */
export function parseCount(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError('expected a non-negative integer');
  }
  return Number(text);
}

/** Commander's parser for --partitions: 1 to 4,096, as open() accepts. */
export function parsePartitions(text: string): number {
  const count = parseCount(text);
  if (count < 1 || count > 4096) throw new InvalidArgumentError('expected an integer from 1 to 4096');
  return count;
}

const sizeUnits: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Commander's parser for a size in bytes: an integer, optionally with K, M or G (binary: KiB...). */
export function parseSize(text: string): number {
  const match = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  const bytes = match === null ? Number.NaN : Number(match[1]) * sizeUnits[match[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes))
    throw new InvalidArgumentError('expected a size such as 2147450880, 1536M or 2G');
  return bytes;
}

export interface OpenFlags {
  create?: boolean;
  partitions?: number;
  partitionBytesMax?: number;
}

/**
 * The options of every command that opens a database: --partition-bytes-max (a database that an
 * application opens with a larger limit needs it here too, or recovery runs out of room), and for
 * the commands that may make a new database, --create and --partitions.
 */
export function addOpenOptions(command: Command, options: { create: boolean }): Command {
  if (options.create) {
    command
      .option('--create', 'create the database if the directory holds none (it must be new or empty)')
      .addOption(
        new Option(
          '--partitions <count>',
          'partitions of a database made by --create (default 16)',
        ).argParser(parsePartitions),
      );
  }
  return command.addOption(
    new Option(
      '--partition-bytes-max <size>',
      'most shared memory one partition may use, as the open option partitionBytesMax (default 1G)',
    ).argParser(parseSize),
  );
}

/** How to open for `flags`; `create` false (not absent) for a command that offers --create. */
export function openHowOf(
  flags: OpenFlags,
  how: { canCreate?: boolean; durability?: Durability } = {},
): OpenHow {
  return {
    ...(how.canCreate === true ? { create: flags.create === true } : {}),
    ...(flags.partitions === undefined ? {} : { partitions: flags.partitions }),
    ...(flags.partitionBytesMax === undefined ? {} : { partitionBytesMax: flags.partitionBytesMax }),
    ...(how.durability === undefined ? {} : { durability: how.durability }),
  };
}

/**
 * The `Exit codes:` help section of a command that opens a database; `extra` lines (already
 * formatted as `  N  meaning`) are added in order of their codes.
 */
export function openExitCodesHelp(options: { create?: boolean; extra?: readonly string[] } = {}): string {
  const missing =
    options.create === true ? 'no database at <directory> (and no --create)' : 'no database at <directory>';
  return [
    'Exit codes:',
    '  0  success',
    '  1  another failure (I/O error, a full partition, files of a newer format)',
    '  2  bad arguments',
    `  3  ${missing}`,
    '  4  the database is corrupt (see: lightning-cli verify)',
    '  5  the database is open in another live process',
    ...(options.extra ?? []),
    '',
  ].join('\n');
}
