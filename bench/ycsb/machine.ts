/** What a YCSB run records about where it ran: the numbers mean little without it. */
import os from 'node:os';
import { filesystemName, gitRevision, packageVersion } from '../lib/environment.js';

export interface MachineFacts {
  cpu: string;
  cpus: number;
  memoryGiB: number;
  platform: string;
  node: string;
  /** `git rev-parse --short HEAD`, with '+dirty' when tracked files differ from it. */
  commit: string;
  lmdb: string;
  classicLevel: string;
  betterSqlite3: string;
  sortedBtree: string;
  tmpdir: string;
  tmpdirFilesystem: string;
  /** Other work on the machine is the main source of noise between runs. */
  loadAverage1m: number;
  startedAt: string;
}

export function machineFacts(repoRoot: string): MachineFacts {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cpus: os.availableParallelism(),
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    commit: gitRevision(repoRoot),
    lmdb: packageVersion(repoRoot, 'lmdb'),
    classicLevel: packageVersion(repoRoot, 'classic-level'),
    betterSqlite3: packageVersion(repoRoot, 'better-sqlite3'),
    sortedBtree: packageVersion(repoRoot, 'sorted-btree'),
    tmpdir: os.tmpdir(),
    tmpdirFilesystem: filesystemName(os.tmpdir()),
    loadAverage1m: Number(os.loadavg()[0]!.toFixed(2)),
    startedAt: new Date().toISOString(),
  };
}

export function printMachine(machine: MachineFacts): void {
  console.log(
    `machine: ${machine.cpu}, ${machine.cpus} CPUs, ${machine.memoryGiB} GiB, ${machine.platform}, ` +
      `node ${machine.node}, commit ${machine.commit}`,
  );
  console.log(
    `peers: lmdb-js ${machine.lmdb}, classic-level ${machine.classicLevel}, better-sqlite3 ${machine.betterSqlite3}, ` +
      `sorted-btree ${machine.sortedBtree}; data in ${machine.tmpdir} (${machine.tmpdirFilesystem}); ` +
      `load average ${machine.loadAverage1m} at start`,
  );
}
