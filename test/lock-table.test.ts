/**
 * The owner's lock table: many prepared readers may hold one key, at most one writer, and the
 * decision of one transaction drops only its own holds. Fixed cases first (the lost read lock among
 * them), then seeded random sequences of locks and unlocks checked against a model that lists every
 * hold. Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { describe, expect, it } from 'vitest';
import type { KeyInterval } from '../src/shared-memory/tree/range-options.js';
import { LockTable } from '../src/workers/lock-table.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x1f83d9ab);
/** Status reference of a plain write: it holds nothing. */
const plainWrite = -1;
const read = false;
const write = true;

function key(name: string): Uint8Array {
  return Buffer.from(name);
}

function interval(lower: string, upper: string): KeyInterval {
  return { lower: key(lower), lowerInclusive: true, upper: key(upper), upperInclusive: false };
}

describe('LockTable: fixed cases', () => {
  it('keeps the read lock of a second reader when the first is decided', () => {
    const locks = new LockTable();
    const k = key('k');
    locks.lockKey(k, 1, read);
    locks.lockKey(k, 2, read);
    locks.unlock(1, [k]);
    expect(locks.blocksWrite(k, 3)).toBe(true);
    expect(locks.blocksWrite(k, plainWrite)).toBe(true);
    expect(locks.empty).toBe(false);
    locks.unlock(2, [k]);
    expect(locks.blocksWrite(k, 3)).toBe(false);
    expect(locks.empty).toBe(true);
  });

  it('keeps the read lock of the first reader when the second is decided', () => {
    const locks = new LockTable();
    const k = key('k');
    locks.lockKey(k, 1, read);
    locks.lockKey(k, 2, read);
    locks.unlock(2, [k]);
    expect(locks.blocksWrite(k, 3)).toBe(true);
    locks.unlock(1, [k]);
    expect(locks.empty).toBe(true);
  });

  it('lets readers read, and blocks writing by anyone but a sole reader', () => {
    const locks = new LockTable();
    const k = key('k');
    locks.lockKey(k, 1, read);
    expect(locks.blocksRead(k, 2)).toBe(false);
    expect(locks.blocksRangeRead(interval('a', 'z'), 2)).toBe(false);
    expect(locks.blocksWrite(k, 1)).toBe(false);
    expect(locks.blocksWrite(k, 2)).toBe(true);
    locks.lockKey(k, 2, read);
    // Two readers: neither may write what the other read.
    expect(locks.blocksWrite(k, 1)).toBe(true);
    expect(locks.blocksWrite(k, 2)).toBe(true);
  });

  it('never blocks a transaction with its own write and read holds on one key', () => {
    const locks = new LockTable();
    const k = key('k');
    locks.lockKey(k, 1, write);
    locks.lockKey(k, 1, read);
    expect(locks.blocksWrite(k, 1)).toBe(false);
    expect(locks.blocksRead(k, 1)).toBe(false);
    expect(locks.blocksRangeRead(interval('a', 'z'), 1)).toBe(false);
    expect(locks.blocksWrite(k, 2)).toBe(true);
    expect(locks.blocksRead(k, 2)).toBe(true);
    expect(locks.blocksRangeRead(interval('a', 'z'), 2)).toBe(true);
    expect(locks.blocksRangeRead(interval('l', 'z'), 2)).toBe(false);
    // Read the same key twice: one unlock still drops every hold.
    locks.lockKey(k, 1, read);
    locks.unlock(1, [k, k, k]);
    expect(locks.empty).toBe(true);
    expect(locks.blocksWrite(k, 2)).toBe(false);
  });

  it('keeps a writer when another transaction, holding nothing there, is decided', () => {
    const locks = new LockTable();
    const k = key('k');
    locks.lockKey(k, 1, write);
    locks.unlock(2, [k]); // Holds nothing here: nothing changes.
    expect(locks.blocksRead(k, 2)).toBe(true);
    locks.unlock(1, [k]);
    expect(locks.blocksRead(k, 2)).toBe(false);
  });

  it('refuses a second writer of one key', () => {
    const locks = new LockTable();
    const k = key('k');
    locks.lockKey(k, 1, write);
    expect(() => locks.lockKey(k, 2, write)).toThrow(/at most one writer/);
  });

  it('blocks writes within a range another transaction read, until it is decided', () => {
    const locks = new LockTable();
    locks.lockRange(interval('b', 'd'), 1);
    locks.lockRange(interval('c', 'e'), 2);
    expect(locks.blocksWrite(key('b'), 1)).toBe(false);
    expect(locks.blocksWrite(key('b'), 2)).toBe(true);
    expect(locks.blocksWrite(key('c'), 1)).toBe(true);
    expect(locks.blocksWrite(key('e'), plainWrite)).toBe(false);
    locks.unlock(2, []);
    expect(locks.blocksWrite(key('c'), 1)).toBe(false);
    expect(locks.blocksWrite(key('c'), plainWrite)).toBe(true);
    locks.unlock(1, []);
    expect(locks.empty).toBe(true);
  });
});

/** Every hold, listed: the obviously correct lock table. */
class HoldModel {
  readonly reads: { reference: number; key: string }[] = [];
  readonly writes: { reference: number; key: string }[] = [];
  readonly ranges: { reference: number; lower: string; upper: string }[] = [];

  get empty(): boolean {
    return this.reads.length === 0 && this.writes.length === 0 && this.ranges.length === 0;
  }

  unlock(reference: number): void {
    for (const list of [this.reads, this.writes, this.ranges]) {
      for (let i = list.length - 1; i >= 0; i--) if (list[i]!.reference === reference) list.splice(i, 1);
    }
  }

  /** How many transactions hold a read lock on `key`. */
  readers(key: string): number {
    return new Set(this.reads.filter((hold) => hold.key === key).map((hold) => hold.reference)).size;
  }

  writer(key: string): number | undefined {
    return this.writes.find((hold) => hold.key === key)?.reference;
  }

  blocksWrite(key: string, reference: number): boolean {
    return (
      this.reads.some((hold) => hold.key === key && hold.reference !== reference) ||
      this.writes.some((hold) => hold.key === key && hold.reference !== reference) ||
      this.ranges.some((hold) => hold.reference !== reference && hold.lower <= key && key < hold.upper)
    );
  }

  blocksRead(key: string, reference: number): boolean {
    return this.writes.some((hold) => hold.key === key && hold.reference !== reference);
  }

  blocksRangeRead(lower: string, upper: string, reference: number): boolean {
    return this.writes.some((hold) => hold.reference !== reference && lower <= hold.key && hold.key < upper);
  }
}

describe('LockTable against a model of every hold', () => {
  const rounds = 100;
  const operationsPerRound = 200;
  const keyNames = ['a', 'b', 'c', 'd', 'e', 'f'];
  const references = [1, 2, 3, 4, 5];

  it(`agrees after every operation (seed ${seed}, ${rounds} rounds x ${operationsPerRound} operations)`, () => {
    const random = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[random() % items.length]!;
    let checks = 0;
    let blockedBySeveralReaders = 0;
    for (let round = 0; round < rounds; round++) {
      const locks = new LockTable();
      const model = new HoldModel();
      /** The keys each transaction locked, as the owner remembers them for its unlock. */
      const locked = new Map<number, Uint8Array[]>(references.map((reference) => [reference, []]));
      for (let operation = 0; operation < operationsPerRound; operation++) {
        const reference = pick(references);
        const name = pick(keyNames);
        const choice = random() % 10;
        if (choice < 4) {
          locks.lockKey(key(name), reference, read);
          model.reads.push({ reference, key: name });
          locked.get(reference)!.push(key(name));
        } else if (choice < 6) {
          // Validation never lets a second transaction prepare a write of a key another one writes.
          const writer = model.writer(name);
          if (writer === undefined || writer === reference) {
            locks.lockKey(key(name), reference, write);
            model.writes.push({ reference, key: name });
            locked.get(reference)!.push(key(name));
          }
        } else if (choice < 7) {
          const [lower, top] = [name, pick(keyNames)].sort() as [string, string];
          locks.lockRange(interval(lower, top), reference);
          model.ranges.push({ reference, lower, upper: top });
        } else {
          locks.unlock(reference, locked.get(reference)!);
          locked.set(reference, []);
          model.unlock(reference);
        }
        const where = `round ${round}, operation ${operation}`;
        if (locks.empty !== model.empty) throw new Error(`${where}: empty is ${locks.empty}`);
        for (const asker of [plainWrite, ...references]) {
          for (const probe of keyNames) {
            const blocked = model.blocksWrite(probe, asker);
            if (locks.blocksWrite(key(probe), asker) !== blocked)
              throw new Error(`${where}: blocksWrite(${probe}, ${asker}) should be ${blocked}`);
            const readBlocked = model.blocksRead(probe, asker);
            if (locks.blocksRead(key(probe), asker) !== readBlocked)
              throw new Error(`${where}: blocksRead(${probe}, ${asker}) should be ${readBlocked}`);
            if (blocked && model.readers(probe) >= 2) blockedBySeveralReaders++;
          }
          const lower = pick(keyNames);
          const upper = pick(keyNames);
          const rangeBlocked = model.blocksRangeRead(lower, upper, asker);
          if (locks.blocksRangeRead(interval(lower, upper), asker) !== rangeBlocked)
            throw new Error(
              `${where}: blocksRangeRead([${lower}, ${upper}), ${asker}) should be ${rangeBlocked}`,
            );
          checks++;
        }
      }
    }
    // The model must have held keys by several readers at once, or it tested nothing new.
    expect(blockedBySeveralReaders).toBeGreaterThan(1000);
    expect(checks).toBe(rounds * operationsPerRound * (references.length + 1));
  });
});
