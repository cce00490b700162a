import { type Command, InvalidArgumentError } from 'commander';
import { startAdminServer } from '../admin/admin-server.js';
import { open } from '../open.js';
import { locateDatabase } from './database-inspection.js';
import { adminTokenVariable } from './live-client.js';

/**
 * `lightning-cli serve <directory> --port <n>`: opens the database and serves its admin endpoints
 * (Prometheus /metrics, /health, /ready) until SIGINT or SIGTERM, then closes it cleanly. The server
 * listens before the database opens, so a probe sees /ready answer 503 while recovery runs.
 */

export interface ServeFlags {
  port: number;
  host: string;
  allowRemote?: boolean;
  token?: string;
}

const stopSignals = ['SIGINT', 'SIGTERM'] as const;

/** Resolves with the first stop signal; from then on a second one ends the process at once. */
function stopRequested(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      for (const name of stopSignals) process.off(name, onSignal);
      for (const name of stopSignals) process.once(name, () => process.exit(1));
      resolve(signal);
    };
    for (const name of stopSignals) process.on(name, onSignal);
  });
}

export async function runServe(directory: string, flags: ServeFlags): Promise<number> {
  const stop = stopRequested();
  const target = await locateDatabase(directory);
  const server = await startAdminServer({
    port: flags.port,
    host: flags.host,
    allowRemote: flags.allowRemote === true,
    ...tokenOption(flags.token ?? process.env[adminTokenVariable]),
  });
  try {
    process.stdout.write(
      `admin server listening on ${server.url} (/metrics, /health, /ready; /v1/get, /v1/scan, /v1/dump, /v1/stats)\n`,
    );
    process.stdout.write(`opening ${target.path}\n`);
    const db = await open(target.path);
    try {
      server.setDatabase(db);
      const { partitions, workers, entries } = db.stats();
      process.stdout.write(
        `ready: ${partitions} partitions, ${workers} workers, ${entries} entries; serving ${server.url}/metrics\n`,
      );
      const signal = await stop;
      process.stdout.write(`${signal}: closing the database\n`);
    } finally {
      await db.close();
    }
  } finally {
    await server.close();
  }
  process.stdout.write('closed\n');
  return 0;
}

function tokenOption(token: string | undefined): { token?: string } {
  return token === undefined || token === '' ? {} : { token };
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535) throw new InvalidArgumentError('expected a port from 0 to 65535');
  return port;
}

const serveHelp = `
Endpoints (GET):
  /metrics  Prometheus text format: operations and latency, owner batch sizes, log bytes and fsync
            latency, checkpoints, entries and arena pages per partition, worker state, transactions
  /health   200 while every owner worker runs; 503 with a JSON body naming the workers that do not
  /ready    503 while the database opens and recovers, 200 once it serves
  /v1/get, /v1/scan, /v1/dump, /v1/stats
            the database's data, for "lightning-cli get|scan|dump|stats --url" (see docs/cli-live.md)

The server binds 127.0.0.1 unless --host says otherwise; a host that is not a loopback address is
refused unless --allow-remote is given. With --token (or ${adminTokenVariable} in the environment)
the /v1 endpoints answer only requests that carry "Authorization: Bearer <token>" (else 401); beyond
loopback they need one. /metrics, /health and /ready have no authentication.

Exit codes:
  0  stopped by SIGINT or SIGTERM and closed cleanly
  1  another failure (the port is taken, an I/O error)
  2  bad arguments
  3  no database at <directory>
  4  corruption found while opening
  5  the database is open in another live process
`;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('open a database and serve Prometheus metrics, /health and /ready until stopped')
    .argument('<directory>', 'the database directory')
    .requiredOption('-p, --port <port>', 'TCP port to listen on (0 picks a free one)', parsePort)
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--allow-remote', 'allow binding an address that is not loopback')
    .option(
      '--token <token>',
      `bearer token the /v1 data endpoints require (default: $${adminTokenVariable})`,
    )
    .addHelpText('after', serveHelp)
    .action(async (directory: string, flags: ServeFlags) => {
      process.exitCode = await runServe(directory, flags);
    });
}
