/**
 * What the database-level replication tests share: temporary directories, replicated opens on the
 * test cluster, a digest of a database's whole contents, a seeded transaction workload, and a wait
 * for a follower to reach the leader's position.
 */
import { createHash, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { type Database, isLightningError, open, openReplica, restore } from '../../src/index.js';
import { codeOf, rejection } from '../support/async.js';
import { type NatsContext, stepMs, useNatsCluster } from '../support/nats-log.js';
import { seedFromEnv } from '../support/seeded-random.js';

export const partitions = 8;

/** Temporary directories removed after the file's tests. */
export function useDirectories(prefix: string): () => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    made.push(dir);
    return dir;
  };
}

/** What a database-level replication test file sets up: its seed (printed), cluster and directories. */
export interface ReplicationTestFile {
  readonly seed: number;
  readonly nats: NatsContext;
  readonly directory: () => Promise<string>;
  /** A test's timeout: several waits of stepMs. */
  readonly testMs: number;
}

export function replicationTestFile(name: string, directoryPrefix: string): ReplicationTestFile {
  const seed = seedFromEnv(randomInt(2 ** 32));
  console.log(`${name} seed ${seed} (LIGHTNING_SEED=${seed} replays the workloads)`);
  return {
    seed,
    nats: useNatsCluster(`${name}.test`),
    directory: useDirectories(directoryPrefix),
    testMs: 6 * stepMs,
  };
}

export interface ReplicationTarget {
  servers: string[];
  stream: string;
  leaseTtlMs?: number;
  retainMs?: number;
}

export function leaderAt(dir: string, target: ReplicationTarget, name: string): Promise<Database> {
  return open(dir, { partitions, workers: 2, replication: { ...target, name } });
}

export function followerAt(dir: string, target: ReplicationTarget, name: string): Promise<Database> {
  return openReplica(dir, { partitions, workers: 2, replication: { ...target, name } });
}

/** sha256 over every key and value of the default store, in key order, and the entry count. */
export function digest(db: Database): { hash: string; entries: number } {
  const hash = createHash('sha256');
  let entries = 0;
  for (const [key, value] of db.range()) {
    hash.update(`${key.length}:`).update(key).update(`${value.length}:`).update(value);
    entries++;
  }
  return { hash: hash.digest('hex'), entries };
}

/** Resolves once `follower` applied everything `leader` acknowledged so far. */
export async function caughtUp(follower: Database, leader: Database): Promise<void> {
  await follower.replication!.waitForPosition(leader.replication!.position(), stepMs);
}

/**
 * Restores `backupDir` and opens it as a follower, next to a fresh follower; once both caught up with
 * `leader`, checks that both hold its exact contents and that the restored one applied fewer
 * envelopes (it resumed from its backup's positions), with `failure` null. Both stay open.
 */
export async function bootstrapFromBackup(
  leader: Database,
  target: ReplicationTarget,
  backupDir: string,
  directory: () => Promise<string>,
): Promise<{ restored: Database; fresh: Database; appliedByRestored: number; appliedByFresh: number }> {
  const restoredDir = join(await directory(), 'restored');
  await restore(backupDir, restoredDir);
  const restored = await followerAt(restoredDir, target, 'restored');
  const fresh = await followerAt(await directory(), target, 'fresh');
  await caughtUp(restored, leader);
  await caughtUp(fresh, leader);
  const expected = digest(leader);
  expect(digest(restored)).toEqual(expected);
  expect(digest(fresh)).toEqual(expected);
  const appliedByRestored = restored.stats().replication!.envelopesApplied;
  const appliedByFresh = fresh.stats().replication!.envelopesApplied;
  expect(appliedByRestored).toBeLessThan(appliedByFresh);
  expect(restored.stats().replication!.failure).toBeNull();
  return { restored, fresh, appliedByRestored, appliedByFresh };
}

/**
 * `count` seeded transactions, `concurrency` at a time, each reading a key and writing 1 to 4 keys
 * (one in eight deletes) of a space of `keySpace` keys: most span several partitions (two-phase
 * commit). Returns how many committed.
 */
export async function runTransactions(
  db: Database,
  random: () => number,
  count: number,
  options: { concurrency: number; keySpace: number; tag: string },
): Promise<number> {
  let next = 0;
  let committed = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      const writes = Array.from({ length: 1 + (random() % 4) }, () => ({
        key: `k${random() % options.keySpace}`,
        del: random() % 8 === 0,
      }));
      const read = `k${random() % options.keySpace}`;
      await db.transaction(
        (tx) => {
          const seen = tx.get(read)?.length ?? 0;
          for (const write of writes) {
            if (write.del) tx.del(write.key);
            else tx.put(write.key, `${options.tag}-${index}-${seen}`);
          }
        },
        { retries: 64 },
      );
      committed++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  return committed;
}

/** Puts `key` until one is acknowledged, counting the refusals of each kind on the way. */
export async function putCounting(
  db: Database,
  key: string,
  value: string,
  refusals: Map<string, number>,
): Promise<boolean> {
  try {
    await db.put(key, value);
    return true;
  } catch (error) {
    const code = isLightningError(error) ? error.code : String(error);
    refusals.set(code, (refusals.get(code) ?? 0) + 1);
    return false;
  }
}

/** The code `promise` rejects with (it must reject). */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  return codeOf(await rejection(promise));
}
