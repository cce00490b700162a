import type { Command } from 'commander';
import type { CheckpointResult } from '../../workers/partition-checkpoint.js';
import { type OpenFlags, openExitCodesHelp, openHowOf, withDatabase } from './cli-database.js';
import { formatTable, jsonText } from './cli-format.js';
import { finishDatabaseCommand } from './database-command.js';
import { exitOk, partitionName } from './database-inspection.js';
import { count, humanBytes } from './transfer-progress.js';

/**
 * `lightning-cli checkpoint <directory>`: writes a checkpoint of every partition and drops the log
 * segments it covers, so the next open replays little and the log's disk space is returned.
 */

interface CheckpointFlags extends OpenFlags {
  json?: boolean;
}

export function renderCheckpointText(
  path: string,
  results: readonly CheckpointResult[],
  seconds: number,
): string {
  const rows: (string | number)[][] = [
    ['partition', 'start LSN', 'entries', 'bytes', 'ms', 'log segments removed'],
    ...results.map((result) => [
      partitionName(result.partition),
      result.startLsn,
      result.entries,
      result.bytes,
      Math.round(result.durationMs),
      result.walSegmentsRemoved,
    ]),
  ];
  const entries = results.reduce((sum, result) => sum + result.entries, 0);
  const bytes = results.reduce((sum, result) => sum + result.bytes, 0);
  const removed = results.reduce((sum, result) => sum + result.walSegmentsRemoved, 0);
  return `${[
    ...formatTable(rows),
    '',
    `checkpointed ${path}: ${results.length} partition(s), ${count(entries)} entries, ${humanBytes(bytes)}, ` +
      `${removed} log segment(s) removed, in ${seconds.toFixed(1)} s`,
  ].join('\n')}\n`;
}

export async function runCheckpoint(directory: string, flags: CheckpointFlags): Promise<number> {
  const startedMs = Date.now();
  const { path, results } = await withDatabase(directory, openHowOf(flags), async (db) => ({
    path: db.stats().path,
    results: [...(await db.checkpoint())].sort((a, b) => a.partition - b.partition),
  }));
  const seconds = (Date.now() - startedMs) / 1000;
  process.stdout.write(
    flags.json === true
      ? jsonText({ command: 'checkpoint', database: path, seconds, partitions: results })
      : renderCheckpointText(path, results, seconds),
  );
  return exitOk;
}

const checkpointHelp = `
Opens the database (replaying its logs), writes a checkpoint of every partition (its sorted contents,
lz4-compressed and checksummed), and deletes the log segments the checkpoint covers. Afterwards an
open loads the checkpoints and replays almost nothing. Partitions also checkpoint on their own once
their log grows by checkpointWalBytes (64 MiB); this command is for doing it now, e.g. before a copy.

Examples:
  $ lightning-cli checkpoint ./data
  $ lightning-cli checkpoint ./data --json

${openExitCodesHelp()}`;

export function registerCheckpointCommand(program: Command): void {
  const command = program
    .command('checkpoint')
    .description('checkpoint every partition and drop the log segments it covers')
    .argument('<directory>', 'the database directory')
    .option('--json', "print each partition's checkpoint as JSON");
  finishDatabaseCommand(command, { create: false, help: checkpointHelp }, runCheckpoint);
}
