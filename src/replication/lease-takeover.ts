import { KvWatchInclude } from '@nats-io/kv';
import { LightningError } from '../shared-memory/errors.js';
import { LeaderLease, type LeaderLeaseOptions } from './leader-lease.js';
import type { LeaseBucket } from './lease-bucket.js';
import { leaseKeyDefault, leasePollFraction } from './replication-limits.js';

/**
 * A follower's way to become leader: wait until the lease is free, then take it.
 *
 * A holder that stops renewing (dead, frozen, cut off) leaves no event behind: the servers just
 * remove its entry one TTL after its last write, and a KV watch does not report removals by age. So
 * the candidate tries `create` every eighth of the TTL, which bounds the takeover at about one TTL
 * after the last renewal plus one poll. A holder that releases the lease deletes the entry, which a
 * watch does report: the candidate then tries at once.
 */
export interface TakeoverOptions extends LeaderLeaseOptions {
  /** Stops waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** How often to try while the lease is held (an eighth of the TTL unless told). */
  pollMs?: number;
}

export async function waitForLeaderLease(
  bucket: LeaseBucket,
  options: TakeoverOptions,
): Promise<LeaderLease> {
  const key = options.key ?? leaseKeyDefault;
  const pollMs = options.pollMs ?? Math.ceil(bucket.ttlMs * leasePollFraction);
  const { signal } = options;
  let wake: (() => void) | undefined;
  // A delete or purge seen while no wait was set up (an acquire was still failing: its rejection and
  // the release can arrive in one read of the socket): the next wait ends at once, not after pollMs.
  let wokenEarly = false;
  // Best effort: without the watch, polling alone still takes the lease over.
  const watch = await bucket.kv.watch({ key, include: KvWatchInclude.UpdatesOnly }).catch(() => undefined);
  void (async () => {
    if (watch === undefined) return;
    try {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') continue;
        if (wake === undefined) wokenEarly = true;
        else wake();
      }
    } catch {
      // The watch ended with the connection; polling goes on.
    }
  })();
  try {
    for (;;) {
      signal?.throwIfAborted();
      wokenEarly = false;
      try {
        return await LeaderLease.acquire(bucket, { ...options, key });
      } catch (error) {
        if (!(error instanceof LightningError) || error.code !== 'ERR_LOCKED') throw error;
      }
      if (wokenEarly) continue;
      await new Promise<void>((resolve, reject) => {
        const cleanup = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          wake = undefined;
        };
        const timer = setTimeout(() => {
          cleanup();
          resolve();
        }, pollMs);
        const onAbort = (): void => {
          cleanup();
          reject(signal!.reason);
        };
        wake = () => {
          cleanup();
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  } finally {
    watch?.stop();
  }
}
