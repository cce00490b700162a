/**
 * The databases the CLI end-to-end tests run against, made and read with open() in the test process
 * rather than through the CLI under test, and closed again before a CLI child process opens them
 * (it takes the database's lock).
 */
import { join } from 'node:path';
import { open } from '../../src/index.js';

export type EntryInput = readonly [string | Uint8Array, string | Uint8Array];

/**
 * A function that makes a four-partition database named `name` in a new temporary directory (from
 * `temporaryDirectory`), puts `entries` into it one at a time, in order, closes it and returns its path.
 */
export function databaseFactory(
  temporaryDirectory: () => Promise<string>,
  name: string,
): (entries: Iterable<EntryInput>) => Promise<string> {
  return async (entries) => {
    const dir = join(await temporaryDirectory(), name);
    const db = await open(dir, { partitions: 4, workers: 1 });
    try {
      for (const [key, value] of entries) await db.put(key, value);
    } finally {
      await db.close();
    }
    return dir;
  };
}

/** Every entry of the database at `dir`, in key order. */
export async function contentsOf(dir: string): Promise<[Buffer, Buffer][]> {
  const db = await open(dir, { workers: 1 });
  try {
    return [...db.range()];
  } finally {
    await db.close();
  }
}
