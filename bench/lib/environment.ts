/**
 * Facts about where a benchmark runs: the repository root, the filesystem under a directory, installed
 * package versions, and how much disk a directory takes. Used by bench:tree, bench:engine and
 * bench:durability.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A benchmark runs as bench/x.ts or as dist/bench/x.js, so find the root by its package.json: the one
 * with a bench/ beside it (bench/ has a package.json of its own, for the peers).
 */
export function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'bench'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

/** Filesystem names for the statfs magic numbers that matter for an fsyncing store. */
export function filesystemName(dir: string): string {
  // A Map keeps the magic numbers in hex, as the kernel headers (and `stat -f`) spell them.
  const names = new Map<number, string>([
    [0xef53, 'ext4'],
    [0x01021994, 'tmpfs'],
    [0x58465342, 'xfs'],
    [0x9123683e, 'btrfs'],
    [0x794c7630, 'overlayfs'],
  ]);
  try {
    const type = statfsSync(dir).type;
    return names.get(type) ?? `fs type 0x${type.toString(16)}`;
  } catch {
    return 'unknown fs';
  }
}

/** The installed version of a package: a benchmark peer in bench/node_modules, else the repository's. */
export function packageVersion(repoRoot: string, name: string): string {
  for (const modules of [path.join(repoRoot, 'bench', 'node_modules'), path.join(repoRoot, 'node_modules')]) {
    try {
      const text = readFileSync(path.join(modules, name, 'package.json'), 'utf8');
      return (JSON.parse(text) as { version: string }).version;
    } catch {
      // Not installed here; try the next place.
    }
  }
  return 'unknown';
}

/**
 * The commit the benchmarked code came from, with '+dirty' when tracked files differ from it (the
 * numbers then belong to uncommitted code); 'unknown' outside a git checkout.
 */
export function gitRevision(repoRoot: string): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, {
        cwd: repoRoot,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no').length > 0 ? `${commit}+dirty` : commit;
  } catch {
    return 'unknown';
  }
}

export interface DiskUsage {
  files: number;
  /** Sum of the file sizes (what `ls -l` shows). */
  bytes: number;
  /** Blocks the files really occupy (what `du` shows); below `bytes` for sparse files such as lmdb's map. */
  allocatedBytes: number;
}

/** Every regular file under `dir`, recursively; a missing directory counts as empty. */
export function diskUsage(dir: string): DiskUsage {
  const usage: DiskUsage = { files: 0, bytes: 0, allocatedBytes: 0 };
  if (!existsSync(dir)) return usage;
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const stats = lstatSync(full);
        usage.files++;
        usage.bytes += stats.size;
        usage.allocatedBytes += stats.blocks * 512;
      }
    }
  };
  walk(dir);
  return usage;
}

/**
 * Where the data directories of a benchmark that syncs go: os.tmpdir() when it is on a disk. On tmpfs an
 * fsync costs nothing and the durable stores would look free, so then .bench-tmp in the repository.
 */
export function benchDataRoot(repoRoot: string): string {
  if (filesystemName(os.tmpdir()) !== 'tmpfs') return os.tmpdir();
  const fallback = path.join(repoRoot, '.bench-tmp');
  mkdirSync(fallback, { recursive: true });
  return fallback;
}
