/**
 * Small real file systems for the disk-full and read-only tests: tmpfs mounts of a given size, which
 * fill up (ENOSPC) and remount read-only (EROFS) exactly as a disk does. Mounting needs root (or
 * CAP_SYS_ADMIN); where the machine refuses, `tmpfsRefusal` says why and the tests skip, saying so.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(command: string, args: string[]): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error !== undefined) return String(result.error);
  if (result.status !== 0)
    return `${command} ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.status}`}`;
  return null;
}

/** Null if this machine lets the tests mount a tmpfs, else the reason it does not. */
export const tmpfsRefusal: string | null = (() => {
  if (process.platform !== 'linux') return `tmpfs mounts are Linux-only (platform ${process.platform})`;
  const probe = mkdtempSync(join(tmpdir(), 'ldb-tmpfs-probe-'));
  try {
    const refused = run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    if (refused !== null) return `mounting a tmpfs was refused (${refused})`;
    run('umount', [probe]);
    return null;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

export interface Tmpfs {
  directory: string;
  /** Remounts it read-only (EROFS for every write), or writable again. */
  remount(mode: 'ro' | 'rw'): void;
  unmount(): void;
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const directory = mkdtempSync(join(tmpdir(), 'ldb-tmpfs-'));
  const refused = run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', directory]);
  if (refused !== null) throw new Error(refused);
  return {
    directory,
    remount(mode) {
      const failed = run('mount', ['-o', `remount,${mode}`, directory]);
      if (failed !== null) throw new Error(failed);
    },
    unmount() {
      run('umount', ['-l', directory]);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Fills the file system holding `file` until a write fails with ENOSPC (in 64 KiB, then 512-byte
 * steps, so not even a partly used page is left); returns the bytes the filler took. Deleting the
 * file gives them back.
 */
export function fillDisk(file: string): number {
  const descriptor = openSync(file, 'a');
  let filled = 0;
  try {
    for (const chunkBytes of [64 * 1024, 512]) {
      const chunk = Buffer.alloc(chunkBytes, 0x5a);
      for (;;) {
        try {
          const written = writeSync(descriptor, chunk);
          filled += written;
          if (written < chunkBytes) break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(descriptor);
  }
  return filled;
}

/** Every file under `directory`: relative path → size and mtime, for "nothing was written" checks. */
export function listTree(directory: string): Map<string, string> {
  const listing = new Map<string, string>();
  const walk = (relative: string): void => {
    const result = spawnSync('find', [join(directory, relative), '-printf', '%P\t%s\t%T@\t%y\n'], {
      encoding: 'utf8',
    });
    for (const line of result.stdout.split('\n')) {
      if (line === '') continue;
      const [path, size, mtime, type] = line.split('\t');
      listing.set(path!, `${type} ${type === 'd' ? '' : size} ${mtime}`);
    }
  };
  walk('');
  return listing;
}
