import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../../shared-memory/errors.js';
import { xxhashApi } from '../xxhash.js';
import {
  decodePageFileHeader,
  decodePageSpaceState,
  doubleWriteFileName,
  pageFileName,
} from './page-file-format.js';

/**
 * The error for `dir`'s missing double-write file, saying what to do. It stays an error at open,
 * whatever the page file holds: a set is written to the double-write file whole before any of its
 * pages is written in place, so after a crash during a set that file holds the only whole copy of
 * it, and pages of two sets in place can each pass their checksums (no page LSN tells them apart).
 *
 * Only a page file that is its header alone, with no page set recorded, shows that nothing was in
 * flight: a first set whose pages reached the file would have grown it, and one whose page 0 did
 * would have recorded its state there. Then an empty file is exactly what is missing, and the
 * message says so; otherwise it says when an empty file is right and what else to do.
 */
export async function missingDoubleWriteError(dir: string, pageSizeBytes: number): Promise<LightningError> {
  const path = join(dir, doubleWriteFileName);
  const pagePath = join(dir, pageFileName);
  const createEmpty = `create it empty (0 bytes: \`touch ${path}\`) and open again`;
  if (await holdsNoPageSet(pagePath, pageSizeBytes)) {
    return new LightningError(
      'ERR_CORRUPTION',
      `double-write file ${path} is missing. The page file ${pagePath} is its header alone, with no page ` +
        `set written, so no set was in flight and nothing needs repairing from it: ${createEmpty}.`,
    );
  }
  return new LightningError(
    'ERR_CORRUPTION',
    `double-write file ${path} is missing. Each page set is written to it whole before its pages are ` +
      `written in place, so after a crash during a set it holds the only whole copy of that set, and ` +
      `the page file ${pagePath} cannot show that no set was cut short. If the file was moved, put it ` +
      `back. If the database was last closed cleanly (close() returned, no page set failed as it closed, ` +
      `no crash since), it was empty: ${createEmpty}. Otherwise restore the database from a backup.`,
  );
}

/** True if the page file is exactly one sound header page with no page set recorded in it. */
async function holdsNoPageSet(pagePath: string, pageSizeBytes: number): Promise<boolean> {
  const api = await xxhashApi();
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(pagePath, 'r');
  } catch (error) {
    // A missing page file is an error of its own, reported where the page file is opened.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    // One page exactly: the whole file is read.
    if ((await handle.stat()).size !== pageSizeBytes) return false;
    const page = await handle.readFile();
    if (page.length !== pageSizeBytes) return false;
    try {
      if (decodePageFileHeader(api, page, pagePath).pageSizeBytes !== pageSizeBytes) return false;
      return decodePageSpaceState(api, page, pagePath) === null;
    } catch (error) {
      if (error instanceof LightningError) return false;
      throw error;
    }
  } finally {
    await handle.close();
  }
}
