import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Paths under this prefix return the database's data (data-endpoints.ts). */
export const dataPathPrefix = '/v1/';
/** The replication endpoints (replication-endpoints.ts): status, and promotion, the one POST. */
export const replicationPaths: readonly string[] = ['/v1/replication', '/v1/replication/promote'];
export const promotePath = '/v1/replication/promote';

export interface DataRefusal {
  status: 401 | 403;
  message: string;
}

/**
 * Who may call the data endpoints. With a token, only a request carrying `Authorization: Bearer
 * <token>`; the comparison takes the same time however much of the token a guess got right (both
 * sides are hashed first, so even their lengths do not show). Without a token, any client of a
 * loopback server; a server bound beyond loopback serves no data without one.
 */
export class DataAccess {
  readonly #tokenDigest: Buffer | null;
  readonly #loopback: boolean;

  constructor(token: string | null, loopback: boolean) {
    this.#tokenDigest = token === null ? null : digest(token);
    this.#loopback = loopback;
  }

  /** Why `request` may not read data, or null if it may. */
  refusal(request: IncomingMessage): DataRefusal | null {
    if (this.#tokenDigest === null) {
      if (this.#loopback) return null;
      return {
        status: 403,
        message:
          'the data endpoints need a token when the admin server listens beyond loopback (token option)',
      };
    }
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (match === null)
      return { status: 401, message: 'a bearer token is required (Authorization: Bearer <token>)' };
    if (!timingSafeEqual(digest(match[1]!), this.#tokenDigest))
      return { status: 401, message: 'the bearer token is not the one this admin server was given' };
    return null;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
