/**
 * retryWhileElecting: the servers' errors (bare, or wrapped as ERR_REPLICATION) are retried until the
 * time runs out; the engine's own verdicts are not. Counted in attempts, never timed.
 */
import { describe, expect, it } from 'vitest';
import { replicationError } from '../src/replication/nats-errors.js';
import { retryWhileElecting } from '../src/replication/while-electing.js';
import { LightningError } from '../src/shared-memory/errors.js';

function failing(failures: unknown[]): { attempt: () => Promise<string>; attempts: () => number } {
  let attempts = 0;
  return {
    attempt: async () => {
      const failure = failures[attempts++];
      if (failure !== undefined) throw failure;
      return 'done';
    },
    attempts: () => attempts,
  };
}

describe('retryWhileElecting', () => {
  it('retries the servers errors, bare or wrapped, until the attempt succeeds', async () => {
    const run = failing([
      new Error('TimeoutError: timeout'),
      replicationError('creating log stream', new Error('503')),
    ]);
    expect(await retryWhileElecting('opening', run.attempt, 60_000)).toBe('done');
    expect(run.attempts()).toBe(3);
  });

  it('does not retry the engine own verdicts', async () => {
    const verdict = new LightningError(
      'ERR_REPLICATION',
      'log stream X has 1 replicas; this database asks for 3',
    );
    const run = failing([verdict]);
    await expect(retryWhileElecting('opening', run.attempt, 60_000)).rejects.toBe(verdict);
    expect(run.attempts()).toBe(1);
    const wrapsOwn = replicationError('opening', new LightningError('ERR_CORRUPTION', 'broken chain'));
    const second = failing([wrapsOwn]);
    await expect(retryWhileElecting('opening', second.attempt, 60_000)).rejects.toBe(wrapsOwn);
    expect(second.attempts()).toBe(1);
  });

  it('gives up once the time is out, as ERR_REPLICATION naming what it did and how often', async () => {
    const run = failing([new Error('TimeoutError: timeout'), new Error('TimeoutError: timeout')]);
    await expect(retryWhileElecting('opening log X', run.attempt, 0)).rejects.toMatchObject({
      code: 'ERR_REPLICATION',
      message: expect.stringContaining('opening log X (1 attempts)'),
    });
    expect(run.attempts()).toBe(1);
  });
});
