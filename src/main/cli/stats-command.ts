import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { partitionDirectory, walDirectory } from '../../storage/layout.js';
import { verifyWal } from '../../storage/wal/index.js';
import type { DatabaseStats } from '../database.js';
import { openExitCodesHelp } from './cli-database.js';
import { formatTable, jsonText } from './cli-format.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitOk, partitionName } from './database-inspection.js';
import { addLiveOptions, liveHelp, type ReadFlags, withReadSource } from './read-source.js';
import { count, humanBytes } from './transfer-progress.js';

/**
 * `lightning-cli stats <directory>`: what a database holds, per partition: entries, tree shape and
 * memory as `db.stats()` reports them after opening (recovery included), and the bytes its files
 * take on disk.
 */

interface StatsFlags extends ReadFlags {
  json?: boolean;
}

export interface DiskUsage {
  /** The partition's records in the write-ahead logs (which all partitions of an owner share). */
  walBytes: number;
  /** Checkpoints, manifest and anything else in the partition's directory. */
  checkpointBytes: number;
}

/**
 * Bytes each partition takes on disk: its records in the logs (read and verified once for all
 * partitions; segment headers belong to no partition) and its own directory. O(log bytes + files).
 */
export async function diskUsageOf(databasePath: string, partitions: number): Promise<DiskUsage[]> {
  const wal = await verifyWal(walDirectory(databasePath));
  const walBytes = new Map(wal.partitions.map((report) => [report.partition, report.bytes]));
  const usage: DiskUsage[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const checkpointBytes = await bytesUnder(partitionDirectory(databasePath, partition));
    usage.push({ walBytes: walBytes.get(partition) ?? 0, checkpointBytes });
  }
  return usage;
}

async function bytesUnder(directory: string): Promise<number> {
  const entries = await readdir(directory, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  let total = 0;
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) total += await bytesUnder(path);
    else if (entry.isFile()) total += (await stat(path)).size;
  }
  return total;
}

export function renderStatsText(stats: DatabaseStats, disk: readonly DiskUsage[]): string {
  const rows: (string | number)[][] = [
    [
      'partition',
      'entries',
      'height',
      'pages used',
      'pages free',
      'overflow',
      'memory',
      'memory max',
      'log',
      'checkpoint',
    ],
  ];
  stats.partitionStats.forEach((partition, index) => {
    rows.push([
      partitionName(index),
      partition.entries,
      partition.height,
      partition.pagesInUse,
      partition.pagesFree,
      partition.overflowPages,
      humanBytes(partition.bytesReserved),
      humanBytes(partition.bytesMax),
      humanBytes(disk[index]!.walBytes),
      humanBytes(disk[index]!.checkpointBytes),
    ]);
  });
  const sum = (of: (index: number) => number) =>
    stats.partitionStats.reduce((total, _, index) => total + of(index), 0);
  rows.push([
    'total',
    stats.entries,
    '',
    sum((i) => stats.partitionStats[i]!.pagesInUse),
    sum((i) => stats.partitionStats[i]!.pagesFree),
    sum((i) => stats.partitionStats[i]!.overflowPages),
    humanBytes(sum((i) => stats.partitionStats[i]!.bytesReserved)),
    '',
    humanBytes(sum((i) => disk[i]!.walBytes)),
    humanBytes(sum((i) => disk[i]!.checkpointBytes)),
  ]);
  const lines = [
    `database ${stats.path}: ${stats.partitions} partitions, ${count(stats.entries)} entries`,
    `opened with ${stats.workers} worker(s), page size ${stats.partitionStats[0]?.pageSizeBytes ?? '-'} bytes`,
  ];
  const recovery = stats.recovery;
  if (recovery !== null) {
    lines.push(
      `recovered at open: ${count(recovery.checkpointEntries)} entries from checkpoints, ` +
        `${count(recovery.replayedRecords)} log records replayed, ${recovery.tornTailsCut} torn tail(s) cut`,
    );
  }
  lines.push('', ...formatTable(rows));
  return `${lines.join('\n')}\n`;
}

export async function runStats(directory: string, flags: StatsFlags): Promise<number> {
  const { stats, disk } = await withReadSource(directory, flags, async (source) => {
    const stats = await source.stats();
    return { stats, disk: await diskUsageOf(stats.path, stats.partitions) };
  });
  if (flags.json === true) {
    const partitions = stats.partitionStats.map((tree, partition) => ({
      partition,
      ...tree,
      ...disk[partition],
    }));
    const { partitionStats: _, ...database } = stats;
    process.stdout.write(jsonText({ command: 'stats', ...database, partitionStats: partitions }));
  } else {
    process.stdout.write(renderStatsText(stats, disk));
  }
  return exitOk;
}

const statsHelp = `
Opens the database (recovering it as open() does) and prints, per partition: entries, tree height,
pages in use and free, overflow pages, the shared memory reserved and its limit (partitionBytesMax),
and the bytes of its write-ahead log and checkpoint files on disk. "memory" near "memory max" means
writes to that partition will soon fail with ERR_PARTITION_FULL.

--json prints db.stats() with each partition's disk usage added (walBytes, checkpointBytes).

Examples:
  $ lightning-cli stats ./data
  $ lightning-cli stats ./data --json | jq .entries
  $ lightning-cli stats ./data --url http://127.0.0.1:9464
${liveHelp}
${openExitCodesHelp()}`;

export function registerStatsCommand(program: Command): void {
  const command = program
    .command('stats')
    .description('entries, tree shape, memory and disk usage per partition')
    .argument('<directory>', 'the database directory')
    .option('--json', 'print the statistics as JSON');
  addLiveOptions(command);
  finishDatabaseCommand(command, { create: false, help: statsHelp }, runStats);
}
