import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { ClosedConnectionError, InvalidArgumentError } from '@nats-io/transport-node';
import { LightningError } from '../shared-memory/errors.js';

/**
 * How the replication layer reads the NATS client's errors: the few it acts on are told apart here,
 * and everything else becomes ERR_REPLICATION with the client's error as its cause.
 */

/**
 * The server rejected a write whose expected last sequence (or KV revision) was not the current one:
 * someone else wrote since. For a lease that means another holder took it; for the log, that this
 * publisher is no longer the leader.
 */
export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** The stream (or the KV bucket's stream) does not exist. */
export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/** The client refused the request before sending it (e.g. larger than the server's max_payload). */
export function isRefusedByClient(error: unknown): boolean {
  return error instanceof InvalidArgumentError;
}

/** The connection was closed by its owner: retrying cannot help. */
export function isClosedConnection(error: unknown): boolean {
  return error instanceof ClosedConnectionError;
}

/** An environment failure of the replication servers, as ERR_REPLICATION naming what was being done. */
export function replicationError(doing: string, cause: unknown): LightningError {
  if (cause instanceof LightningError) return cause;
  const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new LightningError('ERR_REPLICATION', `${doing}: ${why}`, { cause });
}
