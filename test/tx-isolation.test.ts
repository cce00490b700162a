/**
 * Isolation of db.transaction(): write skew is prevented under 'serializable' and allowed under
 * 'snapshot' (keys in one partition and in two); a lost update is prevented under both; a transaction
 * reads its own writes through get and range and nobody else sees them before commit; an error thrown
 * by the body aborts with nothing applied and no retry; a conflict that outlasts `retries` rejects with
 * ERR_TX_CONFLICT after exactly retries + 1 attempts; and stats().transactions counts all of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { codeOf, within } from './support/async.js';
import { type KeyPicker, keyPicker } from './support/tx-keys.js';

type Database = Awaited<ReturnType<typeof open>>;
type Isolation = NonNullable<Parameters<Database['transaction']>[1]>['isolation'];

const partitions = 8;
let db: Database;
let dir: string;
let keys: KeyPicker;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ldb-tx-isolation-'));
  db = await open(dir, { partitions, workers: 2, durability: 'none' });
  keys = await keyPicker(partitions);
});

afterAll(async () => {
  await within(db.close(), 10_000, 'db.close()');
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves every arrival once `parties` have arrived. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let release: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    release = resolve;
  });
  return () => {
    if (++arrived === parties) release();
    return within(all, 5000, 'the other transaction never reached the barrier');
  };
}

class InsufficientFunds extends Error {}

function deltaOf(before: ReturnType<Database['stats']>['transactions']) {
  const now = db.stats().transactions;
  return {
    commits: now.commits - before.commits,
    conflicts: now.conflicts - before.conflicts,
    retries: now.retries - before.retries,
    failed: now.failed - before.failed,
    crossPartitionCommits: now.crossPartitionCommits - before.crossPartitionCommits,
  };
}

/**
 * x = y = 50 and the rule x + y >= 0, checked inside each transaction. Two transactions each read
 * both, then withdraw 100 from a different one; the barrier makes both read before either commits.
 */
async function writeSkew(
  x: string,
  y: string,
  isolation: Isolation,
  retries: number | undefined,
): Promise<{ outcomes: PromiseSettledResult<string>[]; attempts: number[][]; x: number; y: number }> {
  // Two plain puts, not one cross-partition batch: a batch resolves once its decision is durable,
  // while a participant may still hold its intent for a moment, which a 'snapshot' transaction with
  // no retries writing that key would meet as a conflict. A plain put is applied before it resolves,
  // after any earlier transaction's locks on its key are released.
  await db.put(x, '50');
  await db.put(y, '50');
  const arrive = barrier(2);
  const attempts: number[][] = [[], []];
  const withdraw = (account: string, who: number): Promise<string> =>
    db.transaction(
      async (tx) => {
        attempts[who]!.push(tx.attempt);
        const sum = Number(tx.getString(x)) + Number(tx.getString(y));
        if (tx.attempt === 0) await arrive();
        if (sum - 100 < 0) throw new InsufficientFunds(`${account}: x + y = ${sum}`);
        tx.put(account, String(Number(tx.getString(account)) - 100));
        return account;
      },
      { ...(isolation === undefined ? {} : { isolation }), ...(retries === undefined ? {} : { retries }) },
    );
  const outcomes = await within(
    Promise.allSettled([withdraw(x, 0), withdraw(y, 1)]),
    10_000,
    'the two withdrawals',
  );
  return { outcomes, attempts, x: Number(db.getString(x)), y: Number(db.getString(y)) };
}

describe.each([
  ['in one partition', () => keys.samePartition('skew-same:', 2)],
  ['in two partitions', () => keys.differentPartitions('skew-apart:', 2)],
])('write skew, accounts %s', (_, pick) => {
  it("'serializable' (the default): exactly one withdrawal commits; the other retries and sees the rule fail", async () => {
    const [x, y] = pick() as [string, string];
    const before = db.stats().transactions;
    const { outcomes, attempts, x: xAfter, y: yAfter } = await writeSkew(x, y, undefined, undefined);
    const fulfilled = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const rejected = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    expect(
      fulfilled,
      `outcomes ${JSON.stringify(outcomes)} attempts ${JSON.stringify(attempts)}`,
    ).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    expect(rejected[0], 'the loser fails on the rule, not on a conflict').toBeInstanceOf(InsufficientFunds);
    expect(xAfter + yAfter).toBe(0);
    // The loser ran again after the winner committed: that retry is what saw the rule fail.
    const loser = outcomes[0]!.status === 'rejected' ? 0 : 1;
    expect(attempts[loser]!.at(-1)).toBeGreaterThanOrEqual(1);
    const delta = deltaOf(before);
    expect(delta.conflicts).toBeGreaterThanOrEqual(1);
    expect(delta.retries).toBe(attempts[0]!.length - 1 + attempts[1]!.length - 1);
  });

  it("'snapshot' with retries 0: both withdrawals commit and the rule is broken (x + y < 0)", async () => {
    const [x, y] = pick() as [string, string];
    const { outcomes, attempts, x: xAfter, y: yAfter } = await writeSkew(x, y, 'snapshot', 0);
    expect(
      outcomes.map((outcome) => outcome.status),
      JSON.stringify(outcomes),
    ).toEqual(['fulfilled', 'fulfilled']);
    expect(attempts).toEqual([[0], [0]]);
    expect([xAfter, yAfter]).toEqual([-50, -50]);
  });
});

describe.each([
  ['in one partition', () => keys.samePartition('conflict-same:', 2)],
  ['in two partitions', () => keys.differentPartitions('conflict-apart:', 2)],
])('conflicts, keys %s', (_, pick) => {
  it("'serializable', retries 0: a key read, then written by another commit, rejects with ERR_TX_CONFLICT", async () => {
    const [read, written] = pick() as [string, string];
    await db.put(read, 'r0');
    await db.put(written, 'w0');
    const before = db.stats().transactions;
    let runs = 0;
    const result = db.transaction(
      async (tx) => {
        runs++;
        expect(tx.getString(read)).toBe('r0');
        await db.put(read, 'r1');
        tx.put(written, 'w1');
      },
      { retries: 0 },
    );
    const error = await result.then(
      () => null,
      (reason: unknown) => reason,
    );
    expect(codeOf(error)).toBe('ERR_TX_CONFLICT');
    expect(runs).toBe(1);
    expect(db.getString(written), 'nothing of the failed transaction is applied').toBe('w0');
    expect(deltaOf(before)).toMatchObject({ commits: 0, conflicts: 1, retries: 0, failed: 1 });
  });

  it('a conflict on every attempt: retries + 1 attempts, then ERR_TX_CONFLICT', async () => {
    const [read, written] = pick() as [string, string];
    await db.put(read, 'x');
    await db.put(written, 'untouched');
    const before = db.stats().transactions;
    const attempts: number[] = [];
    const error = await db
      .transaction(
        async (tx) => {
          attempts.push(tx.attempt);
          tx.get(read);
          await db.put(read, `x${attempts.length}`);
          tx.put(written, `attempt ${tx.attempt}`);
        },
        { retries: 3 },
      )
      .then(
        () => null,
        (reason: unknown) => reason,
      );
    expect(codeOf(error)).toBe('ERR_TX_CONFLICT');
    expect(attempts).toEqual([0, 1, 2, 3]);
    expect(db.getString(written), 'nothing of the failed attempts is applied').toBe('untouched');
    expect(deltaOf(before)).toMatchObject({ commits: 0, conflicts: 4, retries: 3, failed: 1 });
  });

  it('a conflict that goes away: the retry commits, with what the retry read', async () => {
    const [read, written] = pick() as [string, string];
    await db.put(read, '1');
    const before = db.stats().transactions;
    const attempts: number[] = [];
    const result = await db.transaction(async (tx) => {
      attempts.push(tx.attempt);
      const seen = tx.getString(read);
      if (tx.attempt === 0) await db.put(read, '2');
      tx.put(written, `saw ${seen}`);
      return seen;
    });
    expect(attempts).toEqual([0, 1]);
    expect(result).toBe('2');
    expect(db.getString(written)).toBe('saw 2');
    expect(deltaOf(before)).toMatchObject({ commits: 1, conflicts: 1, retries: 1, failed: 0 });
  });

  it("'snapshot', retries 0: a lost update is still prevented (first committer wins)", async () => {
    const [key] = pick() as [string, string];
    await db.put(key, '10');
    const error = await db
      .transaction(
        async (tx) => {
          const value = Number(tx.getString(key));
          await db.put(key, '100');
          tx.put(key, String(value + 1));
        },
        { isolation: 'snapshot', retries: 0 },
      )
      .then(
        () => null,
        (reason: unknown) => reason,
      );
    expect(codeOf(error)).toBe('ERR_TX_CONFLICT');
    expect(db.getString(key)).toBe('100');
  });
});

describe('inside a transaction', () => {
  it('reads its own puts and deletes through get and range; nobody else sees them before commit', async () => {
    const name = (i: number): string => `own:${i.toString().padStart(2, '0')}`;
    const initial = new Map<string, string>();
    for (let i = 0; i < 20; i++) initial.set(name(i), `old${i}`);
    await db.batch([...initial].map(([key, value]) => ({ type: 'put' as const, key, value })));
    expect(
      new Set([...initial.keys()].map(keys.partitionOf)).size,
      'keys in several partitions',
    ).toBeGreaterThan(3);

    const expected = new Map(initial);
    const sorted = (): Array<[string, string]> =>
      [...expected].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const text = (entries: Iterable<[Buffer, Buffer]>): Array<[string, string]> =>
      [...entries].map(([k, v]) => [k.toString('utf8'), v.toString('utf8')]);

    await db.transaction((tx) => {
      expect(tx.getString(name(5))).toBe('old5');
      tx.put(name(5), 'new5');
      tx.del(name(7));
      tx.put(name(25), 'added25');
      tx.put(name(30), 'gone');
      tx.del(name(30));
      tx.del(name(9));
      tx.put(name(9), 'back9');
      tx.put(name(0), new Uint8Array([0xff, 0x00]));
      expected.set(name(5), 'new5');
      expected.delete(name(7));
      expected.set(name(25), 'added25');
      expected.set(name(9), 'back9');
      expected.set(name(0), Buffer.from([0xff, 0x00]).toString('utf8'));

      expect(tx.getString(name(5))).toBe('new5');
      expect(tx.get(name(7))).toBeUndefined();
      expect(tx.getString(name(25))).toBe('added25');
      expect(tx.get(name(30))).toBeUndefined();
      expect(tx.getString(name(9))).toBe('back9');
      expect(tx.get(name(0))).toEqual(Buffer.from([0xff, 0x00]));
      expect(text(tx.range({ gte: 'own:', lt: 'own;' }))).toEqual(sorted());
      expect(text(tx.range({ gte: 'own:', lt: 'own;', reverse: true, limit: 4 }))).toEqual(
        sorted().reverse().slice(0, 4),
      );
      expect(text(tx.range({ gt: name(5), lte: name(25) }))).toEqual(
        sorted().filter(([k]) => k > name(5) && k <= name(25)),
      );
      // Outside the transaction nothing has changed yet.
      expect(db.getString(name(5))).toBe('old5');
      expect(db.getString(name(7))).toBe('old7');
      expect(db.get(name(25))).toBeUndefined();
    });
    expect(text(db.range({ gte: 'own:', lt: 'own;' }))).toEqual(sorted());
  });

  it('an error thrown by the body aborts: rejected with that error, no retry, nothing applied', async () => {
    const targets = keys.differentPartitions('abort:', 4);
    await db.batch(targets.map((key) => ({ type: 'put' as const, key, value: 'before' })));
    const boom = new Error('boom');
    let runs = 0;
    const sync = await db
      .transaction((tx) => {
        runs++;
        for (const key of targets) tx.put(key, 'after');
        throw boom;
      })
      .then(
        () => null,
        (reason: unknown) => reason,
      );
    expect(sync).toBe(boom);
    const later = new Error('later');
    const async = await db
      .transaction(async (tx) => {
        runs++;
        tx.del(targets[0]!);
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const key of targets) tx.put(key, 'after');
        throw later;
      })
      .then(
        () => null,
        (reason: unknown) => reason,
      );
    expect(async).toBe(later);
    expect(runs).toBe(2);
    expect(targets.map((key) => db.getString(key))).toEqual(targets.map(() => 'before'));
  });

  it('the resolved value is the body’s return value; a read-only transaction commits', async () => {
    await db.put('ro:1', 'one');
    expect(await db.transaction((tx) => tx.getString('ro:1'))).toBe('one');
    expect(await db.transaction(async (tx) => [tx.getString('ro:1'), tx.get('ro:none')])).toEqual([
      'one',
      undefined,
    ]);
  });
});

describe('plain writes after a cross-partition commit', () => {
  it.each([
    ['db.batch()', 'batch'],
    ['db.transaction()', 'transaction'],
  ])('once %s resolved, put and del of its keys succeed at once (no ERR_TX_CONFLICT)', async (_, how) => {
    const targets = keys.differentPartitions(`after-${how}:`, partitions);
    const rejected: string[] = [];
    for (let round = 0; round < 100; round++) {
      if (how === 'batch')
        await db.batch(targets.map((key) => ({ type: 'put' as const, key, value: `b${round}` })));
      else {
        await db.transaction((tx) => {
          for (const key of targets) tx.put(key, `t${round}`);
        });
      }
      // The commit has resolved: nothing of it is in flight any more, so these are ordinary writes.
      const writes = targets.map((key, i) => (i % 2 === 0 ? db.put(key, `p${round}`) : db.del(key)));
      const settled = await Promise.allSettled(writes);
      settled.forEach((outcome, i) => {
        if (outcome.status === 'rejected' && rejected.length < 5) {
          rejected.push(
            `round ${round} ${i % 2 === 0 ? 'put' : 'del'} ${targets[i]}: ${codeOf(outcome.reason)}`,
          );
        }
      });
    }
    expect(rejected).toEqual([]);
  });
});
