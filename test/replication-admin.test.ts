/**
 * A replicated database through its admin server, against a real 3-node JetStream cluster on
 * 127.0.0.1 (started by this file) and real HTTP: GET /v1/replication and the replication metrics on
 * a leader and a follower; POST /v1/replication/promote (405 for GET, 401 without the token, 409
 * while the lease is held with wait=false); `lightning-cli replica status` and `promote` in child
 * processes, with their exit codes; 404 for a database that is not replicated.
 */
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { caughtUp, followerAt, leaderAt, useDirectories } from './replication/replicated-db.js';
import { runCli } from './support/cli-runner.js';
import { stepMs, useNatsCluster } from './support/nats-log.js';

const nats = useNatsCluster('replication-admin.test');
const directory = useDirectories('ldb-repl-admin');
const token = 'replication-admin-token-0123456789';
const authorized = { headers: { authorization: `Bearer ${token}` } };
const testMs = 4 * stepMs;

describe('replication through the admin server', () => {
  it(
    'reports role, position and lag, exports metrics, and promotes a follower from the CLI',
    async () => {
      const target = { servers: nats.cluster.servers, stream: 'ADMIN', leaseTtlMs: 2_000 };
      const leaderDir = await directory();
      const followerDir = await directory();
      const leader = await leaderAt(leaderDir, target, 'leader');
      const follower = await followerAt(followerDir, target, 'follower');
      const leaderAdmin = await leader.serveAdmin({ port: 0, token });
      const followerAdmin = await follower.serveAdmin({ port: 0, token });
      for (let i = 0; i < 20; i++) await leader.put(`a${i}`, `v${i}`);
      await caughtUp(follower, leader);
      const written = leader.replication!.position();

      const onLeader = await fetch(`${leaderAdmin.url}/v1/replication`, authorized);
      expect(onLeader.status).toBe(200);
      expect(await onLeader.json()).toMatchObject({ role: 'leader', stream: 'ADMIN', name: 'leader' });
      const onFollower = (await (await fetch(`${followerAdmin.url}/v1/replication`, authorized)).json()) as {
        role: string;
        position: number;
      };
      expect(onFollower.role).toBe('follower');
      // The follower reached the leader's writes; the leader's checkpoint may have published since.
      expect(onFollower.position).toBeGreaterThanOrEqual(written);
      expect(onFollower.position).toBeLessThanOrEqual(leader.replication!.position());
      expect((await fetch(`${followerAdmin.url}/v1/replication`)).status).toBe(401);
      expect((await fetch(`${followerAdmin.url}/v1/replication/promote`, authorized)).status).toBe(405);

      const metrics = await (await fetch(`${followerAdmin.url}/metrics`)).text();
      expect(metrics).toContain('lightning_replication_role{role="follower"} 1');
      expect(metrics).toContain('lightning_replication_role{role="leader"} 0');
      expect(metrics).toMatch(/lightning_replication_position \d+/);
      expect(metrics).toMatch(/lightning_replication_lag_seconds\{quantile="0.99"\} /);
      expect(metrics).toMatch(/lightning_replication_envelopes_applied_total [1-9]/);
      expect(await (await fetch(`${leaderAdmin.url}/metrics`)).text()).toMatch(
        /lightning_replication_messages_published_total [1-9]/,
      );

      const env = { LIGHTNING_ADMIN_TOKEN: token };
      const status = await runCli(['replica', 'status', followerDir, '--url', followerAdmin.url, '--json'], {
        env,
      });
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ role: 'follower', name: 'follower' });
      const text = await runCli(['replica', 'status', leaderDir, '--url', leaderAdmin.url], { env });
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/role\s+leader/);
      // The leader's directory named with the follower's server: refused, not mixed up.
      expect((await runCli(['replica', 'status', leaderDir, '--url', followerAdmin.url], { env })).code).toBe(
        2,
      );
      expect((await runCli(['replica', 'status', followerDir], { env })).code).toBe(2);

      // The leader holds the lease: an immediate promotion is refused (exit 5, ERR_LOCKED).
      const refused = await runCli(['promote', followerDir, '--url', followerAdmin.url, '--no-wait'], {
        env,
      });
      expect(refused.code, refused.stderr).toBe(5);
      expect(refused.stderr).toContain('ERR_LOCKED');
      expect(follower.replication!.role).toBe('follower');

      // A promotion whose client went away ends with the request: it must not take the lease later.
      const abandon = new AbortController();
      const abandoned = fetch(`${followerAdmin.url}/v1/replication/promote`, {
        ...authorized,
        method: 'POST',
        signal: abandon.signal,
      }).catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 200));
      abandon.abort();
      await abandoned;
      await leader.close();
      // Closing released the lease: a wait still running would take it at once (the watch reports
      // the delete). Should the abort be lost, this check can miss it under load, never fail wrongly.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(follower.replication!.role).toBe('follower');
      const promoted = await runCli(['promote', followerDir, '--url', followerAdmin.url, '--json'], { env });
      expect(promoted.code, promoted.stderr).toBe(0);
      expect(JSON.parse(promoted.stdout)).toMatchObject({ role: 'leader', name: 'follower' });
      expect(follower.replication!.role).toBe('leader');
      await follower.put('after', 'promotion');
      expect(follower.getString('a19')).toBe('v19');
      await follower.close();
    },
    testMs,
  );

  it('answers 404 for a database that is not replicated, and the CLI says so (exit 2)', async () => {
    const dir = await directory();
    const db = await open(dir, { partitions: 2, workers: 1 });
    const admin = await db.serveAdmin({ port: 0 });
    const response = await fetch(`${admin.url}/v1/replication`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'ERR_NOT_FOUND' });
    expect((await fetch(`${admin.url}/v1/replication/promote`, { method: 'POST' })).status).toBe(404);
    expect(await (await fetch(`${admin.url}/metrics`)).text()).not.toContain('lightning_replication_');
    const status = await runCli(['replica', 'status', dir, '--url', admin.url]);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('not replicated');
    await db.close();
  });
});
