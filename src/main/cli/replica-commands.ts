import type { Command } from 'commander';
import type { ReplicationStats } from '../../replication/replication-types.js';
import { LightningError } from '../../shared-memory/index.js';
import { formatTable, jsonText } from './cli-format.js';
import { exitOk } from './database-inspection.js';
import { adminTokenVariable, LiveClient, type LiveFlags } from './live-client.js';
import { addLiveOptions } from './read-source.js';

/**
 * `lightning-cli replica status <directory> --url <admin>` and `lightning-cli promote <directory>
 * --url <admin>`: a replicated database's role, position and lag, and the promotion of a follower.
 * Replication is a property of a running database (its connection to the NATS servers, its lease),
 * so both talk to the admin server of the process that holds it open (admin/replication-endpoints.ts).
 */

interface StatusFlags extends LiveFlags {
  json?: boolean;
}

interface PromoteFlags extends LiveFlags {
  json?: boolean;
  wait: boolean;
  timeout: string;
}

/** The admin server's limit (replication-endpoints.ts): below fetch()'s 300 s wait for an answer. */
const promoteTimeoutMsMax = 290_000;

const liveOnly =
  'replication lives in the process that holds the database open: pass --url http://127.0.0.1:<port> ' +
  '(the port of db.serveAdmin() in that process)';

function clientOf(directory: string, flags: LiveFlags): LiveClient {
  if (flags.url === undefined) throw new LightningError('ERR_BAD_ARGUMENT', liveOnly);
  return new LiveClient(flags.url, flags.token ?? process.env[adminTokenVariable], directory);
}

export function renderReplicationText(stats: ReplicationStats): string {
  const rows: [string, string][] = [
    ['role', stats.role],
    ['stream', stats.stream],
    ['name', stats.name],
    ['term', String(stats.term)],
    ['position', String(stats.position)],
  ];
  if (stats.role === 'follower') {
    rows.push(
      ['lag (messages)', String(stats.lagMessages)],
      ['lag p50 / p99 (ms)', `${stats.lagMsP50.toFixed(1)} / ${stats.lagMsP99.toFixed(1)}`],
      ['envelopes applied', String(stats.envelopesApplied)],
    );
  } else {
    rows.push(
      ['messages published', String(stats.messagesPublished)],
      ['batches published', String(stats.batchesPublished)],
      ['publish retries', String(stats.publishRetries)],
      ['checkpointed position', String(stats.checkpointedPosition)],
      ['log trimmed below', String(stats.trimmedBelow)],
    );
  }
  rows.push(['failure', stats.failure ?? '-']);
  return `${formatTable(rows).join('\n')}\n`;
}

function print(stats: ReplicationStats, json: boolean | undefined): void {
  process.stdout.write(json === true ? jsonText(stats) : renderReplicationText(stats));
  process.exitCode = exitOk;
}

export function registerReplicaCommands(program: Command): void {
  const replica = program.command('replica').description("a replicated database's replication");
  const status = replica
    .command('status')
    .description('role, term, stream position and lag of a running replicated database')
    .argument('<directory>', 'the database directory (the admin server must serve this one)')
    .option('--json', 'print stats().replication as JSON')
    .addHelpText(
      'after',
      `
The database must be open in a process that serves its admin server (db.serveAdmin()).

Examples:
  $ lightning-cli replica status ./data --url http://127.0.0.1:9464
  $ lightning-cli replica status ./data --url http://127.0.0.1:9464 --json`,
    )
    .action(async (directory: string, flags: StatusFlags) => {
      print(await clientOf(directory, flags).replication(), flags.json);
    });
  addLiveOptions(status);

  const promote = program
    .command('promote')
    .description(
      'make a running follower the leader (it waits for the lease, then applies the log to its end)',
    )
    .argument('<directory>', 'the database directory (the admin server must serve this one)')
    .option('--no-wait', 'fail at once (exit 5, ERR_LOCKED) while another database holds the lease')
    .option('--timeout <ms>', 'how long to wait for the lease', '60000')
    .option('--json', 'print the new stats().replication as JSON')
    .addHelpText(
      'after',
      `
Exit codes: 0 promoted (or already the leader), 5 the lease is held (--no-wait) or still held
after --timeout, 1 the servers did not answer or this database was deposed (reopen it with
openReplica() first).

Examples:
  $ lightning-cli promote ./data --url http://127.0.0.1:9464
  $ lightning-cli promote ./data --url http://127.0.0.1:9464 --no-wait`,
    )
    .action(async (directory: string, flags: PromoteFlags) => {
      const timeoutMs = Number(flags.timeout);
      if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > promoteTimeoutMsMax) {
        throw new LightningError(
          'ERR_BAD_ARGUMENT',
          `--timeout must be an integer from 1 to ${promoteTimeoutMsMax} (ms), got ${flags.timeout}`,
        );
      }
      print(await clientOf(directory, flags).promote(flags.wait, timeoutMs), flags.json);
    });
  addLiveOptions(promote);
}
