import { LightningError } from '../shared-memory/errors.js';
import { leaseTtlMsMax, leaseTtlMsMin, replicasDefault } from './replication-limits.js';

/** `open(path, { replication })` and `openReplica(path, { replication })`. */
export interface ReplicationOptions {
  /** NATS servers with JetStream, e.g. ['nats://127.0.0.1:4222', ...]; one is enough to find the others. */
  servers: string | string[];
  /** The log stream's name (letters, digits, `-`, `_`): one per replicated database. */
  stream: string;
  /** This database's name in the lease and in logs (host, pid, ...). */
  name: string;
  /** The leader lease's TTL: a dead leader is replaced this long after its last renewal. Default 5,000 ms. */
  leaseTtlMs?: number;
  /** Servers holding a copy of the log and the lease: 3 unless told (1 for a single server). */
  replicas?: number;
  /** How long `waitForPosition()` waits by default. Default 5,000 ms. */
  sessionTimeoutMs?: number;
  /**
   * How long the log keeps messages that every partition of the leader has checkpointed past: a
   * follower stopped for longer than this cannot catch up from the log and must be restored from a
   * backup. 0 trims at every checkpoint. Default 86,400,000 ms (one day); at most 365 days.
   */
  retainMs?: number;
}

export interface ResolvedReplication {
  servers: string[];
  stream: string;
  name: string;
  leaseTtlMs: number;
  replicas: number;
  sessionTimeoutMs: number;
  retainMs: number;
}

const leaseTtlMsDefault = 5_000;
const sessionTimeoutMsDefault = 5_000;
const retainMsDefault = 24 * 3_600_000;
const retainMsMax = 365 * 24 * 3_600_000;
const names: readonly string[] = [
  'servers',
  'stream',
  'name',
  'leaseTtlMs',
  'replicas',
  'sessionTimeoutMs',
  'retainMs',
];

function bad(message: string): LightningError {
  return new LightningError('ERR_BAD_ARGUMENT', `replication: ${message}`);
}

/** Checks `replication`; ERR_BAD_ARGUMENT naming the first bad field. */
export function resolveReplication(options: unknown): ResolvedReplication {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw bad('must be an object with servers, stream and name');
  }
  const o = options as ReplicationOptions;
  for (const key of Object.keys(o)) {
    if (!names.includes(key))
      throw bad(`unknown field ${JSON.stringify(key)}; the fields are ${names.join(', ')}`);
  }
  const servers = typeof o.servers === 'string' ? [o.servers] : o.servers;
  if (
    !Array.isArray(servers) ||
    servers.length === 0 ||
    servers.some((s) => typeof s !== 'string' || s.length === 0)
  ) {
    throw bad('servers must be a non-empty string or array of strings');
  }
  for (const server of servers) {
    // The client takes "host:port" or a nats:// (or tls://, ws://) URL: refuse anything else now
    // rather than as a connection failure.
    if (!URL.canParse(server.includes('://') ? server : `nats://${server}`)) {
      throw bad(`servers: ${JSON.stringify(server)} is not a server address (host:port or nats://host:port)`);
    }
  }
  if (typeof o.stream !== 'string' || !/^[A-Za-z0-9_-]{1,48}$/.test(o.stream)) {
    throw bad(`stream must be 1 to 48 letters, digits, '-' or '_', got ${JSON.stringify(o.stream)}`);
  }
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 200) {
    throw bad('name must be a non-empty string of at most 200 characters');
  }
  const integer = (value: unknown, name: string, min: number, max: number, fallback: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw bad(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  return {
    servers: [...servers],
    stream: o.stream,
    name: o.name,
    leaseTtlMs: integer(o.leaseTtlMs, 'leaseTtlMs', leaseTtlMsMin, leaseTtlMsMax, leaseTtlMsDefault),
    replicas: integer(o.replicas, 'replicas', 1, 5, replicasDefault),
    sessionTimeoutMs: integer(o.sessionTimeoutMs, 'sessionTimeoutMs', 1, 600_000, sessionTimeoutMsDefault),
    retainMs: integer(o.retainMs, 'retainMs', 0, retainMsMax, retainMsDefault),
  };
}

/** The lease bucket of a log stream. */
export function leaseBucketName(stream: string): string {
  return `${stream}-lease`;
}
