import { readdirSync, readlinkSync, realpathSync } from 'node:fs';

/**
 * The processes that have any of `paths` open, as Linux shows them: each `/proc/<pid>/fd/<n>` is a
 * link to the file that descriptor holds. Used where a file's readers take no lock a writer could
 * see, so that the writer can still find them (a read-only open of a paged database holds its page
 * files open, and a writer's page sets would rewrite them under it).
 *
 * What it cannot see: processes of another user (their `fd` directories are not readable without
 * privilege), and any process where there is no `/proc` (not Linux): then it finds none. Paths that
 * do not exist are skipped. A process that exits while it is read is skipped too.
 *
 * Synchronous on purpose: a machine has a few hundred to a few thousand descriptors, each a
 * `readlink` of a few microseconds in this thread; the same through the thread pool took about ten
 * times as long, one round trip each.
 */
export function processesHolding(paths: readonly string[]): number[] {
  const wanted = new Set<string>();
  for (const path of paths) {
    try {
      wanted.add(realpathSync(path));
    } catch {
      // Not there: nobody holds it.
    }
  }
  if (wanted.size === 0) return [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const holders: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    if (holdsAny(`/proc/${entry}/fd`, wanted)) holders.push(Number(entry));
  }
  return holders;
}

function holdsAny(fdDirectory: string, wanted: ReadonlySet<string>): boolean {
  let descriptors: string[];
  try {
    descriptors = readdirSync(fdDirectory);
  } catch {
    return false;
  }
  for (const descriptor of descriptors) {
    try {
      if (wanted.has(readlinkSync(`${fdDirectory}/${descriptor}`))) return true;
    } catch {
      // Closed meanwhile.
    }
  }
  return false;
}
