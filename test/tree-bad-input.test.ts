/**
 * Bad input to every public method of the shared-memory B+Tree is rejected with a LightningError
 * carrying the documented code, and never changes the tree. A full partition (maxBytes reached) is a
 * clean, recoverable error: the failed put changes nothing and deletes make room again.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { describe, expect, it } from 'vitest';
import {
  BTree,
  checkTree,
  keyBytesMax,
  LightningError,
  TreeReader,
  valueBytesMax,
} from '../src/shared-memory/index.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

type Tree = ReturnType<typeof BTree.create>;
type CreateOptions = NonNullable<Parameters<typeof BTree.create>[0]>;
type RangeOptions = NonNullable<Parameters<Tree['range']>[0]>;
type Handle = Parameters<typeof TreeReader.attach>[0];
type Key = Parameters<Tree['put']>[0];
type ErrorCode = LightningError['code'];

// Kept signed (seedFromEnv returns it unsigned): the test names have always printed it that way.
const seed = seedFromEnv(0x0badf00d) | 0;

/** Runs `action` and asserts it throws a LightningError with exactly `code`. */
function expectCode(action: () => unknown, code: ErrorCode, what: string): LightningError {
  let threw = false;
  let error: unknown;
  try {
    action();
  } catch (caught) {
    threw = true;
    error = caught;
  }
  if (!threw) throw new Error(`${what}: expected ${code} but nothing was thrown`);
  if (!(error instanceof LightningError)) {
    throw new Error(`${what}: expected a LightningError ${code}, got ${String(error)}`, { cause: error });
  }
  expect(error.code, `${what}: ${error.message}`).toBe(code);
  return error;
}

/** Casts for deliberately ill-typed calls: the point is what happens at run time. */
const asKey = (input: unknown): Key => input as Key;
const asLimit = (input: unknown): number => input as number;
const asHandle = (input: unknown): Handle => input as Handle;

/** Wrong types for keys, values and bounds (undefined is handled separately for bounds, see below). */
const wrongTypes: ReadonlyArray<readonly [string, unknown]> = [
  ['a number', 42],
  ['zero', 0],
  ['null', null],
  ['undefined', undefined],
  ['an object', {}],
  ['an empty array', []],
  ['an array of bytes', [1, 2, 3]],
  ['true', true],
  ['false', false],
];

/** A small in-memory model: hex of the key → [key, value]. */
class Model {
  readonly entries = new Map<string, readonly [Buffer, Buffer]>();

  put(key: Uint8Array, value: Uint8Array): void {
    this.entries.set(Buffer.from(key).toString('hex'), [Buffer.from(key), Buffer.from(value)]);
  }

  delete(key: Uint8Array): void {
    this.entries.delete(Buffer.from(key).toString('hex'));
  }

  get(key: Uint8Array): Buffer | undefined {
    return this.entries.get(Buffer.from(key).toString('hex'))?.[1];
  }

  sorted(): Array<readonly [Buffer, Buffer]> {
    return [...this.entries.values()].sort((a, b) => Buffer.compare(a[0], b[0]));
  }
}

/** The tree holds exactly the model's entries, in order, and passes checkTree (also via a reader). */
function expectSameAsModel(tree: Tree, model: Model, where: string): void {
  const expected = model.sorted();
  expect(checkTree(tree).entries, `${where}: checkTree entries`).toBe(expected.length);
  expect(tree.count, `${where}: count`).toBe(expected.length);
  const reader = TreeReader.attach(tree.share());
  for (const source of [tree.range(), reader.range()]) {
    let i = 0;
    for (const [key, value] of source) {
      const want = expected[i];
      if (want === undefined) throw new Error(`${where}: unexpected extra key ${key.toString('hex')}`);
      if (!want[0].equals(key) || !want[1].equals(value)) {
        throw new Error(
          `${where}: entry #${i} is ${key.toString('hex')}, expected ${want[0].toString('hex')}`,
        );
      }
      i++;
    }
    expect(i, `${where}: entries scanned`).toBe(expected.length);
  }
}

/** A tree with a few entries, so that "nothing changed" is observable. */
function smallTree(): { tree: Tree; model: Model } {
  const tree = BTree.create();
  const model = new Model();
  for (let i = 0; i < 20; i++) {
    const key = Buffer.from(`key-${i}`);
    const value = Buffer.from(`value-${i}`);
    tree.put(key, value);
    model.put(key, value);
  }
  return { tree, model };
}

/** Every SharedArrayBuffer reachable from a handle (its shape is the implementation's business). */
function sharedBuffersIn(input: unknown, seen = new Set<unknown>()): SharedArrayBuffer[] {
  if (input instanceof SharedArrayBuffer) return [input];
  if (typeof input !== 'object' || input === null || seen.has(input)) return [];
  seen.add(input);
  return Object.values(input).flatMap((child) => sharedBuffersIn(child, seen));
}

describe('bad arguments are rejected with ERR_BAD_ARGUMENT and change nothing', () => {
  for (const [name, bad] of wrongTypes) {
    it(`a key that is ${name} is rejected by put, get, delete and reader.get`, () => {
      const { tree, model } = smallTree();
      const reader = TreeReader.attach(tree.share());
      expectCode(() => tree.put(asKey(bad), 'value'), 'ERR_BAD_ARGUMENT', 'put');
      expectCode(() => tree.get(asKey(bad)), 'ERR_BAD_ARGUMENT', 'get');
      expectCode(() => tree.delete(asKey(bad)), 'ERR_BAD_ARGUMENT', 'delete');
      expectCode(() => reader.get(asKey(bad)), 'ERR_BAD_ARGUMENT', 'reader.get');
      expectSameAsModel(tree, model, 'after rejected keys');
    });

    it(`a value that is ${name} is rejected by put, for a new and for an existing key`, () => {
      const { tree, model } = smallTree();
      expectCode(() => tree.put('new-key', asKey(bad)), 'ERR_BAD_ARGUMENT', 'put new key');
      expectCode(() => tree.put('key-3', asKey(bad)), 'ERR_BAD_ARGUMENT', 'put existing key');
      // Neither a half-inserted new key nor a clobbered old value.
      expect(tree.get('new-key')).toBeUndefined();
      expect(tree.get('key-3')?.toString()).toBe('value-3');
      expectSameAsModel(tree, model, 'after rejected values');
    });

    if (name !== 'undefined') {
      it(`a range bound that is ${name} is rejected for gte, gt, lte and lt, by tree and reader`, () => {
        const { tree, model } = smallTree();
        const reader = TreeReader.attach(tree.share());
        for (const bound of ['gte', 'gt', 'lte', 'lt'] as const) {
          const options: RangeOptions = { [bound]: asKey(bad) };
          // Spread the iterator: validation may happen at the call or at the first next().
          expectCode(() => [...tree.range(options)], 'ERR_BAD_ARGUMENT', `tree.range ${bound}`);
          expectCode(() => [...reader.range(options)], 'ERR_BAD_ARGUMENT', `reader.range ${bound}`);
        }
        expectSameAsModel(tree, model, 'after rejected ranges');
      });
    }
  }

  it('a range bound explicitly set to undefined means "no bound" (optional property), not an error', () => {
    // `gte?: Uint8Array | string` admits `{ gte: undefined }` in TypeScript; it must mean the same
    // as leaving the property out, the usual JavaScript convention for options objects.
    const { tree, model } = smallTree();
    const all = model.sorted().map(([key]) => key.toString());
    const options: RangeOptions = { gte: undefined, gt: undefined, lte: undefined, lt: undefined };
    expect([...tree.range(options)].map(([key]) => key.toString())).toEqual(all);
  });

  for (const [name, limit] of [
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ["the string '3'", '3'],
  ] as const) {
    it(`a range limit of ${name} is rejected by tree.range and reader.range`, () => {
      const { tree, model } = smallTree();
      const reader = TreeReader.attach(tree.share());
      const options: RangeOptions = { limit: asLimit(limit) };
      expectCode(() => [...tree.range(options)], 'ERR_BAD_ARGUMENT', 'tree.range');
      expectCode(() => [...reader.range(options)], 'ERR_BAD_ARGUMENT', 'reader.range');
      expectSameAsModel(tree, model, 'after rejected limit');
    });
  }

  it('valid edge limits still work: 0 yields nothing, a huge limit yields everything', () => {
    const { tree, model } = smallTree();
    expect([...tree.range({ limit: 0 })]).toEqual([]);
    expect([...tree.range({ limit: 1_000_000 })].length).toBe(model.entries.size);
    expect([...tree.range({ limit: 2, reverse: true })].map(([key]) => key.toString())).toEqual([
      'key-9',
      'key-8',
    ]);
  });
});

describe('size limits', () => {
  it(`a key of keyBytesMax + 1 (${keyBytesMax + 1}) bytes gets ERR_KEY_TOO_LARGE from put, get, delete and reader.get`, () => {
    const { tree, model } = smallTree();
    const reader = TreeReader.attach(tree.share());
    const tooLarge = Buffer.alloc(keyBytesMax + 1, 0x61);
    expectCode(() => tree.put(tooLarge, 'v'), 'ERR_KEY_TOO_LARGE', 'put');
    expectCode(() => tree.get(tooLarge), 'ERR_KEY_TOO_LARGE', 'get');
    expectCode(() => tree.delete(tooLarge), 'ERR_KEY_TOO_LARGE', 'delete');
    expectCode(() => reader.get(tooLarge), 'ERR_KEY_TOO_LARGE', 'reader.get');
    // The limit is in UTF-8 bytes, not UTF-16 code units: 513 × 'é' is 1026 bytes.
    const tooLargeString = 'é'.repeat(513);
    expectCode(() => tree.put(tooLargeString, 'v'), 'ERR_KEY_TOO_LARGE', 'put string');
    expectCode(() => tree.get(tooLargeString), 'ERR_KEY_TOO_LARGE', 'get string');
    expectSameAsModel(tree, model, 'after rejected keys');
  });

  it(`a key of exactly keyBytesMax (${keyBytesMax}) bytes is accepted by every method`, () => {
    const { tree, model } = smallTree();
    const largest = Buffer.alloc(keyBytesMax, 0xfe); // sorts after every 'key-…' key
    tree.put(largest, 'largest');
    model.put(largest, Buffer.from('largest'));
    expect(tree.get(largest)?.toString()).toBe('largest');
    expect([...tree.range({ gte: largest })].map(([, value]) => value.toString())).toEqual(['largest']);
    expectSameAsModel(tree, model, 'with the largest key');
    expect(tree.delete(largest)).toBe(true);
    model.delete(largest);
    expectSameAsModel(tree, model, 'after deleting the largest key');
  });

  it('a value of valueBytesMax + 1 bytes gets ERR_VALUE_TOO_LARGE, for a new and for an existing key', () => {
    const { tree, model } = smallTree();
    const pagesInUse = tree.stats().pagesInUse;
    const tooLarge = Buffer.alloc(valueBytesMax + 1); // zero-filled: cheap to allocate
    expectCode(() => tree.put('new-key', tooLarge), 'ERR_VALUE_TOO_LARGE', 'put new key');
    expectCode(() => tree.put('key-5', tooLarge), 'ERR_VALUE_TOO_LARGE', 'put existing key');
    expect(tree.get('new-key')).toBeUndefined();
    expect(tree.get('key-5')?.toString()).toBe('value-5');
    expect(tree.stats().pagesInUse).toBe(pagesInUse);
    expectSameAsModel(tree, model, 'after rejected values');
  });

  it('a value of exactly valueBytesMax bytes is stored and read back', () => {
    const tree = BTree.create();
    const largest = Buffer.alloc(valueBytesMax);
    // Mark a few places so a read from the wrong page or offset shows.
    for (const at of [0, 1, 4095, 4096, valueBytesMax >>> 1, valueBytesMax - 1]) largest[at] = (at % 251) + 1;
    tree.put('big', largest);
    expect(tree.get('big')?.equals(largest)).toBe(true);
    expect(checkTree(tree).entries).toBe(1);
    expect(tree.delete('big')).toBe(true);
    expect(checkTree(tree).overflowPages).toBe(0);
  });
});

describe('create options', () => {
  for (const pageSizeBytes of [1000, 5000, 65536, 2048, 0, -4096, 4096.5]) {
    it(`pageSizeBytes ${pageSizeBytes} is rejected with ERR_BAD_ARGUMENT`, () => {
      expectCode(() => BTree.create({ pageSizeBytes }), 'ERR_BAD_ARGUMENT', `pageSizeBytes ${pageSizeBytes}`);
    });
  }

  it('every power-of-two page size from 4096 to 32768 is accepted', () => {
    for (const pageSizeBytes of [4096, 8192, 16384, 32768]) {
      const tree = BTree.create({ pageSizeBytes });
      expect(tree.stats().pageSizeBytes).toBe(pageSizeBytes);
      expect(checkTree(tree).entries).toBe(0);
    }
  });

  const tooSmall: ReadonlyArray<CreateOptions> = [
    { maxBytes: -1 },
    { maxBytes: -1024 * 1024 },
    { maxBytes: 0 },
    { maxBytes: 4096 }, // one page: not even room for the arena header, meta page and root leaf
    { maxBytes: 2 * 4096 },
    { pageSizeBytes: 32768, maxBytes: 2 * 32768 },
    { pageSizeBytes: 32768, maxBytes: 8 * 4096 }, // eight small pages are one large page
  ];
  for (const options of tooSmall) {
    it(`create(${JSON.stringify(options)}) is rejected with ERR_BAD_ARGUMENT`, () => {
      expectCode(() => BTree.create(options), 'ERR_BAD_ARGUMENT', JSON.stringify(options));
    });
  }
});

describe('TreeReader.attach', () => {
  for (const [name, garbage] of [
    ['an empty object', {}],
    ['null', null],
    ['undefined', undefined],
    ['a number', 7],
    ['a string', 'handle'],
    ['a bare SharedArrayBuffer', new SharedArrayBuffer(4096)],
  ] as const) {
    it(`rejects ${name} with ERR_BAD_ARGUMENT`, () => {
      expectCode(() => TreeReader.attach(asHandle(garbage)), 'ERR_BAD_ARGUMENT', name);
    });
  }

  it('accepts a real handle, also after a structured clone (as postMessage would do)', () => {
    const { tree, model } = smallTree();
    const reader = TreeReader.attach(structuredClone(tree.share()));
    expect(reader.count).toBe(model.entries.size);
    expect(reader.get('key-7')?.toString()).toBe('value-7');
  });

  it(`rejects a handle whose SharedArrayBuffer was overwritten with garbage with ERR_CORRUPTION (seed ${seed})`, () => {
    const { tree } = smallTree();
    const handle = tree.share();
    const buffers = sharedBuffersIn(handle);
    expect(buffers.length, 'the handle contains the SharedArrayBuffer').toBeGreaterThan(0);
    // Control: the intact handle attaches, so the failure below is caused by the garbage only.
    expect(TreeReader.attach(handle).count).toBe(20);
    const random = mulberry32(seed);
    for (const sab of buffers) {
      const bytes = new Uint8Array(sab);
      for (let i = 0; i < bytes.length; i++) bytes[i] = random() & 0xff;
    }
    expectCode(() => TreeReader.attach(handle), 'ERR_CORRUPTION', 'garbage handle');
  });
});

describe('a full partition (maxBytes reached)', () => {
  const cases = [
    { pageSizeBytes: 4096, maxBytes: 1024 * 1024 },
    { pageSizeBytes: 4096, maxBytes: 3 * 1024 * 1024 }, // grows 1 MiB → 2 MiB → capped at 3 MiB
    { pageSizeBytes: 32768, maxBytes: 1024 * 1024 },
  ];
  for (const { pageSizeBytes, maxBytes } of cases) {
    it(`ERR_PARTITION_FULL keeps every successful put, and deletes make room (${pageSizeBytes}-byte pages, maxBytes ${maxBytes}, seed ${seed})`, () => {
      const random = mulberry32(seed ^ maxBytes ^ pageSizeBytes);
      const tree = BTree.create({ pageSizeBytes, maxBytes });
      const model = new Model();
      const keys: Buffer[] = [];
      const nextValue = (): Buffer => {
        const roll = random() % 100;
        if (roll < 4) return randomBytes(random, 10_000 + (random() % 30_000)); // overflow pages
        if (roll < 14) return randomBytes(random, 1000 + (random() % 2000));
        return randomBytes(random, random() % 300);
      };
      // Puts until the first ERR_PARTITION_FULL, then 300 more attempts so that many different kinds
      // of put (new key, overwrite, small, overflowing) fail at the edge. Only successes reach the model.
      let failures = 0;
      let attempts = 0;
      while (failures === 0 || attempts < 300) {
        if (failures > 0) attempts++;
        if (keys.length > 200_000) throw new Error('the partition never filled up');
        const overwrite = keys.length > 0 && random() % 8 === 0;
        const key = overwrite ? keys[random() % keys.length]! : randomBytes(random, 1 + (random() % 40));
        const value = nextValue();
        const before = model.get(key);
        try {
          tree.put(key, value);
        } catch (error) {
          if (!(error instanceof LightningError) || error.code !== 'ERR_PARTITION_FULL') throw error;
          failures++;
          // The failed put changed nothing for its own key, old value or absence alike.
          const after = tree.get(key);
          if (before === undefined) expect(after, 'a failed new key is absent').toBeUndefined();
          else expect(after?.equals(before), 'a failed overwrite keeps the old value').toBe(true);
          continue;
        }
        if (before === undefined) keys.push(key);
        model.put(key, value);
      }
      expect(failures).toBeGreaterThan(0);
      const stats = tree.stats();
      expect(stats.bytesReserved).toBeLessThanOrEqual(maxBytes);
      expect(stats.bytesMax).toBe(maxBytes);
      expectSameAsModel(tree, model, 'when full');

      // A huge overwrite of an existing key fails as well and keeps the old value.
      const victim = keys[0]!;
      const pagesInUse = stats.pagesInUse;
      expectCode(() => tree.put(victim, Buffer.alloc(2 * maxBytes, 1)), 'ERR_PARTITION_FULL', 'huge put');
      expect(tree.get(victim)?.equals(model.get(victim)!)).toBe(true);
      expect(tree.stats().pagesInUse, 'a failed put leaks no page').toBe(pagesInUse);

      // Delete the lowest three quarters of the keys: whole leaves empty out and are freed.
      const sorted = model.sorted();
      for (const [key] of sorted.slice(0, Math.floor((sorted.length * 3) / 4))) {
        expect(tree.delete(key)).toBe(true);
        model.delete(key);
      }
      expect(tree.stats().pagesInUse).toBeLessThan(pagesInUse);
      expectSameAsModel(tree, model, 'after deleting three quarters');

      // The freed space takes new entries again, including a value that needs overflow pages.
      for (let i = 0; i < 50; i++) {
        const key = Buffer.from(`new-${i}`);
        const value = i === 0 ? randomBytes(random, 3 * pageSizeBytes) : randomBytes(random, 50);
        tree.put(key, value);
        model.put(key, value);
      }
      expectSameAsModel(tree, model, 'after refilling');
    });
  }

  it('a value needing more overflow pages than remain gets ERR_PARTITION_FULL and changes nothing', () => {
    const pageSizeBytes = 4096;
    const tree = BTree.create({ pageSizeBytes, maxBytes: 1024 * 1024 });
    const model = new Model();
    const put = (key: string, value: Buffer): void => {
      tree.put(key, value);
      model.put(Buffer.from(key), value);
    };
    for (let i = 0; i < 100; i++) put(`key-${i}`, Buffer.alloc(i, i));
    put('old-inline', Buffer.from('the old inline value'));
    put('old-overflow', Buffer.alloc(100_000, 0x5a)); // ~25 overflow pages
    const before = tree.stats();
    const remaining = before.pagesMax - before.pagesInUse;
    expect(remaining).toBeGreaterThan(20);
    // Even if an overflow page carried a full page of payload, this needs more pages than remain.
    const tooLarge = Buffer.alloc((remaining + 4) * pageSizeBytes, 0x33);
    for (const key of ['new-key', 'old-inline', 'old-overflow']) {
      expectCode(() => tree.put(key, tooLarge), 'ERR_PARTITION_FULL', `put ${key}`);
      expect(tree.stats().pagesInUse, `no page leaked by the failed put of ${key}`).toBe(before.pagesInUse);
    }
    expect(tree.get('new-key')).toBeUndefined();
    expect(tree.get('old-inline')?.toString()).toBe('the old inline value');
    expect(tree.get('old-overflow')?.equals(Buffer.alloc(100_000, 0x5a))).toBe(true);
    expectSameAsModel(tree, model, 'after the failed puts');

    // Nothing leaked: a value that needs nearly every remaining page still fits (assuming an overflow
    // page header of at most 128 bytes), as a new key and then as an overwrite of the overflowing key.
    const nearlyAll = Buffer.alloc((remaining - 8) * (pageSizeBytes - 128), 0x44);
    put('new-key', nearlyAll);
    expectSameAsModel(tree, model, 'after a put of nearly every remaining page');
    expect(tree.delete('new-key')).toBe(true);
    model.delete(Buffer.from('new-key'));
    put('old-overflow', nearlyAll);
    expectSameAsModel(tree, model, 'after the puts that fit');
  });
});
