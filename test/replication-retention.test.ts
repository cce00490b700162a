/**
 * A leader's replication checkpoints and the log's retention, against a real 3-node JetStream
 * cluster on 127.0.0.1 (started by this file): a backup of the leader, taken while cross-partition
 * transactions run, bootstraps a follower that resumes the log from the leader's checkpointed
 * positions; a leader closed cleanly reopens as a follower where it stopped; with `retainMs: 0` the
 * leader trims the log below its checkpoints, a follower that needs a trimmed message is refused
 * ERR_REPLICATION saying so, and one restored from the leader's backup catches up. Seeded
 * (LIGHTNING_SEED); bounds count messages and envelopes, never time.
 */

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Database, restore } from '../src/index.js';
import {
  bootstrapFromBackup,
  caughtUp,
  digest,
  followerAt,
  leaderAt,
  partitions,
  rejectionCode,
  replicationTestFile,
  runTransactions,
} from './replication/replicated-db.js';
import { until } from './support/nats-log.js';
import { mulberry32 } from './support/seeded-random.js';

const { seed, nats, directory, testMs } = replicationTestFile('replication-retention', 'ldb-retain');

/**
 * Writes a marker and waits for the leader's next checkpoint to cover it (a leader that published
 * nothing but its last checkpoint's own writes takes no new one).
 */
async function checkpointed(leader: Database): Promise<number> {
  await leader.put('checkpoint-marker', String(leader.replication!.position()));
  const position = leader.replication!.position();
  await until('the leader checkpointing its positions', () => {
    return leader.stats().replication!.checkpointedPosition >= position;
  });
  return leader.stats().replication!.checkpointedPosition;
}

/**
 * `count` transactions, `concurrency` at a time, each writing three keys never written before (most
 * span partitions): a write lost anywhere shows in the digest, as no later write covers it.
 */
async function uniqueTransactions(db: Database, count: number, concurrency: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await db.transaction((tx) => {
        for (let j = 0; j < 3; j++) tx.put(`u${index}-${j}`, `unique ${index}`);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

async function firstSequence(stream: string): Promise<number> {
  return (await nats.jsm.streams.info(stream)).state.first_seq;
}

describe('replication checkpoints and retention', () => {
  it(
    'a backup of the leader taken while transactions run bootstraps a follower from its checkpoint',
    async () => {
      const random = mulberry32(seed);
      const target = { servers: nats.cluster.servers, stream: 'LEADERBACKUP' };
      const leaderDir = await directory();
      const leader = await leaderAt(leaderDir, target, 'leader');
      await runTransactions(leader, random, 300, { concurrency: 8, keySpace: 400, tag: 'a' });
      // The backup is taken in the middle of cross-partition transactions: the checkpoint it holds
      // names prepared transactions whose decision comes later in the log, and their writes must
      // reach the restored follower from its position's held prepares.
      const running = uniqueTransactions(leader, 600, 16);
      const atBackup = await checkpointed(leader);
      const backupDir = join(await directory(), 'backup');
      await leader.backup(backupDir);
      await running;
      const { restored, fresh, appliedByRestored, appliedByFresh } = await bootstrapFromBackup(
        leader,
        target,
        backupDir,
        directory,
      );
      const expected = digest(leader);
      console.log(
        `leader backup: checkpointed at ${atBackup} of ${leader.replication!.position()} messages; the restored ` +
          `follower applied ${appliedByRestored} envelopes, a fresh one ${appliedByFresh}`,
      );
      expect(atBackup).toBeGreaterThan(0);
      await fresh.close();
      await restored.close();

      // Closed cleanly, the leader checkpoints last; reopened as a follower, it re-applies at most
      // the checkpoint's own writes (one envelope per partition), not its term.
      const published = leader.stats().replication!.messagesPublished;
      await leader.close();
      const reopened = await followerAt(leaderDir, target, 'reopened');
      await until('the reopened leader reaching the log’s end', async () => {
        const end = (await nats.jsm.streams.info('LEADERBACKUP')).state.last_seq;
        return reopened.replication!.position() >= end;
      });
      const reapplied = reopened.stats().replication!.envelopesApplied;
      console.log(
        `the leader reopened as a follower re-applied ${reapplied} envelopes of ${published} messages`,
      );
      expect(reapplied).toBeLessThanOrEqual(partitions);
      expect(digest(reopened)).toEqual(expected);
      await reopened.close();
    },
    testMs,
  );

  it(
    'with retainMs 0 the log is trimmed below the checkpoint: a follower behind it is told, a restored one catches up',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'TRIMMED', retainMs: 0 };
      const leader = await leaderAt(await directory(), target, 'leader');
      for (let i = 0; i < 200; i++) await leader.put(`k${i % 50}`, `a${i}`);
      await checkpointed(leader);
      await until('the leader trimming the log', async () => (await firstSequence('TRIMMED')) > 1);
      const trimmedBelow = leader.stats().replication!.trimmedBelow;
      expect(trimmedBelow).toBeGreaterThan(1);
      expect(await firstSequence('TRIMMED')).toBeLessThanOrEqual(trimmedBelow);

      // An empty follower needs the log from its first message: refused, saying why.
      const behind = await followerAt(await directory(), target, 'behind');
      const error = await behind.replication!.waitForPosition(leader.replication!.position()).then(
        () => null,
        (reason: unknown) => reason as Error & { code?: string },
      );
      expect(error?.code).toBe('ERR_REPLICATION');
      expect(error?.message).toContain('was trimmed');
      expect(behind.stats().replication!.failure).toContain('restore a recent backup');
      expect(await rejectionCode(behind.put('x', 'y'))).toBe('ERR_NOT_LEADER');
      await behind.close();

      // A backup of the leader taken after its last checkpoint needs only what the log kept.
      await checkpointed(leader);
      const backupDir = join(await directory(), 'backup');
      await leader.backup(backupDir);
      const restoredDir = join(await directory(), 'restored');
      await restore(backupDir, restoredDir);
      const restored = await followerAt(restoredDir, target, 'restored');
      await caughtUp(restored, leader);
      // The leader goes on, checkpoints and trims again; the follower, caught up, keeps following.
      const trimmedBefore = leader.stats().replication!.trimmedBelow;
      for (let i = 0; i < 100; i++) await leader.put(`k${i % 50}`, `b${i}`);
      await checkpointed(leader);
      await until(
        'the leader trimming further',
        () => leader.stats().replication!.trimmedBelow > trimmedBefore,
      );
      for (let i = 0; i < 20; i++) await leader.put(`late${i}`, `c${i}`);
      await caughtUp(restored, leader);
      expect(digest(restored)).toEqual(digest(leader));
      expect(restored.stats().replication!.failure).toBeNull();
      console.log(
        `trimmed: below ${trimmedBefore}, then ${leader.stats().replication!.trimmedBelow} of ` +
          `${leader.replication!.position()} messages`,
      );
      await restored.close();
      await leader.close();
    },
    testMs,
  );
});
