/**
 * Bad input to getMany, count, clear, keys, values, the prefix and signal options and conditional
 * writes is refused with the documented code and changes nothing. As for the rest of the API, the
 * asynchronous methods (clear, put and del with options) report it through a rejected promise and
 * the synchronous ones (getMany, count, keys, values, range) throw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { asyncOutcome, codeOfThrow, unchecked } from './support/async.js';

/** Longer than any of these calls takes on a loaded machine: a hang fails with a reason. */
const settleMsMax = 45_000;

type Database = Awaited<ReturnType<typeof open>>;
type RangeOptions = NonNullable<Parameters<Database['range']>[0]>;
type Keys = Parameters<Database['getMany']>[0];
type WriteOptions = NonNullable<Parameters<Database['put']>[2]>;

const dir = mkdtempSync(join(tmpdir(), 'ldb-parity-bad-'));
let db: Database;
const entries = 20;

beforeAll(async () => {
  db = await open(dir, { partitions: 4, workers: 1 });
  await db.batch(
    Array.from({ length: entries }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: `v${i}` })),
  );
});

afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectUnchanged(): void {
  expect(db.count(), 'entries after refused calls').toBe(entries);
  expect(db.getString('k7')).toBe('v7');
}

describe('getMany', () => {
  const bad: Array<[string, unknown, string]> = [
    ['a string', 'k1', 'ERR_BAD_ARGUMENT'],
    ['undefined', undefined, 'ERR_BAD_ARGUMENT'],
    ['null', null, 'ERR_BAD_ARGUMENT'],
    ['an object', { 0: 'k1', length: 1 }, 'ERR_BAD_ARGUMENT'],
    ['an array with a number', ['k1', 42], 'ERR_BAD_ARGUMENT'],
    ['an array with null', [null], 'ERR_BAD_ARGUMENT'],
    ['an array with undefined', ['k1', undefined], 'ERR_BAD_ARGUMENT'],
    ['an array with a key over 1024 bytes', ['k1', 'x'.repeat(1025)], 'ERR_KEY_TOO_LARGE'],
  ];
  for (const [name, keys, code] of bad) {
    it(`${name} → ${code} from the database and from a snapshot`, () => {
      expect(codeOfThrow(() => db.getMany(unchecked<Keys>(keys)))).toBe(code);
      const snapshot = db.snapshot();
      expect(codeOfThrow(() => snapshot.getMany(unchecked<Keys>(keys)))).toBe(code);
      snapshot.release();
    });
  }
  it('an empty array gives an empty array', () => {
    expect(db.getMany([])).toEqual([]);
  });
});

describe('range options of count, clear, keys, values and range', () => {
  const bad: Array<[string, unknown, string]> = [
    ['a string', 'k', 'ERR_BAD_ARGUMENT'],
    ['limit -1', { limit: -1 }, 'ERR_BAD_ARGUMENT'],
    ['gt and gte', { gt: 'a', gte: 'a' }, 'ERR_BAD_ARGUMENT'],
    ['prefix 42', { prefix: 42 }, 'ERR_BAD_ARGUMENT'],
    ['prefix null', { prefix: null }, 'ERR_BAD_ARGUMENT'],
    ['prefix with gte', { prefix: 'k', gte: 'k1' }, 'ERR_BAD_ARGUMENT'],
    ['prefix with lt', { prefix: 'k', lt: 'k5' }, 'ERR_BAD_ARGUMENT'],
    ['prefix over 1024 bytes', { prefix: 'p'.repeat(1025) }, 'ERR_KEY_TOO_LARGE'],
  ];
  for (const [name, options, code] of bad) {
    it(`${name} → ${code}, and clear deletes nothing`, async () => {
      const o = unchecked<RangeOptions>(options);
      expect(
        codeOfThrow(() => db.count(o)),
        'count',
      ).toBe(code);
      expect(
        codeOfThrow(() => db.keys(o)),
        'keys',
      ).toBe(code);
      expect(
        codeOfThrow(() => db.values(o)),
        'values',
      ).toBe(code);
      expect(
        codeOfThrow(() => db.range(o)),
        'range',
      ).toBe(code);
      expect(await asyncOutcome(() => db.clear(o), settleMsMax), 'clear').toBe(code);
      expectUnchanged();
    });
  }

  const badSignals: Array<[string, unknown]> = [
    ['a string', 'stop'],
    ['an object', { aborted: false }],
    ['an AbortController', new AbortController()],
  ];
  for (const [name, signal] of badSignals) {
    it(`signal that is ${name} → ERR_BAD_ARGUMENT`, () => {
      const o = unchecked<RangeOptions>({ signal });
      expect(
        codeOfThrow(() => db.range(o)),
        'range',
      ).toBe('ERR_BAD_ARGUMENT');
      expect(
        codeOfThrow(() => db.keys(o)),
        'keys',
      ).toBe('ERR_BAD_ARGUMENT');
      expect(
        codeOfThrow(() => db.values(o)),
        'values',
      ).toBe('ERR_BAD_ARGUMENT');
    });
  }

  it('a prefix of 0xff bytes runs to the end; an empty prefix is everything', () => {
    expect(db.count({ prefix: '' })).toBe(entries);
    expect(db.count({ prefix: Buffer.from([0xff]) })).toBe(0);
    expect(db.count({ prefix: 'k1' })).toBe(11);
  });
});

describe('conditional put and del', () => {
  const bad: Array<[string, unknown, string]> = [
    ['options null', null, 'ERR_BAD_ARGUMENT'],
    ['options a string', 'ifValue', 'ERR_BAD_ARGUMENT'],
    ['an unknown option', { ifVersion: 1 }, 'ERR_BAD_ARGUMENT'],
    ['ifValue 42', { ifValue: 42 }, 'ERR_BAD_ARGUMENT'],
    ['ifValue an object', { ifValue: {} }, 'ERR_BAD_ARGUMENT'],
    ['ifValue over 64 MiB', { ifValue: Buffer.alloc(64 * 1024 * 1024 + 1) }, 'ERR_VALUE_TOO_LARGE'],
  ];
  for (const [name, options, code] of bad) {
    it(`${name} → ${code} through the promise; nothing written`, async () => {
      const o = unchecked<WriteOptions>(options);
      expect(await asyncOutcome(() => db.put('k1', 'changed', o), settleMsMax), 'put').toBe(code);
      expect(await asyncOutcome(() => db.del('k1', o), settleMsMax), 'del').toBe(code);
      expectUnchanged();
      expect(db.getString('k1')).toBe('v1');
    });
  }

  it('a bad key or value is refused before the condition is looked at', async () => {
    expect(await asyncOutcome(() => db.put(unchecked<string>(42), 'v', { ifValue: null }), settleMsMax)).toBe(
      'ERR_BAD_ARGUMENT',
    );
    expect(
      await asyncOutcome(() => db.put('k1', unchecked<string>(null), { ifValue: 'v1' }), settleMsMax),
    ).toBe('ERR_BAD_ARGUMENT');
    expect(await asyncOutcome(() => db.del('x'.repeat(1025), { ifValue: null }), settleMsMax)).toBe(
      'ERR_KEY_TOO_LARGE',
    );
    expectUnchanged();
  });
});

describe('after close', () => {
  it('every new method fails with ERR_CLOSED', async () => {
    const closed = await open(join(dir, 'closed'), { partitions: 1, workers: 1 });
    await closed.close();
    expect(codeOfThrow(() => closed.getMany(['a']))).toBe('ERR_CLOSED');
    expect(codeOfThrow(() => closed.count())).toBe('ERR_CLOSED');
    expect(codeOfThrow(() => closed.keys())).toBe('ERR_CLOSED');
    expect(codeOfThrow(() => closed.values())).toBe('ERR_CLOSED');
    expect(await asyncOutcome(() => closed.clear(), settleMsMax)).toBe('ERR_CLOSED');
    expect(await asyncOutcome(() => closed.put('a', 'b', { ifValue: null }), settleMsMax)).toBe('ERR_CLOSED');
    expect(await asyncOutcome(() => closed.del('a', { ifValue: 'b' }), settleMsMax)).toBe('ERR_CLOSED');
  });
});
