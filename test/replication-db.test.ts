/**
 * A replicated database against a real 3-node JetStream cluster on 127.0.0.1 (started by this file):
 * followers end with the leader's exact contents after 10,000 transactions; losing a NATS server
 * (a follower of the log, then the log's leader) costs no acknowledged write and applies none twice;
 * session reads on a follower see the caller's own writes. Seeded (LIGHTNING_SEED); bounds count
 * operations, and the times printed are figures, never asserted.
 */

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Database, openReplica } from '../src/index.js';
import { openLeaseBucket } from '../src/replication/lease-bucket.js';
import { encodeLeaseValue } from '../src/replication/lease-value.js';
import {
  bootstrapFromBackup,
  caughtUp,
  digest,
  followerAt,
  leaderAt,
  putCounting,
  rejectionCode,
  replicationTestFile,
  runTransactions,
} from './replication/replicated-db.js';
import { codeOf, rejection } from './support/async.js';
import { until } from './support/nats-log.js';
import { mulberry32 } from './support/seeded-random.js';

const { seed, nats, directory, testMs } = replicationTestFile('replication-db', 'ldb-repl');

async function closeAll(...dbs: Database[]): Promise<void> {
  for (const db of dbs) await db.close();
}

describe('a replicated database', () => {
  it(
    'after 10,000 transactions, every follower holds exactly the leader’s contents',
    async () => {
      const random = mulberry32(seed);
      const target = { servers: nats.cluster.servers, stream: 'TX10K' };
      const leader = await leaderAt(await directory(), target, 'leader');
      const early = await followerAt(await directory(), target, 'early');
      expect(leader.replication?.role).toBe('leader');
      expect(early.replication?.role).toBe('follower');
      // A second leader for the same log is refused: the lease is held.
      expect(await rejectionCode(leaderAt(await directory(), target, 'usurper'))).toBe('ERR_LOCKED');
      const started = performance.now();
      let committed = await runTransactions(leader, random, 5_000, {
        concurrency: 16,
        keySpace: 2_000,
        tag: 'a',
      });
      // A follower that starts halfway reads the log from its beginning.
      const late = await followerAt(await directory(), target, 'late');
      committed += await runTransactions(leader, random, 5_000, {
        concurrency: 16,
        keySpace: 2_000,
        tag: 'b',
      });
      const elapsed = performance.now() - started;
      expect(committed).toBe(10_000);
      await caughtUp(early, leader);
      await caughtUp(late, leader);
      const expected = digest(leader);
      expect(expected.entries).toBeGreaterThan(1_000);
      expect(digest(early)).toEqual(expected);
      expect(digest(late)).toEqual(expected);
      const stats = leader.stats().replication!;
      expect(stats.role).toBe('leader');
      expect(early.stats().replication!.failure).toBeNull();
      expect(late.stats().replication!.failure).toBeNull();
      console.log(
        `10,000 transactions in ${elapsed.toFixed(0)} ms: ${stats.messagesPublished} messages carrying ` +
          `${stats.batchesPublished} owner batches, ${stats.publishRetries} retries; early follower lag ` +
          `p50 ${early.stats().replication!.lagMsP50.toFixed(1)} ms, p99 ${early.stats().replication!.lagMsP99.toFixed(1)} ms`,
      );
      // A follower refuses writes; its reads are the leader's.
      expect(await rejectionCode(early.put('x', 'y'))).toBe('ERR_NOT_LEADER');
      expect(await rejectionCode(early.transaction((tx) => tx.put('x', 'y')))).toBe('ERR_NOT_LEADER');
      await closeAll(late, early, leader);
    },
    testMs,
  );

  it(
    'session reads on a follower see the caller’s own writes',
    async () => {
      const random = mulberry32(seed + 1);
      const target = { servers: nats.cluster.servers, stream: 'SESSION' };
      const leader = await leaderAt(await directory(), target, 'leader');
      const follower = await followerAt(await directory(), target, 'follower');
      let seenAtOnce = 0;
      const rounds = 200;
      for (let round = 0; round < rounds; round++) {
        const key = `s${random() % 50}`;
        const value = `v${round}`;
        if (random() % 2 === 0) await leader.put(key, value);
        else
          await leader.batch([
            { type: 'put', key, value },
            { type: 'put', key: `${key}/b`, value },
          ]);
        const position = leader.replication!.position();
        if (follower.getString(key) === value) seenAtOnce++;
        await follower.replication!.waitForPosition(position);
        expect(follower.getString(key)).toBe(value);
      }
      console.log(`session reads: ${rounds} rounds, ${seenAtOnce} saw the write before waiting`);
      // A position beyond the log times out with ERR_REPLICATION; a bad one is ERR_BAD_ARGUMENT.
      expect(
        await rejectionCode(follower.replication!.waitForPosition(leader.replication!.position() + 10, 200)),
      ).toBe('ERR_REPLICATION');
      expect(await rejectionCode(follower.replication!.waitForPosition(-1))).toBe('ERR_BAD_ARGUMENT');
      await closeAll(follower, leader);
    },
    testMs,
  );

  it(
    'a follower restored from another follower’s backup applies the log from the backup’s positions',
    async () => {
      const random = mulberry32(seed + 2);
      const target = { servers: nats.cluster.servers, stream: 'BOOTSTRAP' };
      const leader = await leaderAt(await directory(), target, 'leader');
      const source = await followerAt(await directory(), target, 'source');
      await runTransactions(leader, random, 300, { concurrency: 8, keySpace: 400, tag: 'a' });
      await caughtUp(source, leader);
      const backupDir = join(await directory(), 'backup');
      await source.backup(backupDir);
      const backedUpAt = source.replication!.position();
      await runTransactions(leader, random, 300, { concurrency: 8, keySpace: 400, tag: 'b' });
      // The restored follower skips what its backup held: it applies fewer envelopes than one that
      // reads the whole log, and both end with the leader's contents.
      const { restored, fresh, appliedByRestored, appliedByFresh } = await bootstrapFromBackup(
        leader,
        target,
        backupDir,
        directory,
      );
      console.log(
        `bootstrap: backup at position ${backedUpAt} of ${leader.replication!.position()}; the restored ` +
          `follower applied ${appliedByRestored} envelopes, a fresh one ${appliedByFresh}`,
      );
      await closeAll(fresh, restored, source, leader);
    },
    testMs,
  );

  it(
    'refuses a write too large for one log message alone: the writes sharing its group commit go on',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'TOOLARGE' };
      const leader = await leaderAt(await directory(), target, 'leader');
      const follower = await followerAt(await directory(), target, 'follower');
      const huge = 'x'.repeat(nats.nc.info!.max_payload + 1024);
      // Sent microseconds apart, the small puts reach the owners with the large one (puts of one
      // turn share a promise, so each group gets a turn of its own).
      const small = Array.from({ length: 64 }, (_, i) => leader.put(`small${i}`, `v${i}`));
      await null;
      const large = leader.put('large', huge);
      await null;
      const largeInTransaction = leader.transaction((tx) => {
        tx.put('tx-small', 'ok');
        tx.put('tx-large', huge);
      });
      const alsoSmall = Array.from({ length: 64 }, (_, i) => leader.put(`after${i}`, `w${i}`));
      expect(await rejectionCode(large)).toBe('ERR_VALUE_TOO_LARGE');
      expect(await rejectionCode(largeInTransaction)).toBe('ERR_VALUE_TOO_LARGE');
      await Promise.all([...small, ...alsoSmall]);
      // The leader goes on leading, and the follower has every small write and neither large one.
      expect(leader.replication!.role).toBe('leader');
      await leader.put('later', 'still leading');
      await caughtUp(follower, leader);
      for (const db of [leader, follower]) {
        expect(db.getString('large')).toBeUndefined();
        expect(db.getString('tx-large')).toBeUndefined();
        expect(db.getString('tx-small')).toBeUndefined();
        expect(db.getString('small63')).toBe('v63');
        expect(db.getString('after0')).toBe('w0');
        expect(db.getString('later')).toBe('still leading');
      }
      expect(digest(follower)).toEqual(digest(leader));
      await closeAll(follower, leader);
    },
    testMs,
  );

  it(
    'a leader whose lease another holder took steps down: writes and session waits reject ERR_DEPOSED, reads go on',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'TAKEN', leaseTtlMs: 2_000 };
      const leader = await leaderAt(await directory(), target, 'leader');
      await leader.put('before', 'taken');
      // Another holder writes the lease entry: the leader's next renewal finds it and steps down.
      const bucket = await openLeaseBucket(nats.js, { name: 'TAKEN-lease', ttlMs: 2_000, replicas: 3 });
      await bucket.kv.put('leader', encodeLeaseValue({ holder: 'intruder', term: 1_000 }));
      await until('the leader stepping down', () => leader.replication!.role === 'deposed');
      expect(await rejectionCode(leader.put('after', 'x'))).toBe('ERR_DEPOSED');
      expect(await rejectionCode(leader.replication!.waitForPosition(1))).toBe('ERR_DEPOSED');
      expect(await rejectionCode(leader.replication!.promote())).toBe('ERR_DEPOSED');
      expect(leader.getString('before')).toBe('taken');
      expect(leader.stats().replication!.failure).toContain('another holder');
      await leader.close();
    },
    testMs,
  );

  it(
    'refuses at open a database whose partition count differs from the log’s',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'PARTITIONS' };
      const leader = await leaderAt(await directory(), target, 'leader');
      await leader.put('k', 'v');
      const replication = { ...target, name: 'other' };
      const refused = await rejection(
        openReplica(await directory(), { partitions: 16, workers: 1, replication }),
      );
      expect(codeOf(refused)).toBe('ERR_BAD_ARGUMENT');
      expect(refused.message).toContain('8 partitions');
      // The same count is accepted.
      const follower = await followerAt(await directory(), target, 'follower');
      await caughtUp(follower, leader);
      expect(follower.getString('k')).toBe('v');
      await closeAll(follower, leader);
    },
    testMs,
  );

  it(
    'SIGKILL of a NATS server that leads neither the log nor the lease: no write fails, and it catches up',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'NODEKILL' };
      const leader = await leaderAt(await directory(), target, 'leader');
      const follower = await followerAt(await directory(), target, 'follower');
      await leader.put('warm', 'up');
      const logLeader = await nats.cluster.streamLeader('NODEKILL');
      const leaseLeader = await nats.cluster.streamLeader('KV_NODEKILL-lease');
      const victim = [0, 1, 2].find((node) => node !== logLeader && node !== leaseLeader)!;
      const refusals = new Map<string, number>();
      let acknowledged = 0;
      const writes = 300;
      for (let i = 0; i < writes; i++) {
        if (i === 100) await nats.cluster.kill(victim);
        if (await putCounting(leader, `n${i}`, `v${i}`, refusals)) acknowledged++;
      }
      expect([...refusals]).toEqual([]);
      expect(acknowledged).toBe(writes);
      await caughtUp(follower, leader);
      expect(digest(follower)).toEqual(digest(leader));
      await nats.cluster.restart(victim);
      // At least to here: the leader's checkpoint may publish a message or two after this.
      const end = leader.replication!.position();
      let onVictim: number | undefined;
      await until(`node ${victim} catching up to ${end}`, async () => {
        onVictim = await nats.cluster.streamLastSequenceOn(victim, 'NODEKILL');
        return onVictim !== undefined && onVictim >= end;
      });
      expect(onVictim).toBeGreaterThanOrEqual(end);
      await closeAll(follower, leader);
    },
    testMs,
  );

  it(
    'SIGKILL of the log’s leader server: writes resume, none acknowledged is lost or applied twice',
    async () => {
      // A lease longer than an election, so the database keeps its leadership through it.
      const target = { servers: nats.cluster.servers, stream: 'LEADERKILL', leaseTtlMs: 30_000 };
      const leader = await leaderAt(await directory(), target, 'leader');
      const follower = await followerAt(await directory(), target, 'follower');
      await leader.put('warm', 'up');
      const victim = await nats.cluster.streamLeader('LEADERKILL');
      const refusals = new Map<string, number>();
      const acknowledged: string[] = [];
      let killedAt = 0;
      let longestPauseMs = 0;
      let last = performance.now();
      for (let i = 0; i < 300; i++) {
        if (i === 100) {
          killedAt = performance.now();
          await nats.cluster.kill(victim);
        }
        if (await putCounting(leader, `l${i}`, `v${i}`, refusals)) acknowledged.push(`l${i}`);
        const now = performance.now();
        longestPauseMs = Math.max(longestPauseMs, now - last);
        last = now;
      }
      console.log(
        `log leader (node ${victim}) killed ${(performance.now() - killedAt).toFixed(0)} ms before the last write; ` +
          `longest pause between acknowledgements ${longestPauseMs.toFixed(0)} ms; ` +
          `${leader.stats().replication!.publishRetries} publish retries; refusals ${JSON.stringify([...refusals])}`,
      );
      expect(leader.replication!.role).toBe('leader');
      expect([...refusals]).toEqual([]);
      expect(acknowledged).toHaveLength(300);
      await caughtUp(follower, leader);
      // A follower started now reads the whole log, its chain checked: a batch stored twice would
      // break it (ERR_CORRUPTION) rather than be applied twice.
      const fresh = await followerAt(await directory(), target, 'fresh');
      await caughtUp(fresh, leader);
      for (const key of acknowledged) expect(fresh.getString(key)).toBe(`v${key.slice(1)}`);
      expect(digest(follower)).toEqual(digest(leader));
      expect(digest(fresh)).toEqual(digest(leader));
      expect(fresh.stats().replication!.failure).toBeNull();
      await nats.cluster.restart(victim);
      await closeAll(fresh, follower, leader);
    },
    testMs,
  );
});
