import { describe, expect, it } from 'vitest';
import {
  fnvHash64Decimal,
  fnvHash64Mod,
  randomDoubles,
  ScrambledZipfianGenerator,
  SkewedLatestGenerator,
  UniformGenerator,
  ZipfianGenerator,
  zeta,
  zipfianConstant,
} from '../bench/ycsb/generators.js';
import { keyBytes, keyName } from '../bench/ycsb/keys.js';
import {
  loadStream,
  opInsert,
  opNames,
  opRead,
  opReadModifyWrite,
  opScan,
  opUpdate,
  type RunState,
  scanLengthMax,
  workloadSpecs,
  workloadStream,
} from '../bench/ycsb/workloads.js';

const seed = 0x5eed;

/** YCSB's Utils.fnvhash64 on 64-bit integers, written plainly with BigInt as the reference. */
function fnvReference(value: bigint): bigint {
  const mask = (1n << 64n) - 1n;
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < 8; i++) {
    hash ^= value & 0xffn;
    value >>= 8n;
    hash = (hash * 1099511628211n) & mask;
  }
  return hash >= 1n << 63n ? (1n << 64n) - hash : hash;
}

function frequencies(draw: () => number, items: number, draws: number): Float64Array {
  const counts = new Float64Array(items);
  for (let i = 0; i < draws; i++) counts[draw()]++;
  return counts;
}

function hottest(counts: Float64Array, n: number): number[] {
  return [...counts.keys()].sort((a, b) => counts[b]! - counts[a]!).slice(0, n);
}

describe('fnvhash64 as YCSB computes it', () => {
  it('matches a BigInt reference, in decimal and modulo the item count', () => {
    const values = [
      0,
      1,
      2,
      255,
      256,
      65_535,
      999_999,
      123_456_789,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 40 + 5,
      2 ** 52 + 3,
    ];
    for (const value of values) {
      const expected = fnvReference(BigInt(value));
      expect(fnvHash64Decimal(value), `value ${value}`).toBe(expected.toString());
      for (const n of [7, 1000, 1_000_003, 2 ** 31 - 1, 4_294_967_291]) {
        expect(fnvHash64Mod(value, n), `value ${value} mod ${n}`).toBe(Number(expected % BigInt(n)));
      }
    }
  });

  it('names keys "user" + the 19-digit zero-padded hash', () => {
    expect(keyName(0)).toBe(`user${fnvReference(0n).toString().padStart(19, '0')}`);
    for (let k = 0; k < 1000; k++) expect(keyName(k)).toMatch(/^user\d{19}$/);
    expect(keyName(5).length).toBe(keyBytes);
  });
});

describe('zipfian generators (seed 0x5eed)', () => {
  const items = 1000;
  const draws = 200_000;

  it('draws rank 0 and rank 1 as often as zipf(0.99) says', () => {
    const generator = new ZipfianGenerator(items, randomDoubles(seed));
    const observed = frequencies(() => generator.next(), items, draws);
    const zetan = zeta(items, zipfianConstant);
    for (const rank of [0, 1]) {
      const p = 1 / (rank + 1) ** zipfianConstant / zetan;
      const sigma = Math.sqrt(draws * p * (1 - p));
      expect(Math.abs(observed[rank]! - draws * p), `rank ${rank}`).toBeLessThan(4 * sigma);
    }
    // The closed form is approximate past rank 1, but the shape must still fall off with rank.
    expect(observed[2]!).toBeGreaterThan(observed[20]!);
    expect(observed[20]!).toBeGreaterThan(observed[500]!);
  });

  it('scrambled: the most popular item is drawn as often as the ranks hashing to it predict', () => {
    const generator = new ScrambledZipfianGenerator(items, randomDoubles(seed));
    const observed = frequencies(() => generator.next(), items, draws);
    const top = hottest(observed, 1)[0]!;
    // Item `top` collects every rank r with fnvhash64(r) % items === top.
    const zetan = zeta(items, zipfianConstant);
    let p = 0;
    for (let rank = 0; rank < items; rank++) {
      if (fnvHash64Mod(rank, items) === top) p += 1 / (rank + 1) ** zipfianConstant / zetan;
    }
    expect(top).toBe(fnvHash64Mod(0, items));
    expect(Math.abs(observed[top]! / draws - p) / p).toBeLessThan(0.05);
  });

  it('scrambled: spreads the hot items over the key space instead of its start', () => {
    const plain = new ZipfianGenerator(items, randomDoubles(seed));
    const scrambled = new ScrambledZipfianGenerator(items, randomDoubles(seed));
    const plainTop = hottest(
      frequencies(() => plain.next(), items, draws),
      10,
    );
    const scrambledTop = hottest(
      frequencies(() => scrambled.next(), items, draws),
      10,
    );
    expect(Math.max(...plainTop)).toBeLessThan(15);
    expect(scrambledTop.filter((item) => item < 15).length).toBeLessThanOrEqual(2);
    expect(Math.max(...scrambledTop) - Math.min(...scrambledTop)).toBeGreaterThan(items / 2);
    // Still skewed: the hottest 1% of the items get a large share of the draws.
    const counts = frequencies(() => scrambled.next(), items, draws);
    const share = hottest(counts, items / 100).reduce((sum, item) => sum + counts[item]!, 0) / draws;
    expect(share).toBeGreaterThan(0.3);
  });

  it('is deterministic for a seed, and a different seed gives a different sequence', () => {
    const sequence = (s: number): number[] => {
      const generator = new ScrambledZipfianGenerator(1_000_000, randomDoubles(s));
      return Array.from({ length: 5000 }, () => generator.next());
    };
    expect(sequence(seed)).toEqual(sequence(seed));
    expect(sequence(seed)).not.toEqual(sequence(seed + 1));
  });

  it("'latest' favours the newest key, and keeps favouring it as keys are inserted", () => {
    let latest = 9999;
    const generator = new SkewedLatestGenerator(latest, randomDoubles(seed));
    const ages = new Float64Array(latest + 5001);
    let outOfRange = 0;
    for (let i = 0; i < draws; i++) {
      if (i % 40 === 0) latest++;
      const key = generator.next(latest);
      if (key > latest || key < 0) outOfRange++;
      else ages[latest - key]++;
    }
    expect(outOfRange).toBe(0);
    expect(hottest(ages, 1)[0]).toBe(0);
    expect(ages[0]! / draws).toBeGreaterThan(0.5 / zeta(latest, zipfianConstant));
    const newestPercent = ages.slice(0, 100).reduce((sum, count) => sum + count, 0) / draws;
    expect(newestPercent).toBeGreaterThan(0.5);
    expect(ages[1]!).toBeGreaterThan(ages[50]!);
  });

  it('uniform covers its range evenly', () => {
    const generator = new UniformGenerator(1, scanLengthMax, randomDoubles(seed));
    const counts = frequencies(() => generator.next(), scanLengthMax + 1, draws);
    expect(counts[0]).toBe(0);
    const expected = draws / scanLengthMax;
    for (let length = 1; length <= scanLengthMax; length++) {
      expect(Math.abs(counts[length]! - expected)).toBeLessThan(5 * Math.sqrt(expected));
    }
  });
});

describe('workload streams', () => {
  const records = 10_000;
  const operations = 40_000;
  const windowSize = 100;

  function freshState(): RunState {
    const state: RunState = { keyCount: 0, windowSeq: 0 };
    loadStream(records, windowSize, state);
    return state;
  }

  it('mixes operations in the proportions of YCSB A-F', () => {
    // From YCSB's workloads/workloada..f, written out here rather than read from the specs under test.
    const ycsb: Record<string, Partial<Record<(typeof opNames)[number], number>>> = {
      A: { read: 0.5, update: 0.5 },
      B: { read: 0.95, update: 0.05 },
      C: { read: 1 },
      D: { read: 0.95, insert: 0.05 },
      E: { scan: 0.95, insert: 0.05 },
      F: { read: 0.5, rmw: 0.5 },
    };
    for (const spec of Object.values(workloadSpecs)) {
      const stream = workloadStream(spec, operations, windowSize, freshState(), seed);
      for (const name of opNames) {
        const share = stream.counts[name] / operations;
        expect(Math.abs(share - (ycsb[spec.name]![name] ?? 0)), `${spec.name} ${name}`).toBeLessThan(0.015);
      }
      const counted = stream.ops.reduce((sum, op) => sum + (op === opRead ? 1 : 0), 0);
      expect(counted).toBe(stream.counts.read);
    }
  });

  it('reads only keys acknowledged before the window, and inserts new key numbers in order', () => {
    for (const name of ['D', 'E'] as const) {
      const state = freshState();
      const stream = workloadStream(workloadSpecs[name], operations, windowSize, state, seed);
      let keyCount = records;
      let nextInsert = records;
      const wrong: string[] = [];
      for (let from = 0; from < operations; from += windowSize) {
        let inserted = 0;
        for (let i = from; i < from + windowSize; i++) {
          const key = stream.keys[i]!;
          if (stream.ops[i] === opInsert) {
            if (key !== nextInsert++) wrong.push(`op ${i} inserts ${key}`);
            inserted++;
          } else if (key >= keyCount) {
            wrong.push(`op ${i} uses key ${key}, not acknowledged (${keyCount} keys)`);
          }
          const length = stream.scanLengths[i]!;
          if (stream.ops[i] === opScan && (length < 1 || length > scanLengthMax))
            wrong.push(`op ${i} scans ${length}`);
        }
        keyCount += inserted;
      }
      expect(wrong.slice(0, 5), name).toEqual([]);
      expect(state.keyCount).toBe(keyCount);
      expect(keyCount).toBeGreaterThan(records);
    }
  });

  it("'latest' reads in D go mostly to recent inserts", () => {
    const stream = workloadStream(workloadSpecs.D, operations, windowSize, freshState(), seed);
    let recent = 0;
    for (let i = 0; i < operations; i++) {
      if (stream.ops[i] === opRead && stream.keys[i]! >= records - 100) recent++;
    }
    expect(recent / stream.counts.read).toBeGreaterThan(0.5);
  });

  it('marks a read unstable exactly when another operation of its window writes its key', () => {
    for (const name of ['A', 'B', 'F'] as const) {
      const stream = workloadStream(workloadSpecs[name], operations, windowSize, freshState(), seed);
      let unstable = 0;
      const wrong: string[] = [];
      for (let from = 0; from < operations; from += windowSize) {
        for (let i = from; i < from + windowSize; i++) {
          const op = stream.ops[i];
          if (op !== opRead && op !== opReadModifyWrite) continue;
          let otherWriters = 0;
          for (let j = from; j < from + windowSize; j++) {
            const writes = stream.ops[j] === opUpdate || stream.ops[j] === opReadModifyWrite;
            if (j !== i && writes && stream.keys[j] === stream.keys[i]) otherWriters++;
          }
          if (stream.stable[i] !== (otherWriters === 0 ? 1 : 0)) wrong.push(`${name} op ${i}`);
          unstable += otherWriters === 0 ? 0 : 1;
        }
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      // Zipfian hot keys do collide within a window: the check must have had cases of both kinds.
      expect(unstable).toBeGreaterThan(0);
    }
  });

  it('generates the same stream for the same seed and state', () => {
    const first = workloadStream(workloadSpecs.E, operations, windowSize, freshState(), seed);
    const second = workloadStream(workloadSpecs.E, operations, windowSize, freshState(), seed);
    expect(Buffer.from(second.ops).equals(Buffer.from(first.ops))).toBe(true);
    expect(Buffer.from(second.keys.buffer).equals(Buffer.from(first.keys.buffer))).toBe(true);
    expect(Buffer.from(second.scanLengths).equals(Buffer.from(first.scanLengths))).toBe(true);
  });
});
