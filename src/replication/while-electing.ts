import { setTimeout as sleep } from 'node:timers/promises';
import { LightningError } from '../shared-memory/errors.js';
import { isClosedConnection, replicationError } from './nats-errors.js';
import { publishRetryMsDefault } from './replication-limits.js';

/**
 * Runs `attempt` until it succeeds, trying again while the servers cannot answer yet: after a server
 * dies, JetStream elects new leaders (for its metadata and for each stream) in seconds, and requests
 * meanwhile time out or find no leader. Gives up after `retryMs` with ERR_REPLICATION naming what was
 * being done. The engine's own verdicts (a LightningError of its own, such as a stream of another
 * shape) and a closed connection are not retried; a servers' error wrapped as ERR_REPLICATION is. `attempt` must be safe to run again after a partial failure.
 */
export async function retryWhileElecting<T>(
  doing: string,
  attempt: () => Promise<T>,
  retryMs = publishRetryMsDefault,
): Promise<T> {
  const deadline = Date.now() + retryMs;
  for (let attempts = 1; ; attempts++) {
    try {
      return await attempt();
    } catch (error) {
      const cause = serversCause(error);
      if (cause === null) throw error;
      if (isClosedConnection(cause) || Date.now() >= deadline) {
        throw replicationError(`${doing} (${attempts} attempts)`, cause);
      }
      await sleep(Math.min(100 * attempts, 1_000));
    }
  }
}

/**
 * The servers' error behind `error`: itself, or the cause of an ERR_REPLICATION that wraps one
 * (replicationError). Null for the engine's own verdicts, which a retry cannot change.
 */
function serversCause(error: unknown): unknown {
  if (!(error instanceof LightningError)) return error;
  if (error.code !== 'ERR_REPLICATION' || error.cause === undefined || error.cause instanceof LightningError)
    return null;
  return error.cause;
}
