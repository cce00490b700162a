/**
 * The replication options are checked before anything connects: every bad field is ERR_BAD_ARGUMENT
 * naming it, and the defaults are the documented ones. No servers needed.
 */
import { describe, expect, it } from 'vitest';
import { open, openReplica } from '../src/index.js';
import { resolveReplication } from '../src/replication/replication-options.js';
import { rejectionCode, useDirectories } from './replication/replicated-db.js';
import { unchecked } from './support/async.js';

const directory = useDirectories('ldb-repl-options');
const valid = { servers: ['nats://127.0.0.1:4222'], stream: 'LOG', name: 'a' };

describe('replication options', () => {
  it('fills in the documented defaults', () => {
    expect(resolveReplication({ ...valid, servers: '127.0.0.1:4222' })).toEqual({
      servers: ['127.0.0.1:4222'],
      stream: 'LOG',
      name: 'a',
      leaseTtlMs: 5_000,
      replicas: 3,
      sessionTimeoutMs: 5_000,
      retainMs: 86_400_000,
    });
    expect(resolveReplication({ ...valid, retainMs: 0 }).retainMs).toBe(0);
  });

  const bad: [string, unknown][] = [
    ['not an object', 'nats://127.0.0.1:4222'],
    ['no servers', { ...valid, servers: [] }],
    ['a server that is not an address', { ...valid, servers: ['hello world'] }],
    ['a server of the wrong type', { ...valid, servers: [4222] }],
    ['a stream name with a dot', { ...valid, stream: 'a.b' }],
    ['an empty name', { ...valid, name: '' }],
    ['an unknown field', { ...valid, bogus: 1 }],
    ['a lease TTL under a second', { ...valid, leaseTtlMs: 10 }],
    ['a fractional lease TTL', { ...valid, leaseTtlMs: 1500.5 }],
    ['a session timeout of 0', { ...valid, sessionTimeoutMs: 0 }],
    ['a negative retainMs', { ...valid, retainMs: -1 }],
    ['a retainMs over 365 days', { ...valid, retainMs: 366 * 86_400_000 }],
    ['a retainMs that is not a number', { ...valid, retainMs: '1d' }],
  ];
  for (const [what, replication] of bad) {
    it(`refuses ${what} with ERR_BAD_ARGUMENT, before connecting`, async () => {
      expect(await rejectionCode(open(await directory(), { replication: unchecked(replication) }))).toBe(
        'ERR_BAD_ARGUMENT',
      );
      expect(
        await rejectionCode(openReplica(await directory(), { replication: unchecked(replication) })),
      ).toBe('ERR_BAD_ARGUMENT');
    });
  }

  it("pairs durability 'replicated' with the replication option, and only with it", async () => {
    expect(await rejectionCode(open(await directory(), { durability: 'sync', replication: valid }))).toBe(
      'ERR_BAD_ARGUMENT',
    );
    expect(await rejectionCode(open(await directory(), { durability: 'replicated' }))).toBe(
      'ERR_BAD_ARGUMENT',
    );
    expect(
      await rejectionCode(openReplica(await directory(), unchecked<Parameters<typeof openReplica>[1]>({}))),
    ).toBe('ERR_BAD_ARGUMENT');
  });
});
