/**
 * Failover of a replicated database whose leader runs in a process of its own, against a real
 * 3-node JetStream cluster on 127.0.0.1 (started by this file):
 * - the leader SIGSTOPped past its lease: a follower takes over; SIGCONTed, the old leader steps
 *   down (it never acknowledges another write), and its directory rejoins with the new contents;
 * - the leader SIGKILLed: a follower promotes, every acknowledged write is there, and the dead
 *   leader's directory rejoins as a follower with the same contents;
 * - a follower losing power (the fault file layer's journal replayed, keeping only what was synced)
 *   resumes from the position its partitions checkpointed: no gap (its chain check would stop it)
 *   and nothing applied twice (its contents equal the leader's).
 * Seeded (LIGHTNING_SEED); the times printed are figures, never asserted.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Database } from '../src/index.js';
import { ReplicatedChild } from './replication/child-process.js';
import {
  caughtUp,
  digest,
  followerAt,
  leaderAt,
  rejectionCode,
  replicationTestFile,
  runTransactions,
} from './replication/replicated-db.js';
import { journalEnvName, readJournal } from './support/fault-journal.js';
import { PowerLossReplay, writeImage } from './support/power-loss-image.js';
import { mulberry32 } from './support/seeded-random.js';

const { seed, nats, directory, testMs } = replicationTestFile('replication-failover', 'ldb-failover');
const faultLayerPath = fileURLToPath(new URL('./support/fault-file-layer.ts', import.meta.url));
/** Short, so a takeover comes soon after the holder stops renewing. */
const leaseTtlMs = 2_000;

const isAck = (line: string): boolean => line.startsWith('A ');

/** Every put `child` acknowledged is in `db` with its value; returns how many there were. */
function expectAcknowledgedIn(child: ReplicatedChild, db: Database): number {
  const acknowledged = child.acknowledged();
  const missing = [...acknowledged].filter(([key, value]) => db.getString(key) !== value).map(([key]) => key);
  expect(missing).toEqual([]);
  return acknowledged.size;
}

describe('failover of a replicated database', () => {
  it(
    'a leader stopped past its lease steps down when it resumes: what it acknowledged is in the log, and it rejoins',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'STOPPED', leaseTtlMs };
      const oldDir = await directory();
      const old = new ReplicatedChild({ mode: 'lead', dir: oldDir, ...target, name: 'old' });
      await old.waitForCount('100 puts acknowledged by the old leader', 100, isAck);
      const successor = await followerAt(await directory(), target, 'successor');
      old.signal('SIGSTOP');
      const stoppedAt = performance.now();
      const acknowledgedBeforeStop = old.acknowledged().size;
      await successor.replication!.promote();
      const takeoverMs = performance.now() - stoppedAt;
      expect(successor.replication!.role).toBe('leader');
      for (let i = 0; i < 50; i++) await successor.put(`s${i}`, `w${i}`);
      const linesBeforeResume = old.lines.length;
      old.signal('SIGCONT');
      await old.waitFor('the old leader stepping down', (line) => line === 'D');
      await old.waitFor(
        'a put refused with ERR_DEPOSED',
        (line) => line.startsWith('E ') && line.endsWith(' ERR_DEPOSED'),
      );
      // Whatever the old leader acknowledged, before the stop or as it resumed, is in the new
      // leader's log: nothing it acknowledged was lost.
      const acknowledged = expectAcknowledgedIn(old, successor);
      const acknowledgedAfterResume = old.lines.slice(linesBeforeResume).filter(isAck).length;
      const refusedAfterResume = old.lines
        .slice(linesBeforeResume)
        .filter((line) => line.startsWith('E ')).length;
      await old.kill();
      console.log(
        `stopped leader: ${acknowledgedBeforeStop} puts acknowledged before SIGSTOP, successor leading ` +
          `${takeoverMs.toFixed(0)} ms after it (lease ${leaseTtlMs} ms); after SIGCONT ${acknowledgedAfterResume} ` +
          `acknowledged (all in the new log), ${refusedAfterResume} refused; ${acknowledged} acknowledged in all`,
      );
      // The old leader's directory, reopened as a follower, ends with the new leader's contents.
      const rejoined = await followerAt(oldDir, target, 'old');
      await caughtUp(rejoined, successor);
      expect(digest(rejoined)).toEqual(digest(successor));
      expect(rejoined.getString('s49')).toBe('w49');
      expect(rejoined.stats().replication!.failure).toBeNull();
      await rejoined.close();
      await successor.close();
    },
    testMs,
  );

  it(
    'a leader SIGKILLed: a follower promotes and every acknowledged write is there',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'KILLED', leaseTtlMs };
      const deadDir = await directory();
      const dead = new ReplicatedChild({ mode: 'lead', dir: deadDir, ...target, name: 'dead' });
      await dead.waitFor('the leader open', (line) => line === 'R');
      const successor = await followerAt(await directory(), target, 'successor');
      await dead.waitForCount('300 puts acknowledged by the leader', 300, isAck);
      await dead.kill();
      const killedAt = performance.now();
      // Promotion waits for the dead leader's lease to expire, then applies the log to its end.
      await successor.replication!.promote();
      await successor.put('first', 'after failover');
      const failoverMs = performance.now() - killedAt;
      const acknowledged = expectAcknowledgedIn(dead, successor);
      console.log(
        `SIGKILLed leader: ${acknowledged} acknowledged puts all present; first write accepted on the ` +
          `new leader ${failoverMs.toFixed(0)} ms after the kill (lease ${leaseTtlMs} ms)`,
      );
      // The dead leader's directory recovers its own log and follows: the same contents.
      const rejoined = await followerAt(deadDir, target, 'dead');
      await caughtUp(rejoined, successor);
      expect(digest(rejoined)).toEqual(digest(successor));
      expect(rejoined.getString('first')).toBe('after failover');
      expect(await rejectionCode(rejoined.put('x', 'y'))).toBe('ERR_NOT_LEADER');
      await rejoined.close();
      await successor.close();
    },
    testMs,
  );

  it(
    'a follower that loses power resumes from its checkpointed position without gaps or duplicates',
    async () => {
      const random = mulberry32(seed);
      const target = { servers: nats.cluster.servers, stream: 'POWER' };
      const leader = await leaderAt(await directory(), target, 'leader');
      await runTransactions(leader, random, 200, { concurrency: 8, keySpace: 500, tag: 'a' });
      const followerDir = await directory();
      const replay = await PowerLossReplay.fromDirectory(followerDir);
      const journal = join(await directory(), 'journal');
      const child = new ReplicatedChild({
        mode: 'follow',
        dir: followerDir,
        ...target,
        leaseTtlMs: 5_000,
        name: 'follower',
        fileLayer: faultLayerPath,
        env: { ...process.env, [journalEnvName]: journal },
      });
      await child.waitFor('the follower open', (line) => line === 'R');
      // The leader keeps writing while the follower applies; it loses power half way through.
      const writing = runTransactions(leader, random, 600, { concurrency: 8, keySpace: 500, tag: 'b' });
      const halfWay = leader.replication!.position() + 150;
      await child.waitFor(`the follower applying past ${halfWay}`, (line) => {
        const [tag, position] = line.split(' ');
        return tag === 'P' && Number(position) >= halfWay;
      });
      await child.kill();
      await writing;
      expect(existsSync(journal)).toBe(true);
      const records = readJournal(journal);
      // Three power losses: at two seeded points of the journal, and at its end.
      const points = [1 + (random() % records.length), 1 + (random() % records.length), records.length].sort(
        (a, b) => a - b,
      );
      const expected = digest(leader);
      let applied = 0;
      for (const point of points) {
        for (; applied < point; applied++) replay.apply(records[applied]!);
        // What the file system wrote back in order survives, up to a random point at or after the
        // last sync (the order the engine's own power-loss test uses in npm test).
        const image = replay.image(random, { order: 'prefix', keep: 0.5, tear: 0.5 });
        const imageDir = await directory();
        await writeImage(image, imageDir);
        const resumed = await followerAt(imageDir, target, 'follower');
        await caughtUp(resumed, leader);
        expect(resumed.stats().replication!.failure).toBeNull();
        expect(digest(resumed)).toEqual(expected);
        console.log(
          `power loss at journal record ${point} of ${records.length}: resumed and applied ` +
            `${resumed.stats().replication!.envelopesApplied} envelopes to reach position ${resumed.replication!.position()}`,
        );
        await resumed.close();
      }
      await leader.close();
    },
    testMs,
  );
});
