import { assert } from '../shared-memory/assert.js';

/**
 * The replication layer's limits and timings, in one place, their relations asserted at load.
 *
 * A lease is renewed every quarter of its TTL and believed held until a fifth of the TTL before it
 * would expire, counted from the moment the last confirmed renewal was SENT (the server can only
 * have received it later, so the entry cannot expire before then). That leaves three renewal rounds
 * (at 1/4, 1/2, 3/4 of the TTL) to go through before the holder gives up, and a fifth of the TTL as
 * margin for the server's clock running faster than ours and for its expiry timer's granularity.
 */
export const leaseTtlMsMin = 1_000;
export const leaseTtlMsMax = 5 * 60_000;
export const leaseRenewFraction = 1 / 4;
export const leaseMarginFraction = 1 / 5;
/** A failed renewal is retried this often (as a fraction of the TTL) until the lease lapses. */
export const leaseRetryFraction = 1 / 16;
/**
 * How long one renewal attempt waits for its answer (a fraction of the TTL): an attempt sent on a
 * connection that then drops gets no answer at all, and the next attempt must go out on the new
 * connection well before the lease lapses.
 */
export const leaseAttemptFraction = 1 / 8;
/** How often a candidate tries to take a lease over while its holder keeps it (a fraction of the TTL). */
export const leasePollFraction = 1 / 8;
/** The KV key of the leader lease in its bucket, unless told otherwise. */
export const leaseKeyDefault = 'leader';

/** Replicas of the log stream and of the lease bucket: a majority survives one lost server. */
export const replicasDefault = 3;
/**
 * JetStream's duplicate window for the log stream: a retried publish within it is answered
 * "duplicate" instead of stored twice. Longer than any publish retry can last.
 */
export const duplicateWindowMs = 2 * 60_000;
/** How long a publish keeps retrying (through a stream leader election) before it gives up. */
export const publishRetryMsDefault = 60_000;
/** How long one publish attempt waits for the stream's acknowledgement. */
export const publishAttemptMsDefault = 5_000;

/**
 * How often a leader writes its partitions' positions in the log (leader-checkpoints.ts), when
 * anything was published since: a backup of the leader, or the leader reopened as a follower,
 * re-applies at most about this much of the log, and the log is trimmed up to the last such write.
 */
export const positionCheckpointMs = 1_000;

assert(leaseRenewFraction * 3 < 1 - leaseMarginFraction, 'a lease must fit three renewals before it lapses');
assert(leaseRetryFraction < leaseRenewFraction, 'renewal retries must be quicker than renewals');
assert(
  leaseRenewFraction + 2 * (leaseAttemptFraction + leaseRetryFraction) < 1 - leaseMarginFraction,
  'a failed renewal must leave room for two more attempts before the lease lapses',
);
assert(leaseTtlMsMin * leaseRetryFraction >= 50, 'the shortest lease must leave room for a retry');
assert(publishAttemptMsDefault * 2 <= publishRetryMsDefault, 'a publish must get several attempts');
assert(publishRetryMsDefault < duplicateWindowMs, 'retries must end inside the duplicate window');
