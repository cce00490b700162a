import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { lockFileName } from './lock-file.js';

/**
 * Every file under a database directory (but its LOCK) with its size and modification time, as one
 * comparable string. A database opened without its lock (on a full disk) takes it later only if this
 * is unchanged: another process that wrote the database meanwhile changed at least one log or
 * manifest, and what this process recovered into memory would then be stale.
 */
export async function directoryFingerprint(directory: string): Promise<string> {
  const lines: string[] = [];
  await collect(directory, '', lines);
  return lines.sort().join('\n');
}

async function collect(directory: string, relative: string, lines: string[]): Promise<void> {
  const entries = await readdir(join(directory, relative), { withFileTypes: true });
  for (const entry of entries) {
    const path = relative === '' ? entry.name : join(relative, entry.name);
    // The lock (and a lock file being linked into place) is not the database's data.
    if (relative === '' && (entry.name === lockFileName || entry.name.startsWith(`${lockFileName}.`)))
      continue;
    if (entry.isDirectory()) {
      lines.push(`${path}/`);
      await collect(directory, path, lines);
    } else {
      const info = await stat(join(directory, path), { bigint: true });
      lines.push(`${path} ${info.size} ${info.mtimeNs} ${info.ino}`);
    }
  }
}
