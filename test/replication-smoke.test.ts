import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open, openReplica } from '../src/index.js';
import { useNatsCluster } from './support/nats-log.js';

const nats = useNatsCluster('replication-smoke');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('smoke', () => {
  it('replicates a put', async () => {
    const a = await mkdtemp(join(tmpdir(), 'ldb-lead-'));
    const b = await mkdtemp(join(tmpdir(), 'ldb-foll-'));
    dirs.push(a, b);
    const replication = { servers: nats.cluster.servers, stream: 'SMOKE', leaseTtlMs: 2000 };
    const leader = await open(a, { partitions: 4, workers: 2, replication: { ...replication, name: 'a' } });
    console.log('step 1', Date.now() % 100000);
    expect(leader.replication?.role).toBe('leader');
    const follower = await openReplica(b, {
      partitions: 4,
      workers: 2,
      replication: { ...replication, name: 'b' },
    });
    console.log('step 2', Date.now() % 100000);
    expect(follower.replication?.role).toBe('follower');
    await leader.put('k1', 'v1');
    console.log('step 3', Date.now() % 100000);
    for (let i = 0; i < 100; i++) await leader.put(`k${i}`, `v${i}`);
    await leader.batch([
      { type: 'put', key: 'x', value: 'y' },
      { type: 'put', key: 'z', value: 'w' },
    ]);
    console.log('step 4', Date.now() % 100000);
    await leader.transaction(async (tx) => {
      console.log('step 5', Date.now() % 100000);
      tx.put('t1', 'a');
      tx.put('t2', 'b');
      tx.put('t3', 'c');
    });
    const position = leader.replication!.position();
    console.log('position', position, leader.stats().replication);
    await follower.replication!.waitForPosition(position, 20000);
    console.log('step 6', Date.now() % 100000);
    expect(follower.getString('k5')).toBe('v5');
    expect(follower.getString('z')).toBe('w');
    expect(follower.getString('t3')).toBe('c');
    console.log(follower.stats().replication);
    await expect(follower.put('q', 'r')).rejects.toMatchObject({ code: 'ERR_NOT_LEADER' });
    await follower.close();
    await leader.close();
    console.log('step 7', Date.now() % 100000);
  }, 60000);
});
