import type { JetStreamClient } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { LightningError } from '../shared-memory/errors.js';
import { isStreamNotFound, replicationError } from './nats-errors.js';
import { leaseTtlMsMax, leaseTtlMsMin, replicasDefault } from './replication-limits.js';

/**
 * The JetStream KV bucket that holds leader leases. Its TTL (the stream's max age) is what makes a
 * lease lapse: an entry its holder stops renewing is removed by the servers one TTL after its last
 * write, and a `create` succeeds again. The bucket keeps one revision per key; it is replicated like
 * the log so that losing one server loses neither.
 */
export interface LeaseBucket {
  readonly kv: KV;
  readonly name: string;
  /** The bucket's TTL, read back from the servers: what every lease in it is timed by. */
  readonly ttlMs: number;
}

export interface LeaseBucketOptions {
  /** Bucket name (letters, digits, `-`, `_`). */
  name: string;
  /** How long an entry lives after its last write: the lease's TTL. */
  ttlMs: number;
  /** Servers holding a copy: 3 unless told (1 for a single server). */
  replicas?: number;
}

/**
 * Creates the bucket, or opens it if it exists. An existing bucket must have the asked TTL
 * (ERR_BAD_ARGUMENT otherwise): holders and candidates timed by different TTLs would not agree on
 * when a lease has lapsed.
 */
export async function openLeaseBucket(
  js: JetStreamClient,
  options: LeaseBucketOptions,
): Promise<LeaseBucket> {
  const { name, ttlMs } = options;
  if (!Number.isInteger(ttlMs) || ttlMs < leaseTtlMsMin || ttlMs > leaseTtlMsMax) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `lease ttlMs must be an integer in ${leaseTtlMsMin}..${leaseTtlMsMax}, got ${ttlMs}`,
    );
  }
  const replicas = options.replicas ?? replicasDefault;
  let kv: KV;
  let storedTtlMs: number;
  try {
    const kvm = new Kvm(js);
    // Opened first: creating a bucket that exists with another TTL fails with a vaguer error.
    kv = await kvm.open(name);
    try {
      storedTtlMs = (await kv.status()).ttl;
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      kv = await kvm.create(name, { ttl: ttlMs, history: 1, replicas });
      storedTtlMs = (await kv.status()).ttl;
    }
  } catch (error) {
    throw replicationError(`opening lease bucket ${name}`, error);
  }
  if (storedTtlMs !== ttlMs) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `lease bucket ${name} exists with a TTL of ${storedTtlMs} ms, not the ${ttlMs} ms asked for`,
    );
  }
  return { kv, name, ttlMs };
}
