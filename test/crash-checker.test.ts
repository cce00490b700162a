/**
 * The crash checker checked: a crash test that cannot fail proves nothing, so the recovered-state
 * check (test/crash/verify.ts) is fed states that a broken engine could produce, built by hand from
 * report lines, and must name each problem: a lost acknowledged put or delete, a torn value, a value
 * of another key, an intermediate entry of a batch, half a batch, a hole in a partition's log, a
 * rejected batch that shows. States a correct engine may produce (in-flight writes applied or not,
 * in order) must pass.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createPartitionRouter, type PartitionRouter } from '../src/main/partition-router.js';
import { checkRecoveredState } from './crash/check-state.js';
import { CrashModel, crashPartitions } from './crash/crash-model.js';
import { encodeValue, type H32, keyCount, keyName, loadH32, type ValueSpec } from './crash/workload.js';

let h32: H32;
let router: PartitionRouter;
/** Keys grouped by partition, to build batches and holes within one partition. */
let byPartition: number[][];

beforeAll(async () => {
  h32 = await loadH32();
  router = await createPartitionRouter(crashPartitions);
  byPartition = Array.from({ length: crashPartitions }, () => []);
  for (let key = 0; key < keyCount; key++)
    byPartition[router.partitionOf(Buffer.from(keyName(key)))]!.push(key);
});

const gen = 1;

function model(lines: readonly string[]): CrashModel {
  const m = new CrashModel();
  m.beginRun(gen);
  for (const line of ['O', 'R', ...lines]) m.applyLine(line);
  return m;
}

function value(key: number, seq: number, length: number, entry = 0): Buffer {
  const spec: ValueSpec = { key, gen, seq, entry, length };
  return encodeValue(h32, spec);
}

/** A state where every key is absent except those given. */
function state(values: Record<number, Buffer | undefined>): (Buffer | undefined)[] {
  return Array.from({ length: keyCount }, (_, key) => values[key]);
}

function problems(m: CrashModel, observed: (Buffer | undefined)[]): string[] {
  return checkRecoveredState(m, observed, router, h32).problems;
}

describe('the crash checker', () => {
  it('accepts acknowledged writes with in-flight writes applied or not, in order', () => {
    const [a, b, c] = byPartition[0]!;
    const m = model([
      `I 1 p ${a}.100`,
      'A 1',
      `I 2 p ${b}.0`,
      'A 2',
      `I 3 p ${a}.5000`,
      `I 4 d ${b}.d`,
      `I 5 p ${c}.20`,
    ]);
    // Nothing in flight applied, the first in flight applied, the first two, all three.
    expect(problems(m, state({ [a!]: value(a!, 1, 100), [b!]: value(b!, 2, 0) }))).toEqual([]);
    expect(problems(m, state({ [a!]: value(a!, 3, 5000), [b!]: value(b!, 2, 0) }))).toEqual([]);
    expect(problems(m, state({ [a!]: value(a!, 3, 5000) }))).toEqual([]);
    const all = checkRecoveredState(
      m,
      state({ [a!]: value(a!, 3, 5000), [c!]: value(c!, 5, 20) }),
      router,
      h32,
    );
    expect(all.problems).toEqual([]);
    expect(all.stats).toMatchObject({ acked: 2, ackedVerified: 2, inFlight: 3, inFlightApplied: 3 });
  });

  it('names a lost acknowledged put, delete and overwrite', () => {
    const [a, b] = byPartition[1]!;
    const m = model([
      `I 1 p ${a}.100`,
      `I 2 p ${b}.100`,
      'A 1',
      'A 2',
      `I 3 d ${a}.d`,
      `I 4 p ${b}.300`,
      'A 3',
      'A 4',
    ]);
    expect(problems(m, state({ [b!]: value(b!, 4, 300) }))).toEqual([]);
    expect(problems(m, state({ [a!]: value(a!, 1, 100), [b!]: value(b!, 4, 300) }))[0]).toMatch(
      new RegExp(`LOST ACKNOWLEDGED WRITE: key ${a} holds .* \\(an older state\\)`),
    );
    expect(problems(m, state({ [b!]: value(b!, 2, 100) }))[0]).toMatch(
      /LOST ACKNOWLEDGED WRITE: .*older state/,
    );
    expect(problems(m, state({}))[0]).toMatch(new RegExp(`LOST ACKNOWLEDGED WRITE: key ${b} is absent`));
  });

  it('names a torn value, a value of another key, and a headerless value that matches no write', () => {
    const [a, b] = byPartition[2]!;
    const m = model([`I 1 p ${a}.5000`, 'A 1', `I 2 p ${b}.10`, 'A 2']);
    const torn = value(a!, 1, 5000);
    torn[4000] = torn[4000]! ^ 1;
    expect(problems(m, state({ [a!]: torn, [b!]: value(b!, 2, 10) })).join('\n')).toMatch(/TORN: .*checksum/);
    expect(
      problems(m, state({ [a!]: value(a!, 1, 5000).subarray(0, 4000), [b!]: value(b!, 2, 10) })).join('\n'),
    ).toMatch(/TORN: .*claims 5000 bytes but 4000/);
    expect(problems(m, state({ [a!]: value(b!, 1, 5000), [b!]: value(b!, 2, 10) })).join('\n')).toMatch(
      /ANOTHER key/,
    );
    expect(problems(m, state({ [a!]: value(a!, 1, 5000), [b!]: value(b!, 2, 10, 1) })).join('\n')).toMatch(
      /bad value read back: a 10-byte value/,
    );
  });

  it('names an intermediate entry of a batch, half a batch, and a rejected batch that shows', () => {
    const [a, b] = byPartition[3]!;
    const other = byPartition[4]![0]!;
    const sameKey = model([`I 1 b ${a}.100,${a}.d,${a}.200`, 'A 1']);
    expect(problems(sameKey, state({ [a!]: value(a!, 1, 100, 0) })).join('\n')).toMatch(
      /INTERMEDIATE entry of batch 1/,
    );
    expect(problems(sameKey, state({ [a!]: value(a!, 1, 200, 2) }))).toEqual([]);

    const pair = model([`I 1 b ${a}.100,${b}.d`, `I 2 p ${a}.1`, 'A 2']);
    // The batch is not acknowledged, but a later write of its partition is: so it must be in.
    const half = problems(pair, state({ [a!]: value(a!, 2, 1), [b!]: undefined }));
    expect(half).toEqual([]);
    const unacked = model([`I 1 p ${b}.50`, 'A 1', `I 2 b ${a}.100,${b}.d`]);
    expect(problems(unacked, state({ [b!]: value(b!, 1, 50) }))).toEqual([]);
    expect(problems(unacked, state({ [a!]: value(a!, 2, 100, 0) }))).toEqual([]);
    const broken = problems(unacked, state({ [a!]: value(a!, 2, 100, 0), [b!]: value(b!, 1, 50) })).join(
      '\n',
    );
    expect(broken).toMatch(/HALF A BATCH: batch 2/);
    expect(broken).toMatch(/NOT A PREFIX/);

    const rejected = model([`I 1 b ${a}.100,${other}.100`, 'X 1 ERR_NOT_SUPPORTED']);
    expect(problems(rejected, state({}))).toEqual([]);
    expect(problems(rejected, state({ [a!]: value(a!, 1, 100) })).join('\n')).toMatch(/REJECTED/);
    // A batch across partitions whose outcome the kill cut off must not show either.
    const cut = model([`I 1 b ${a}.100,${other}.100`]);
    expect(problems(cut, state({ [other]: value(other, 1, 100, 1) })).join('\n')).toMatch(/spans partitions/);
  });

  it('names a hole: a later write of a partition survived an earlier one that did not', () => {
    const [a, b, c] = byPartition[5]!;
    const m = model([`I 1 p ${a}.10`, 'A 1', `I 2 p ${b}.30`, `I 3 p ${c}.40`]);
    expect(problems(m, state({ [a!]: value(a!, 1, 10), [b!]: value(b!, 2, 30) }))).toEqual([]);
    expect(problems(m, state({ [a!]: value(a!, 1, 10), [c!]: value(c!, 3, 40) })).join('\n')).toMatch(
      /NOT A PREFIX/,
    );
    // Across partitions there is no order to keep.
    const d = byPartition[6]![0]!;
    const two = model([`I 1 p ${a}.10`, `I 2 p ${d}.30`]);
    expect(problems(two, state({ [d]: value(d, 2, 30) }))).toEqual([]);
  });

  it('checks against the baseline of the previous verification', () => {
    const [a] = byPartition[7]!;
    const m = model([`I 1 p ${a}.10`, 'A 1']);
    const first = checkRecoveredState(m, state({ [a!]: value(a!, 1, 10) }), router, h32);
    expect(first.problems).toEqual([]);
    first.found.forEach((version, key) => {
      m.baseline[key] = version;
    });
    m.beginRun(3);
    for (const line of ['O', 'R', `I 1 d ${a}.d`]) m.applyLine(line);
    expect(problems(m, state({ [a!]: value(a!, 1, 10) }))).toEqual([]);
    expect(problems(m, state({}))).toEqual([]);
    m.beginRun(5);
    m.applyLine('R');
    expect(problems(m, state({}))[0]).toMatch(/LOST ACKNOWLEDGED WRITE: .*verified baseline/);
  });
});
