/**
 * Bad input to every public method of the Database API is refused with a LightningError carrying the
 * documented code, and changes nothing: open (path, every option), reopening with another partition
 * count, keys and values of the wrong type or size, malformed batches, batches spanning partitions
 * (ERR_NOT_SUPPORTED, nothing applied), malformed range options, and attach() of garbage.
 *
 * The calling convention is part of the contract: put/del/batch report bad input through a rejected
 * promise (never a synchronous throw, which would escape a caller's .catch), while get, getString,
 * range, stats and share throw synchronously.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attach, type LightningError, open } from '../src/index.js';
import { createPartitionRouter } from '../src/main/partition-router.js';
import { asyncOutcome, codeOf, codeOfThrow, unchecked, within } from './support/async.js';

type Database = Awaited<ReturnType<typeof open>>;
type OpenOptions = NonNullable<Parameters<typeof open>[1]>;
type ShareHandle = Parameters<typeof attach>[0];
type Key = Parameters<Database['put']>[0];
type Value = Parameters<Database['put']>[1];
type BatchOperations = Parameters<Database['batch']>[0];
type RangeOptions = NonNullable<Parameters<Database['range']>[0]>;
type ErrorCode = LightningError['code'];

const keyBytesMax = 1024;
const valueBytesMax = 64 * 1024 * 1024;

/**
 * A write resolves in milliseconds on an idle machine (a 64 MiB value in a few seconds on a loaded
 * one); tens of seconds mean a lost wake-up or a dead owner. Failing with the operation's name beats
 * the bare timeout of the whole test.
 */
const settleMsMax = 45_000;

const tempDirs: string[] = [];
const openDatabases: Database[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-'));
  tempDirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const db of openDatabases.splice(0))
    await within(db.close(), settleMsMax, 'close() in afterEach').catch(() => {});
});

afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * open() must fail with `code`. open is asynchronous, so a synchronous throw is accepted too. A
 * database that opens by mistake is closed at once so no worker outlives the test.
 */
async function openOutcome(path: unknown, options: unknown): Promise<string> {
  try {
    const db = await open(unchecked<string>(path), unchecked<OpenOptions>(options));
    await db.close();
    return 'opened';
  } catch (error) {
    return codeOf(error);
  }
}

// ---------------------------------------------------------------------------------------------------
// open
// ---------------------------------------------------------------------------------------------------

describe('open() refuses bad arguments with ERR_BAD_ARGUMENT', () => {
  const badPaths: Array<[string, unknown]> = [
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
    ['an array', ['dir']],
  ];
  for (const [name, path] of badPaths) {
    it(`path that is ${name}`, async () => {
      expect(await openOutcome(path, { partitions: 1, workers: 1 })).toBe('ERR_BAD_ARGUMENT');
    });
  }

  const badOptions: Array<[string, unknown]> = [
    ['partitions: 0', { partitions: 0 }],
    ['partitions: -1', { partitions: -1 }],
    ['partitions: 1.5', { partitions: 1.5 }],
    ["partitions: '16'", { partitions: '16' }],
    ['partitions: 5000 (over 4096)', { partitions: 5000 }],
    ['partitions: NaN', { partitions: Number.NaN }],
    ['partitions: Infinity', { partitions: Number.POSITIVE_INFINITY }],
    ['workers: 0', { partitions: 1, workers: 0 }],
    ["workers: 'x'", { partitions: 1, workers: 'x' }],
    ['workers: -1', { partitions: 1, workers: -1 }],
    ['workers: 1.5', { partitions: 1, workers: 1.5 }],
    ["durability: 'fast'", { partitions: 1, durability: 'fast' }],
    ['durability: 1', { partitions: 1, durability: 1 }],
    ["pageSizeBytes: 'big'", { partitions: 1, pageSizeBytes: 'big' }],
    ['pageSizeBytes: 5000 (not a power of two)', { partitions: 1, pageSizeBytes: 5000 }],
    ['pageSizeBytes: 1024 (below 4096)', { partitions: 1, pageSizeBytes: 1024 }],
    ['partitionBytesMax: -1', { partitions: 1, partitionBytesMax: -1 }],
    ["partitionBytesMax: '1G'", { partitions: 1, partitionBytesMax: '1G' }],
    ['threadsMax: 0', { partitions: 1, threadsMax: 0 }],
    ["threadsMax: 'x'", { partitions: 1, threadsMax: 'x' }],
    ["workersPerNode: 'x'", { partitions: 1, workersPerNode: 'x' }],
    ['workersPerNode: 0', { partitions: 1, workersPerNode: 0 }],
    ['partitions: 2n (a bigint)', { partitions: 2n }],
    ['memoryMaxBytes: NaN', { partitions: 1, memoryMaxBytes: Number.NaN }],
    ['memoryMaxBytes: 1048576n (a bigint)', { partitions: 1, memoryMaxBytes: 1_048_576n }],
    // Testing-only, but still an option: a typo in a crash test must not surface as a plain Error.
    [
      "failpoints: { 'owner.apply': 'explode' }",
      { partitions: 1, workers: 1, failpoints: { 'owner.apply': 'explode' } },
    ],
    ["failpoints: 'x'", { partitions: 1, workers: 1, failpoints: 'x' }],
    ["options: 'fast' (a string)", 'fast'],
    ['options: 42', 42],
    ['options: true', true],
  ];
  it('names a bad value as it is: NaN and a bigint, not null or a TypeError', async () => {
    const messageOf = async (options: unknown): Promise<string> => {
      try {
        const db = await open(tempDir(), options as Parameters<typeof open>[1]);
        await db.close();
        return 'opened';
      } catch (error) {
        return String(error);
      }
    };
    expect(await messageOf({ partitions: 1, memoryMaxBytes: Number.NaN })).toMatch(
      /ERR_BAD_ARGUMENT.*got NaN/,
    );
    expect(await messageOf({ partitions: 2n })).toMatch(/ERR_BAD_ARGUMENT.*got 2n/);
  });
  for (const [name, options] of badOptions) {
    it(name, async () => {
      const dir = tempDir();
      expect(await openOutcome(dir, options)).toBe('ERR_BAD_ARGUMENT');
      // A refused open must not have created a database that a later open would have to match.
      expect(existsSync(join(dir, 'LIGHTNING.json')), 'LIGHTNING.json written by a refused open').toBe(false);
    });
  }

  // Four databases opened one after another: minutes, not seconds, on a heavily loaded machine.
  it('every documented durability mode and workers: "auto" are accepted', { timeout: 180_000 }, async () => {
    for (const durability of ['sync', 'relaxed', 'none'] as const) {
      const db = await open(tempDir(), { partitions: 2, workers: 1, durability });
      openDatabases.push(db);
      await within(db.put('k', durability), settleMsMax, `put with durability ${durability}`);
      expect(db.getString('k')).toBe(durability);
      await db.close();
    }
    const db = await open(tempDir(), { partitions: 2, workers: 'auto' });
    openDatabases.push(db);
    expect(db.stats().workers).toBeGreaterThanOrEqual(1);
    expect(db.stats().workers, "'auto' is capped at the partition count").toBeLessThanOrEqual(2);
  });
});

describe('reopening with another partition count', () => {
  it('is refused with ERR_BAD_ARGUMENT and leaves the stored count intact', async () => {
    const dir = tempDir();
    const first = await open(dir, { partitions: 4, workers: 1 });
    openDatabases.push(first);
    await first.close();
    const stored = readFileSync(join(dir, 'LIGHTNING.json'), 'utf8');

    expect(await openOutcome(dir, { partitions: 8, workers: 1 })).toBe('ERR_BAD_ARGUMENT');
    expect(await openOutcome(dir, { partitions: 1, workers: 1 })).toBe('ERR_BAD_ARGUMENT');
    expect(readFileSync(join(dir, 'LIGHTNING.json'), 'utf8'), 'a refused reopen rewrote LIGHTNING.json').toBe(
      stored,
    );

    const again = await open(dir, { partitions: 4, workers: 2 });
    openDatabases.push(again);
    expect(again.stats().partitions).toBe(4);
    await again.close();
  });

  it('without a partitions option adopts the stored count (the default applies only at creation)', async () => {
    const dir = tempDir();
    const first = await open(dir, { partitions: 4, workers: 1 });
    openDatabases.push(first);
    await first.close();
    const again = await open(dir, { workers: 1 });
    openDatabases.push(again);
    expect(again.stats().partitions).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------------
// Methods of an open database
// ---------------------------------------------------------------------------------------------------

describe('methods of an open database', () => {
  let db: Database;
  /** Keys that were written successfully; bad calls must leave exactly these. */
  const written = new Map<string, string>();

  beforeAll(async () => {
    db = await open(tempDir(), { partitions: 16, workers: 2 });
    for (let i = 0; i < 50; i++) {
      written.set(`base:${i}`, `v${i}`);
      await within(db.put(`base:${i}`, `v${i}`), settleMsMax, `put base:${i}`);
    }
  });

  afterAll(async () => {
    await db?.close();
  });

  /** Nothing a refused call did may be visible. */
  function expectUnchanged(): void {
    expect(db.stats().entries, 'entry count after refused calls').toBe(written.size);
    for (const [key, value] of written) expect(db.getString(key)).toBe(value);
  }

  /** Records a key written by a test, so the unchanged-check knows about it. */
  async function put(key: string, value: string): Promise<void> {
    await within(db.put(key, value), settleMsMax, `put ${key.slice(0, 20)}`);
    written.set(key, value);
  }

  const badKeys: Array<[string, unknown]> = [
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
    ['an array', []],
    ['a boolean', true],
    ['an ArrayBuffer', new ArrayBuffer(4)],
  ];
  for (const [name, key] of badKeys) {
    it(`a key that is ${name}: put/del reject and get/getString throw ERR_BAD_ARGUMENT`, async () => {
      const k = unchecked<Key>(key);
      expect(await asyncOutcome(() => db.put(k, 'v'), settleMsMax), 'put').toBe('ERR_BAD_ARGUMENT');
      expect(await asyncOutcome(() => db.del(k), settleMsMax), 'del').toBe('ERR_BAD_ARGUMENT');
      expect(
        codeOfThrow(() => db.get(k)),
        'get',
      ).toBe('ERR_BAD_ARGUMENT');
      expect(
        codeOfThrow(() => db.getString(k)),
        'getString',
      ).toBe('ERR_BAD_ARGUMENT');
      expect(
        await asyncOutcome(() => db.batch([{ type: 'put', key: k, value: 'v' }]), settleMsMax),
        'batch put',
      ).toBe('ERR_BAD_ARGUMENT');
      expect(await asyncOutcome(() => db.batch([{ type: 'del', key: k }]), settleMsMax), 'batch del').toBe(
        'ERR_BAD_ARGUMENT',
      );
      expectUnchanged();
    });
  }

  const badValues: Array<[string, unknown]> = [
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
    ['an array', [1, 2]],
    ['a boolean', false],
    ['an ArrayBuffer', new ArrayBuffer(4)],
  ];
  for (const [name, value] of badValues) {
    it(`a value that is ${name} is refused by put and batch, for a new and an existing key`, async () => {
      const v = unchecked<Value>(value);
      expect(await asyncOutcome(() => db.put('fresh', v), settleMsMax), 'put new key').toBe(
        'ERR_BAD_ARGUMENT',
      );
      expect(await asyncOutcome(() => db.put('base:1', v), settleMsMax), 'put existing key').toBe(
        'ERR_BAD_ARGUMENT',
      );
      expect(
        await asyncOutcome(() => db.batch([{ type: 'put', key: 'base:2', value: v }]), settleMsMax),
        'batch',
      ).toBe('ERR_BAD_ARGUMENT');
      expect(db.get('fresh')).toBeUndefined();
      expectUnchanged();
    });
  }

  it(`a key of ${keyBytesMax + 1} bytes gets ERR_KEY_TOO_LARGE everywhere; ${keyBytesMax} bytes works`, async () => {
    const tooLong = Buffer.alloc(keyBytesMax + 1, 0x6b);
    // 342 three-byte characters: 342 UTF-16 units but 1026 UTF-8 bytes, so the limit is in bytes.
    const tooLongText = '€'.repeat(342);
    for (const key of [tooLong, tooLongText]) {
      const what = typeof key === 'string' ? 'text key' : 'byte key';
      expect(await asyncOutcome(() => db.put(key, 'v'), settleMsMax), `put ${what}`).toBe(
        'ERR_KEY_TOO_LARGE',
      );
      expect(await asyncOutcome(() => db.del(key), settleMsMax), `del ${what}`).toBe('ERR_KEY_TOO_LARGE');
      expect(
        codeOfThrow(() => db.get(key)),
        `get ${what}`,
      ).toBe('ERR_KEY_TOO_LARGE');
      expect(
        codeOfThrow(() => db.getString(key)),
        `getString ${what}`,
      ).toBe('ERR_KEY_TOO_LARGE');
      expect(
        await asyncOutcome(() => db.batch([{ type: 'put', key, value: 'v' }]), settleMsMax),
        `batch ${what}`,
      ).toBe('ERR_KEY_TOO_LARGE');
      expect(
        codeOfThrow(() => db.range({ gte: key })),
        `range gte ${what}`,
      ).toBe('ERR_KEY_TOO_LARGE');
    }
    expectUnchanged();

    const longest = 'k'.repeat(keyBytesMax);
    await put(longest, 'fits');
    expect(db.getString(longest)).toBe('fits');
    expect([...db.range({ gte: longest, lte: longest })].map(([key]) => key.length)).toEqual([keyBytesMax]);
  });

  it(`a value of 64 MiB + 1 bytes gets ERR_VALUE_TOO_LARGE from put and batch; exactly 64 MiB is stored`, {
    timeout: 120_000,
  }, async () => {
    const tooBig = Buffer.alloc(valueBytesMax + 1, 0x76);
    expect(await asyncOutcome(() => db.put('huge', tooBig), settleMsMax), 'put').toBe('ERR_VALUE_TOO_LARGE');
    expect(await asyncOutcome(() => db.put('base:3', tooBig), settleMsMax), 'put over an existing key').toBe(
      'ERR_VALUE_TOO_LARGE',
    );
    expect(
      await asyncOutcome(() => db.batch([{ type: 'put', key: 'huge', value: tooBig }]), settleMsMax),
      'batch',
    ).toBe('ERR_VALUE_TOO_LARGE');
    expect(db.get('huge')).toBeUndefined();
    expectUnchanged();

    // The limit is inclusive: exactly 64 MiB goes through the ring in fragments and reads back whole.
    const largest = tooBig.subarray(0, valueBytesMax);
    largest[valueBytesMax - 1] = 0x21;
    await within(db.put('largest', largest), settleMsMax, 'put of a 64 MiB value');
    const got = db.get('largest');
    expect(got?.length).toBe(valueBytesMax);
    expect(got?.equals(largest), 'the 64 MiB value reads back intact').toBe(true);
    await within(db.del('largest'), settleMsMax, 'del of the 64 MiB value');
    expectUnchanged();
  });

  const badBatches: Array<[string, unknown, ErrorCode]> = [
    ['not an array: a string', 'put', 'ERR_BAD_ARGUMENT'],
    ['not an array: an object', { type: 'put', key: 'a', value: 'b' }, 'ERR_BAD_ARGUMENT'],
    ['not an array: null', null, 'ERR_BAD_ARGUMENT'],
    ['not an array: undefined', undefined, 'ERR_BAD_ARGUMENT'],
    ['an entry that is null', [null], 'ERR_BAD_ARGUMENT'],
    ['an entry that is a string', ['put'], 'ERR_BAD_ARGUMENT'],
    ["type 'upsert'", [{ type: 'upsert', key: 'a', value: 'b' }], 'ERR_BAD_ARGUMENT'],
    ['type missing', [{ key: 'a', value: 'b' }], 'ERR_BAD_ARGUMENT'],
    ['type 42', [{ type: 42, key: 'a' }], 'ERR_BAD_ARGUMENT'],
    ["type 'PUT' (case matters)", [{ type: 'PUT', key: 'a', value: 'b' }], 'ERR_BAD_ARGUMENT'],
    ['a put without a value', [{ type: 'put', key: 'a' }], 'ERR_BAD_ARGUMENT'],
    ['a put with value null', [{ type: 'put', key: 'a', value: null }], 'ERR_BAD_ARGUMENT'],
    ['a del without a key', [{ type: 'del' }], 'ERR_BAD_ARGUMENT'],
  ];
  for (const [name, batch, code] of badBatches) {
    it(`batch: ${name} → ${code}`, async () => {
      expect(await asyncOutcome(() => db.batch(unchecked<BatchOperations>(batch)), settleMsMax)).toBe(code);
      expect(db.get('a')).toBeUndefined();
      expectUnchanged();
    });
  }

  it('batch: one malformed entry after valid ones applies none of them', async () => {
    // All entries use one key, so they are in one partition and only the malformed entry is at fault.
    const cases: Array<[string, unknown[], ErrorCode]> = [
      [
        'bad type last',
        [
          { type: 'put', key: 'k1', value: 'x' },
          { type: 'upsert', key: 'k1', value: 'y' },
        ],
        'ERR_BAD_ARGUMENT',
      ],
      [
        'missing value last',
        [
          { type: 'del', key: 'base:4' },
          { type: 'put', key: 'base:4' },
        ],
        'ERR_BAD_ARGUMENT',
      ],
      [
        'oversized value last',
        [
          { type: 'del', key: 'base:5' },
          { type: 'put', key: 'base:5', value: Buffer.alloc(valueBytesMax + 1) },
        ],
        'ERR_VALUE_TOO_LARGE',
      ],
    ];
    for (const [name, batch, code] of cases) {
      expect(await asyncOutcome(() => db.batch(unchecked<BatchOperations>(batch)), settleMsMax), name).toBe(
        code,
      );
      expect(db.get('k1'), name).toBeUndefined();
      expectUnchanged();
    }
  });

  it('a batch across partitions applies all of its entries, or none when one is rejected', async () => {
    const router = await createPartitionRouter(db.stats().partitions);
    const firstKey = 'absent:0';
    let secondKey: string | undefined;
    for (let i = 1; i < 50 && secondKey === undefined; i++) {
      if (router.partitionOf(Buffer.from(`absent:${i}`)) !== router.partitionOf(Buffer.from(firstKey)))
        secondKey = `absent:${i}`;
    }
    if (secondKey === undefined)
      expect.fail('49 keys all share a partition with absent:0 out of 16 partitions');

    // A bad entry anywhere rejects the whole batch before anything is sent.
    expect(
      await asyncOutcome(
        () =>
          db.batch([
            { type: 'put', key: firstKey, value: '1' },
            { type: 'put', key: secondKey, value: 'x'.repeat(valueBytesMax + 1) },
          ]),
        settleMsMax,
      ),
    ).toBe('ERR_VALUE_TOO_LARGE');
    expect(db.get(firstKey)).toBeUndefined();
    expect(db.get(secondKey)).toBeUndefined();

    // A valid batch over both partitions: both entries, and a delete in one of them.
    await put(firstKey, 'kept');
    expect(
      await asyncOutcome(
        () =>
          db.batch([
            { type: 'del', key: firstKey },
            { type: 'put', key: secondKey, value: '2' },
          ]),
        settleMsMax,
      ),
    ).toBe('resolved');
    expect(db.get(firstKey)).toBeUndefined();
    expect(db.getString(secondKey)).toBe('2');
    written.delete(firstKey);
    await db.del(secondKey);
    expectUnchanged();
  });

  const badRanges: Array<[string, unknown, ErrorCode]> = [
    ['a string', 'a', 'ERR_BAD_ARGUMENT'],
    ['a number', 42, 'ERR_BAD_ARGUMENT'],
    ['limit -1', { limit: -1 }, 'ERR_BAD_ARGUMENT'],
    ['limit 1.5', { limit: 1.5 }, 'ERR_BAD_ARGUMENT'],
    ["limit '3'", { limit: '3' }, 'ERR_BAD_ARGUMENT'],
    ['limit NaN', { limit: Number.NaN }, 'ERR_BAD_ARGUMENT'],
    ["reverse 'yes'", { reverse: 'yes' }, 'ERR_BAD_ARGUMENT'],
    ['gte 1', { gte: 1 }, 'ERR_BAD_ARGUMENT'],
    ['gte null', { gte: null }, 'ERR_BAD_ARGUMENT'],
    ['lt {}', { lt: {} }, 'ERR_BAD_ARGUMENT'],
    ['gt and gte together', { gt: 'a', gte: 'a' }, 'ERR_BAD_ARGUMENT'],
    ['lt and lte together', { lt: 'b', lte: 'b' }, 'ERR_BAD_ARGUMENT'],
  ];
  for (const [name, options, code] of badRanges) {
    it(`range(${name}) throws ${code} at the call, not on the first next()`, () => {
      expect(codeOfThrow(() => db.range(unchecked<RangeOptions>(options)))).toBe(code);
    });
  }

  it('valid edge ranges still work: no options, {}, limit 0, an empty interval', () => {
    expect([...db.range()].length).toBe(written.size);
    expect([...db.range({})].length).toBe(written.size);
    expect([...db.range({ limit: 0 })]).toEqual([]);
    expect([...db.range({ gt: 'base:1', lt: 'base:1' })]).toEqual([]);
    expect([...db.range({ gte: 'z', lte: 'a' })], 'lower bound above the upper bound').toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// attach
// ---------------------------------------------------------------------------------------------------

describe('attach() refuses garbage with ERR_BAD_ARGUMENT', () => {
  let db: Database;

  beforeAll(async () => {
    db = await open(tempDir(), { partitions: 2, workers: 1 });
  });

  afterAll(async () => {
    await db?.close();
  });

  async function attachOutcome(handle: unknown): Promise<string> {
    try {
      const attached = await attach(unchecked<ShareHandle>(handle));
      await attached.close();
      return 'attached';
    } catch (error) {
      return codeOf(error);
    }
  }

  const garbage: Array<[string, () => unknown]> = [
    ['undefined', () => undefined],
    ['null', () => null],
    ['a number', () => 42],
    ['a string', () => 'handle'],
    ['an empty object', () => ({})],
    ['an array', () => []],
    ['an object with unrelated fields', () => ({ partitions: 4, rings: 'x' })],
    // What a caller gets by sending the handle as JSON: every SharedArrayBuffer turns into {}.
    ['a JSON round-tripped handle', () => JSON.parse(JSON.stringify(db.share()))],
  ];
  for (const [name, make] of garbage) {
    it(name, async () => {
      expect(await attachOutcome(make())).toBe('ERR_BAD_ARGUMENT');
    });
  }
});
