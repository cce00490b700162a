/**
 * Property test of db.transaction() against a serial model (fast-check, seeded). A transaction is a
 * random program of gets, puts, deletes, ranges (bounds, reverse, limit) and yields to the event loop
 * over ten keys spread across partitions; some end by throwing.
 *
 * Sequentially, every read must return what the model (the committed state plus the transaction's own
 * writes) says, a throwing transaction must reject with its error and change nothing, and the database
 * must equal the model afterwards. In concurrent groups of two to four (default 'serializable'), some
 * serial order of the committed transactions must explain every read each of them made on its
 * committing attempt and the final state: the definition of serializability, checked by trying every
 * order of the group.
 *
 * Each run of the property uses fresh keys (a new prefix), so runs and shrinking never see each
 * other's data. Reproduce a failure with LIGHTNING_SEED=<seed in the test name> (fast-check also prints
 * its seed and path).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { codeOf, within } from './support/async.js';
import { seedFromEnv } from './support/seeded-random.js';

type Database = Awaited<ReturnType<typeof open>>;
type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];

const seed = seedFromEnv(0x7a_0d_e1) | 0;
const keyCount = 10;
const partitions = 4;
/**
 * The share of transactions able to commit that must commit in the concurrent property. One gives up
 * only after 17 conflicts in a row, in groups of at most four; every measured run (quiet or beside a
 * CPU burner) committed all of them, about 1.6 attempts each, so nine in ten leaves a wide margin.
 */
const minimumCommitShare = 0.9;

type Op =
  | { kind: 'get'; key: number }
  | { kind: 'put'; key: number }
  | { kind: 'del'; key: number }
  | { kind: 'range'; from: number; to: number; reverse: boolean; limit: number | undefined }
  | { kind: 'yield' };

interface Program {
  ops: Op[];
  throws: boolean;
}

const keyArb = fc.integer({ min: 0, max: keyCount - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('del' as const), key: keyArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('range' as const),
      from: fc.integer({ min: 0, max: keyCount - 1 }),
      to: fc.integer({ min: 1, max: keyCount }),
      reverse: fc.boolean(),
      limit: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'yield' as const }) },
);
const programArb: fc.Arbitrary<Program> = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 8 }),
  // About one transaction in six ends by throwing.
  throws: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
});

class Thrown extends Error {}

/** The state of the test's keys: key index -> value. */
type State = Map<number, string>;

let db: Database;
let dir: string;
let runs = 0;
/** Calls of transaction functions: a retried transaction calls its function again. */
let attempts = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ldb-tx-model-'));
  db = await open(dir, { partitions, workers: 2, durability: 'none' });
});

afterAll(async () => {
  await within(db.close(), 10_000, 'db.close()');
  rmSync(dir, { recursive: true, force: true });
});

/** Key `key` of a run: one letter after 'k', so names sort like their indexes and 'kk' bounds them all. */
function keyName(prefix: string, key: number): string {
  return `${prefix}k${String.fromCharCode(0x61 + key)}`;
}

function keyIndex(name: Buffer): number {
  return name[name.length - 1]! - 0x61;
}

/** The value transaction `t` puts with op `o`: unique, so a read names the write it saw. */
function writtenValue(t: number, o: number): string {
  return `t${t}.o${o}`;
}

function describeRange(op: Extract<Op, { kind: 'range' }>, entries: Array<[number, string]>): string {
  const body = entries.map(([key, value]) => `k${key}=${value}`).join(',');
  return `range[k${op.from},k${op.to})${op.reverse ? ' reverse' : ''}${op.limit === undefined ? '' : ` limit ${op.limit}`}: ${body}`;
}

/** Runs program `t` in the model over `state`: what it reads, and the writes it would commit. */
function runModel(
  state: State,
  program: Program,
  t: number,
): { reads: string[]; writes: Map<number, string | null> } {
  const writes = new Map<number, string | null>();
  const reads: string[] = [];
  const read = (key: number): string | undefined => {
    if (writes.has(key)) return writes.get(key) ?? undefined;
    return state.get(key);
  };
  program.ops.forEach((op, o) => {
    switch (op.kind) {
      case 'get':
        reads.push(`get k${op.key}=${read(op.key) ?? '-'}`);
        break;
      case 'put':
        writes.set(op.key, writtenValue(t, o));
        break;
      case 'del':
        writes.set(op.key, null);
        break;
      case 'range': {
        let entries: Array<[number, string]> = [];
        for (let key = op.from; key < op.to; key++) {
          const value = read(key);
          if (value !== undefined) entries.push([key, value]);
        }
        if (op.reverse) entries.reverse();
        if (op.limit !== undefined) entries = entries.slice(0, op.limit);
        reads.push(describeRange(op, entries));
        break;
      }
      case 'yield':
        break;
    }
  });
  return { reads, writes };
}

function apply(state: State, writes: Map<number, string | null>): State {
  const next = new Map(state);
  for (const [key, value] of writes) {
    if (value === null) next.delete(key);
    else next.set(key, value);
  }
  return next;
}

/** Runs program `t` as a transaction; resolves with the reads of its committing attempt. */
function runTransaction(prefix: string, program: Program, t: number): Promise<string[]> {
  return db.transaction(async (tx: Transaction) => {
    attempts++;
    const reads: string[] = [];
    for (let o = 0; o < program.ops.length; o++) {
      const op = program.ops[o]!;
      switch (op.kind) {
        case 'get':
          reads.push(`get k${op.key}=${tx.getString(keyName(prefix, op.key)) ?? '-'}`);
          break;
        case 'put':
          tx.put(keyName(prefix, op.key), writtenValue(t, o));
          break;
        case 'del':
          tx.del(keyName(prefix, op.key));
          break;
        case 'range': {
          const entries: Array<[number, string]> = [];
          const options = {
            gte: keyName(prefix, op.from),
            lt: keyName(prefix, op.to),
            reverse: op.reverse,
            ...(op.limit === undefined ? {} : { limit: op.limit }),
          };
          for (const [key, value] of tx.range(options)) {
            entries.push([keyIndex(key), value.toString('utf8')]);
          }
          reads.push(describeRange(op, entries));
          break;
        }
        case 'yield':
          await new Promise((resolve) => setImmediate(resolve));
          break;
      }
    }
    if (program.throws) throw new Thrown(`transaction ${t} throws`);
    return reads;
  });
}

function stateOf(prefix: string): State {
  const state: State = new Map();
  for (const [key, value] of db.range({ gte: keyName(prefix, 0), lt: keyName(prefix, keyCount) })) {
    state.set(keyIndex(key), value.toString('utf8'));
  }
  return state;
}

function describeState(state: State): string {
  return [...state]
    .sort(([a], [b]) => a - b)
    .map(([key, value]) => `k${key}=${value}`)
    .join(' ');
}

function sameState(a: State, b: State): boolean {
  return describeState(a) === describeState(b);
}

function* permutations<T>(items: T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield items;
    return;
  }
  for (let i = 0; i < items.length; i++) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) yield [items[i]!, ...tail];
  }
}

describe(`transactions against a serial model (seed ${seed})`, () => {
  it(`sequential transactions read and write exactly as the model (seed ${seed})`, {
    timeout: 60_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(programArb, { minLength: 1, maxLength: 12 }), async (programs) => {
        const prefix = `seq${runs++}:`;
        let model: State = new Map();
        for (let t = 0; t < programs.length; t++) {
          const program = programs[t]!;
          const expected = runModel(model, program, t);
          const outcome = await runTransaction(prefix, program, t).then(
            (reads) => ({ reads, error: null as unknown }),
            (error: unknown) => ({ reads: null, error }),
          );
          if (program.throws) {
            expect(outcome.error, `transaction ${t}`).toBeInstanceOf(Thrown);
          } else {
            expect(outcome.error, `transaction ${t}`).toBeNull();
            expect(outcome.reads, `reads of transaction ${t}`).toEqual(expected.reads);
            model = apply(model, expected.writes);
          }
          expect(describeState(stateOf(prefix)), `state after transaction ${t}`).toBe(describeState(model));
        }
      }),
      { seed, numRuns: 100, interruptAfterTimeLimit: 45_000 },
    );
  });

  it(`concurrent groups are serializable: some serial order explains every read and the state (seed ${seed})`, {
    timeout: 60_000,
  }, async () => {
    let conflictsExhausted = 0;
    let groupsRun = 0;
    /** Transactions that do not throw, so could commit, and those of them that did. */
    let couldCommit = 0;
    let commits = 0;
    const attemptsBefore = attempts;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(programArb, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        async (groups) => {
          const prefix = `conc${runs++}:`;
          let model: State = new Map();
          let t = 0;
          for (const group of groups) {
            groupsRun++;
            const numbered = group.map((program) => ({ program, t: t++ }));
            const settled = await within(
              Promise.allSettled(numbered.map(({ program, t: n }) => runTransaction(prefix, program, n))),
              20_000,
              'a group of transactions',
            );
            const committed: Array<{ program: Program; t: number; reads: string[] }> = [];
            settled.forEach((outcome, i) => {
              const { program, t: n } = numbered[i]!;
              if (outcome.status === 'fulfilled') {
                expect(program.throws, `transaction ${n} throws, yet it committed`).toBe(false);
                committed.push({ program, t: n, reads: outcome.value });
              } else if (outcome.reason instanceof Thrown) {
                expect(program.throws).toBe(true);
              } else {
                // Giving up after the default 16 retries is allowed, but never anything else.
                expect(codeOf(outcome.reason), `transaction ${n}`).toBe('ERR_TX_CONFLICT');
                conflictsExhausted++;
              }
            });
            const willing = group.filter((program) => !program.throws).length;
            couldCommit += willing;
            commits += committed.length;
            // Conflicts are decided in favour of a transaction that commits: one that gives up lost to
            // another, so a group cannot lose them all.
            if (willing > 0) {
              expect(committed.length, `commits of a group of ${willing} that could commit`).toBeGreaterThan(
                0,
              );
            }
            const actual = stateOf(prefix);
            let explained: State | null = null;
            const tried: string[] = [];
            for (const order of permutations(committed)) {
              let state = model;
              let ok = true;
              for (const { program, t: n, reads } of order) {
                const expected = runModel(state, program, n);
                if (JSON.stringify(expected.reads) !== JSON.stringify(reads)) {
                  ok = false;
                  break;
                }
                state = apply(state, expected.writes);
              }
              if (ok && sameState(state, actual)) {
                explained = state;
                break;
              }
              tried.push(order.map(({ t: n }) => n).join(','));
            }
            if (explained === null) {
              const detail = committed.map(
                ({ program, t: n, reads }) =>
                  `  t${n}: ${JSON.stringify(program.ops)}\n    read ${JSON.stringify(reads)}`,
              );
              expect.fail(
                `no serial order of the committed transactions explains what they read and the state\n` +
                  `before the group: ${describeState(model)}\nafter: ${describeState(actual)}\n` +
                  `orders tried: ${tried.join(' | ')}\n${detail.join('\n')}`,
              );
            }
            model = explained;
          }
        },
      ),
      { seed: seed ^ 0x5a5a, numRuns: 100, interruptAfterTimeLimit: 45_000 },
    );
    console.log(
      `tx-model: seed ${seed}: ${groupsRun} concurrent groups, ${commits} of ${couldCommit} transactions that ` +
        `could commit did, ${conflictsExhausted} gave up on conflicts, ` +
        `${attempts - attemptsBefore} attempts in all`,
    );
    expect(couldCommit).toBeGreaterThan(0);
    expect(commits / couldCommit, `${commits} of ${couldCommit} committed`).toBeGreaterThanOrEqual(
      minimumCommitShare,
    );
  });
});
