import type { ServerResponse } from 'node:http';
import { isLightningError } from '../../shared-memory/index.js';
import type { Database } from '../database.js';
import { promotePath } from './data-access.js';
import { send } from './data-endpoints.js';

/**
 * The admin server's replication endpoints, for `lightning-cli replica status` and `promote`:
 *
 *   GET  /v1/replication           stats().replication as JSON; 404 if the database is not replicated.
 *   POST /v1/replication/promote   makes a follower the leader and answers its new stats. It waits for
 *                                  the lease up to `timeoutMs` (default 60,000, at most 290,000;
 *                                  504 once it runs out; a client that disconnects ends the wait),
 *                                  or with `wait=false` answers 409 (ERR_LOCKED) at once while
 *                                  another database holds it. A leader answers 200 unchanged; a
 *                                  deposed one 409 (ERR_DEPOSED: reopen it with openReplica()).
 *
 * Errors are JSON: `{ "error": code, "message": text }`.
 */
const jsonType = 'application/json; charset=utf-8';
const promoteTimeoutMsDefault = 60_000;
/**
 * Below the 300 s a fetch() client (undici) waits for response headers by default: a longer wait
 * would outlive the CLI's request and promote with nobody watching.
 */
const promoteTimeoutMsMax = 290_000;

export async function serveReplication(db: Database, url: URL, response: ServerResponse): Promise<void> {
  const replication = db.replication;
  if (replication === null) {
    sendError(
      response,
      db,
      404,
      'ERR_NOT_FOUND',
      'this database is not replicated (open it with the replication option)',
    );
    return;
  }
  if (url.pathname === promotePath) {
    const query = url.searchParams;
    const wait = query.get('wait') !== 'false';
    const timeoutText = query.get('timeoutMs');
    const timeoutMs = timeoutText === null ? promoteTimeoutMsDefault : Number(timeoutText);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > promoteTimeoutMsMax) {
      sendError(
        response,
        db,
        400,
        'ERR_BAD_ARGUMENT',
        `timeoutMs must be an integer from 1 to ${promoteTimeoutMsMax}`,
      );
      return;
    }
    // The wait ends with the request: a client that went away (Ctrl-C) must not promote later.
    const gone = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) gone.abort(new Error('the client went away'));
    });
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), gone.signal]);
    try {
      await replication.promote({ wait, signal });
    } catch (error) {
      if (signal.aborted && !isLightningError(error)) {
        // The client that went away gets nothing; one still waiting hears the lease is held.
        if (!gone.signal.aborted)
          sendError(response, db, 504, 'ERR_LOCKED', `the lease was still held after ${timeoutMs} ms`);
        return;
      }
      if (!isLightningError(error)) throw error;
      const status =
        error.code === 'ERR_LOCKED' || error.code === 'ERR_DEPOSED'
          ? 409
          : error.code === 'ERR_BAD_ARGUMENT'
            ? 400
            : 503;
      sendError(response, db, status, error.code, error.message);
      return;
    }
  }
  send(response, 200, jsonType, db, `${JSON.stringify(replication.stats())}\n`);
}

function sendError(
  response: ServerResponse,
  db: Database,
  status: number,
  code: string,
  message: string,
): void {
  send(response, status, jsonType, db, `${JSON.stringify({ error: code, message })}\n`);
}
