/**
 * bench:tree — lightning-db's shared-memory B+Tree next to sorted-btree and a JS Map, same workload,
 * same run. See bench/README.md for what is measured and how each store is driven.
 *
 *   npm run bench:tree                 # 1,000,000 records
 *   npm run bench:tree -- --quick      # 100,000 records (CI smoke)
 *   npm run bench:tree -- --records 250000 --seed 7 --page-size 8192 --rounds 5 --stores lightning-db,map
 *
 * The parent process measures nothing itself: it spawns one child per store and round (so each gets a
 * fresh heap, and one store's garbage cannot slow down or inflate the next), then compares what the
 * children report.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SortedBTreeModule from 'sorted-btree';
import { parseArgumentsOrExit, parseListOf, parseOneOf, parsePositiveInteger } from './lib/args.js';
import { childScriptArgs } from './lib/child-process.js';
import { findRepoRoot } from './lib/environment.js';
import { formatCount, formatFixed, formatRatio, formatTable, hex32 } from './lib/format.js';
import { finishRun, withoutFirst } from './lib/results.js';
import { permutation, randomRecords } from './lib/rng.js';
import { rotation } from './lib/rounds.js';
import { median, spreadPercent } from './lib/stats.js';

const keyBytes = 16;
const valueBytes = 100;
const recordsDefault = 1_000_000;
const recordsQuick = 100_000;
const seedDefault = 0x5eed;
/** Gets run before the timed get phase so that every store's get path is JIT-compiled when timing starts. */
const warmupGetsMax = 20_000;
/** Three rounds: enough for a median that one noisy child (GC, another process) cannot move. */
const roundsDefault = 3;

const storeNames = ['lightning-db', 'lightning-db-pool', 'sorted-btree', 'map'] as const;
type StoreName = (typeof storeNames)[number];
const storeLabels: Record<StoreName, string> = {
  'lightning-db': 'lightning-db',
  'lightning-db-pool': 'lightning-db (pool)',
  'sorted-btree': 'sorted-btree',
  map: 'Map',
};

interface Options {
  records: number;
  seed: number;
  pageSizeBytes: number;
  /** Each round runs every store once, each in a fresh child; the table shows per-store medians. */
  rounds: number;
  stores: StoreName[];
  child: StoreName | undefined;
}

/** What a child reports on stdout, as one JSON document. */
interface StoreResult {
  store: StoreName;
  /** Set by the parent (1-based); a child always reports 0. */
  round: number;
  records: number;
  /** False for Map: its scan runs in insertion order, which is not comparable to a sorted scan. */
  ordered: boolean;
  /** Wall-clock seconds of each timed loop (the rates divide by these), and the process's CPU seconds. */
  insertSeconds: number;
  insertCpuSeconds: number;
  insertsPerSecond: number;
  getSeconds: number;
  getCpuSeconds: number;
  getsPerSecond: number;
  scanSeconds: number;
  scanCpuSeconds: number;
  scanRowsPerSecond: number;
  /** lightning-db: pagesInUse * pageSize / N. JS stores: process heap + external growth / N after gc. */
  bytesPerKey: number;
  /** lightning-db only: the SharedArrayBuffer's size / N (what the process actually reserved). */
  reservedBytesPerKey: number | null;
  /**
   * heapUsed + external growth / N after gc, for every store. For lightning-db this is only the JS-side
   * overhead: Node's memoryUsage() does not follow a growable SharedArrayBuffer as it grows.
   */
  processBytesPerKey: number;
  count: number;
  /** The first key's value read back right after the inserts equals the bytes that were put. */
  spotCheckOk: boolean;
  getChecksum: string;
  getsMissing: number;
  warmupGets: number;
  scanRows: number;
  /** Sum of every value's first 32-bit word: order-independent, so it must match across all stores. */
  scanValueSum: string;
  /** Order-dependent hash of every key's first 32-bit word; must match across the ordered stores. */
  scanOrderHash: string | null;
  notes: string;
  details: Record<string, number | string>;
}

// ---------------------------------------------------------------------------------------------------
// Checksums. They are cheap on purpose (the get fold is a Fletcher sum, two adds per byte), because they
// run inside the timed loops and the same cost is paid by every store.

/** Folds every byte of a returned value into the running get checksum (order-sensitive). */
function foldValue(hash: number, value: Uint8Array): number {
  let a = 0;
  let b = 0;
  for (let i = 0; i < value.length; i++) {
    a = (a + value[i]) | 0;
    b = (b + a) | 0;
  }
  return Math.imul(Math.imul(hash ^ a, 0x9e3779b1) ^ b ^ value.length, 0x85ebca6b);
}

function valueWord(value: Uint8Array): number {
  return (value[0] | (value[1] << 8) | (value[2] << 16) | (value[3] << 24)) >>> 0;
}

function keyWordBytes(key: Uint8Array): number {
  return ((key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]) >>> 0;
}

/** Same number as keyWordBytes for the latin1 string of the same key bytes. */
function keyWordString(key: string): number {
  return (
    ((key.charCodeAt(0) << 24) | (key.charCodeAt(1) << 16) | (key.charCodeAt(2) << 8) | key.charCodeAt(3)) >>>
    0
  );
}

interface ScanTotals {
  rows: number;
  valueSum: number;
  orderHash: number;
}

// ---------------------------------------------------------------------------------------------------
// Store drivers. Each child process uses exactly one driver, so every call site below stays monomorphic
// and the thin wrapper methods inline; what is timed is the store, not the harness.

interface Driver<K> {
  readonly ordered: boolean;
  readonly notes: string;
  /** The key in the store's native form, built outside the timed loops (see README: key forms). */
  key(raw: Buffer, index: number): K;
  /** The value as handed to put(). JS stores get an owned copy; lightning-db copies into its arena. */
  value(values: Buffer, index: number): Uint8Array;
  put(key: K, value: Uint8Array): void;
  get(key: K): Uint8Array | undefined;
  count(): number;
  /** Full scan with the store's fastest native iteration, folding each row into totals. */
  scan(): ScanTotals;
  /** Store-reported memory, when the store can report it (lightning-db). */
  memory(
    records: number,
  ): { bytesPerKey: number; reservedBytesPerKey: number; details: Record<string, number> } | null;
}

function keyOffset(index: number): number {
  return index * keyBytes;
}

/** Byte strings compare like memcmp when each byte is one latin1 UTF-16 code unit (0..255). */
function latin1Key(raw: Buffer, index: number): string {
  const start = keyOffset(index);
  return raw.toString('latin1', start, start + keyBytes);
}

/** An owned 100-byte copy: what a JS store must keep alive for each entry (pooled like any small Buffer). */
function ownedValue(values: Buffer, index: number): Buffer {
  const start = index * valueBytes;
  return Buffer.from(values.subarray(start, start + valueBytes));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type Tree = import('../src/shared-memory/tree/btree.js').BTree;

async function arenaTree(options: Options): Promise<{ tree: Tree; notes: string }> {
  // Imported lazily so that the JS stores can still be benchmarked while the tree is being built.
  const { BTree } = await import('../src/shared-memory/index.js');
  // Budget 512 bytes per record (~3x what a 16+100 byte entry should need) and raise the default 1 GiB
  // cap only when that budget exceeds it (beyond ~2M records), so default-sized runs use default options.
  const maxBytesNeeded = Math.ceil((options.records * 512) / 2 ** 20) * 2 ** 20;
  const tree = BTree.create({
    pageSizeBytes: options.pageSizeBytes,
    ...(maxBytesNeeded > 2 ** 30 ? { maxBytes: maxBytesNeeded } : {}),
  });
  return {
    tree,
    notes: `BTree.create({ pageSizeBytes: ${options.pageSizeBytes} }); keys are 16-byte Buffer views, scan is range()`,
  };
}

/**
 * The same tree in a buffer pool with a frame for every page it will need, so nothing is evicted and
 * nothing read from a file: what the pool's indirection (frame lookup, state word, owner pins) costs a
 * fully resident tree.
 */
async function pooledTree(options: Options): Promise<{ tree: Tree; notes: string }> {
  const { BTree } = await import('../src/shared-memory/index.js');
  const { BufferPool } = await import('../src/shared-memory/pool/buffer-pool.js');
  const { PooledPageSpace } = await import('../src/shared-memory/pool/pooled-page-space.js');
  // 256 bytes per record: over twice what the arena tree's pages hold per record.
  const frames = Math.max(64, Math.ceil((options.records * 256) / options.pageSizeBytes));
  const pool = BufferPool.create(
    { pageSizeBytes: options.pageSizeBytes, pagesMax: frames + 1, framesMax: frames },
    {
      load: () => {
        throw new Error('bench:tree: the pooled tree is sized never to miss');
      },
    },
  );
  return {
    tree: BTree.createOn(PooledPageSpace.forOwner(pool)),
    notes: `BTree.createOn(PooledPageSpace.forOwner(pool)), ${frames} frames of ${options.pageSizeBytes} bytes, never evicting`,
  };
}

async function lightningDriver(options: Options, pooled: boolean): Promise<Driver<Uint8Array>> {
  const { tree, notes } = pooled ? await pooledTree(options) : await arenaTree(options);
  return {
    ordered: true,
    notes,
    key: (raw, index) => {
      const start = keyOffset(index);
      return raw.subarray(start, start + keyBytes);
    },
    // A view is enough: put() copies the bytes into the SharedArrayBuffer.
    value: (values, index) => {
      const start = index * valueBytes;
      return values.subarray(start, start + valueBytes);
    },
    put: (key, value) => tree.put(key, value),
    get: (key) => tree.get(key),
    count: () => tree.count,
    scan: () => {
      let rows = 0;
      let valueSum = 0;
      let orderHash = 0;
      for (const [key, value] of tree.range()) {
        rows++;
        valueSum = (valueSum + valueWord(value)) >>> 0;
        orderHash = Math.imul(orderHash ^ keyWordBytes(key), 0x9e3779b1);
      }
      return { rows, valueSum, orderHash };
    },
    memory: (records) => {
      const stats = tree.stats();
      return {
        bytesPerKey: (stats.pagesInUse * stats.pageSizeBytes) / records,
        reservedBytesPerKey: stats.bytesReserved / records,
        details: {
          height: stats.height,
          pageSizeBytes: stats.pageSizeBytes,
          pagesInUse: stats.pagesInUse,
          pagesAllocated: stats.pagesAllocated,
          pagesFree: stats.pagesFree,
          bytesReserved: stats.bytesReserved,
        },
      };
    },
  };
}

function sortedBTreeDriver(): Driver<string> {
  // latin1 string keys with a plain `<` comparator measured fastest on this workload (1M keys, ~same
  // machine): about 10% faster than sorted-btree's default comparator on the same strings, ~1.4x faster
  // than Buffer keys with a JS byte-loop comparator, ~3x faster than Buffer.compare. See README.
  const tree = new SortedBTreeModule.default<string, Uint8Array>(undefined, compareStrings);
  return {
    ordered: true,
    notes:
      'BTree<string, Buffer>, latin1 keys, comparator (a, b) => a < b ? -1 : a > b ? 1 : 0; scan is forEachPair',
    key: latin1Key,
    value: ownedValue,
    put: (key, value) => {
      tree.set(key, value);
    },
    get: (key) => tree.get(key),
    count: () => tree.size,
    scan: () => {
      let rows = 0;
      let valueSum = 0;
      let orderHash = 0;
      // forEachPair is sorted-btree's fastest full iteration (entries() allocates an iterator result
      // and a pair per row).
      tree.forEachPair((key, value) => {
        rows++;
        valueSum = (valueSum + valueWord(value)) >>> 0;
        orderHash = Math.imul(orderHash ^ keyWordString(key), 0x9e3779b1);
      });
      return { rows, valueSum, orderHash };
    },
    memory: () => null,
  };
}

function mapDriver(): Driver<string> {
  const map = new Map<string, Uint8Array>();
  return {
    ordered: false,
    notes:
      'Map<string, Buffer>, latin1 keys; scan is map.forEach in insertion order (a Map has no key order)',
    key: latin1Key,
    value: ownedValue,
    put: (key, value) => {
      map.set(key, value);
    },
    get: (key) => map.get(key),
    count: () => map.size,
    scan: () => {
      let rows = 0;
      let valueSum = 0;
      // forEach measured faster than for..of over entries(); no order hash, the order is meaningless.
      map.forEach((value) => {
        rows++;
        valueSum = (valueSum + valueWord(value)) >>> 0;
      });
      return { rows, valueSum, orderHash: 0 };
    },
    memory: () => null,
  };
}

// ---------------------------------------------------------------------------------------------------
// Child: runs the phases for one store and prints one JSON document on stdout (errors go to stderr).

function gcAndMeasure(): number {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run with --expose-gc (the parent passes it to every child)');
  // Twice: the first pass can leave objects whose finalizers free more on the second.
  gc();
  gc();
  const usage = process.memoryUsage();
  // `external` already includes `arrayBuffers` (Node docs), so adding both would count Buffers twice.
  return usage.heapUsed + usage.external;
}

interface Clock {
  wallMs: number;
  cpu: NodeJS.CpuUsage;
}

/**
 * Wall time is what the table reports. CPU time (user + system, all of the process's threads) is kept
 * next to it because on a busy machine wall time also counts time spent waiting for a core: wall well
 * above CPU means the run was descheduled and its numbers are pessimistic.
 */
interface Elapsed {
  seconds: number;
  cpuSeconds: number;
}

function startClock(): Clock {
  return { wallMs: performance.now(), cpu: process.cpuUsage() };
}

function stopClock(clock: Clock): Elapsed {
  const wallMs = performance.now() - clock.wallMs;
  const cpu = process.cpuUsage(clock.cpu);
  return { seconds: wallMs / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function runChild(store: StoreName, options: Options): Promise<StoreResult> {
  switch (store) {
    case 'lightning-db':
      return measure(store, options, await lightningDriver(options, false));
    case 'lightning-db-pool':
      return measure(store, options, await lightningDriver(options, true));
    case 'sorted-btree':
      return measure(store, options, sortedBTreeDriver());
    case 'map':
      return measure(store, options, mapDriver());
  }
}

/**
 * Inserts all N records and returns the time the put loop took. Keys are random, so index order is a
 * random key order. Keys and values are materialised in the store's native form before the clock starts,
 * so the loop times the store and nothing else. A separate function so that the input arrays are
 * certainly unreachable (not just out of block scope) when the caller measures the store's memory.
 */
function timeInserts<K>(driver: Driver<K>, rawKeys: Buffer, rawValues: Buffer, n: number): Elapsed {
  const keys = new Array<K>(n);
  const values = new Array<Uint8Array>(n);
  for (let i = 0; i < n; i++) {
    keys[i] = driver.key(rawKeys, i);
    values[i] = driver.value(rawValues, i);
  }
  const clock = startClock();
  for (let i = 0; i < n; i++) driver.put(keys[i], values[i]);
  return stopClock(clock);
}

function measure<K>(store: StoreName, options: Options, driver: Driver<K>): StoreResult {
  const n = options.records;
  // Same seeds in every child: identical keys, values and orders for every store.
  const rawKeys = randomRecords(n, keyBytes, options.seed);
  const rawValues = randomRecords(n, valueBytes, options.seed + 1);
  const getOrder = permutation(n, options.seed + 2);
  const warmupOrder = permutation(n, options.seed + 3);
  const memoryBefore = gcAndMeasure();

  const inserted = timeInserts(driver, rawKeys, rawValues, n);
  // The input arrays died with timeInserts' frame: what is still reachable is what the store keeps.
  const memoryAfter = gcAndMeasure();
  // rawValues must stay reachable until after memoryAfter: once V8 optimises this function (OSR in the
  // loops above) a local with no later use can be collected, and its N * 100 bytes would then be
  // subtracted from the store's memory. This read-your-write spot check is that later use.
  const firstValue = driver.get(driver.key(rawKeys, 0));
  const spotCheckOk =
    firstValue !== undefined && Buffer.compare(firstValue, rawValues.subarray(0, valueBytes)) === 0;
  const count = driver.count();
  const storeMemory = driver.memory(n);
  const processBytesPerKey = (memoryAfter - memoryBefore) / n;

  // Warm-up gets on their own key objects, so that no timed key has its string hash computed yet.
  const warmupGets = Math.min(n, warmupGetsMax);
  let warmupChecksum = 0;
  {
    const keys = new Array<K>(warmupGets);
    for (let i = 0; i < warmupGets; i++) keys[i] = driver.key(rawKeys, warmupOrder[i]);
    for (let i = 0; i < warmupGets; i++) {
      const value = driver.get(keys[i]);
      if (value !== undefined) warmupChecksum = foldValue(warmupChecksum, value);
    }
  }

  // Random gets of every key in a different order, each on a fresh key object (as if it came off the
  // wire); each value is folded into the checksum so the work is observable and comparable.
  let got: Elapsed;
  let getChecksum = 0;
  let getsMissing = 0;
  {
    const keys = new Array<K>(n);
    for (let i = 0; i < n; i++) keys[i] = driver.key(rawKeys, getOrder[i]);
    const clock = startClock();
    for (let i = 0; i < n; i++) {
      const value = driver.get(keys[i]);
      if (value === undefined) getsMissing++;
      else getChecksum = foldValue(getChecksum, value);
    }
    got = stopClock(clock);
  }

  const scanClock = startClock();
  const scan = driver.scan();
  const scanned = stopClock(scanClock);

  return {
    store,
    round: 0,
    records: n,
    ordered: driver.ordered,
    insertSeconds: inserted.seconds,
    insertCpuSeconds: inserted.cpuSeconds,
    insertsPerSecond: n / inserted.seconds,
    getSeconds: got.seconds,
    getCpuSeconds: got.cpuSeconds,
    getsPerSecond: n / got.seconds,
    scanSeconds: scanned.seconds,
    scanCpuSeconds: scanned.cpuSeconds,
    scanRowsPerSecond: scan.rows / scanned.seconds,
    bytesPerKey: storeMemory === null ? processBytesPerKey : storeMemory.bytesPerKey,
    reservedBytesPerKey: storeMemory === null ? null : storeMemory.reservedBytesPerKey,
    processBytesPerKey,
    count,
    spotCheckOk,
    getChecksum: hex32(getChecksum),
    getsMissing,
    warmupGets,
    scanRows: scan.rows,
    scanValueSum: hex32(scan.valueSum),
    scanOrderHash: driver.ordered ? hex32(scan.orderHash) : null,
    notes: driver.notes,
    // The warm-up checksum is reported only so that the warm-up loop has an observable result.
    details: { ...(storeMemory?.details ?? {}), warmupChecksum: hex32(warmupChecksum) },
  };
}

// ---------------------------------------------------------------------------------------------------
// Parent: spawn the children, check their answers agree, print and save the comparison.

const thisFile = fileURLToPath(import.meta.url);
/**
 * This file runs either as bench/tree.ts under tsx or compiled as dist/bench/tree.js, so the repository
 * root is found by walking up to package.json rather than assumed to be the parent directory.
 */
const repoRoot = findRepoRoot(path.dirname(thisFile));

function runStoreInChild(store: StoreName, round: number, options: Options): StoreResult | string {
  const args = [
    ...childScriptArgs(thisFile),
    '--child',
    store,
    '--records',
    String(options.records),
    '--seed',
    String(options.seed),
    '--page-size',
    String(options.pageSizeBytes),
  ];
  const child = spawnSync(process.execPath, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 16 * 2 ** 20,
  });
  if (child.error !== undefined) return `could not start: ${child.error.message}`;
  if (child.status !== 0) return `exited with ${child.status ?? child.signal}`;
  try {
    return { ...(JSON.parse(child.stdout) as StoreResult), round };
  } catch {
    return `printed something that is not JSON: ${child.stdout.slice(0, 200)}`;
  }
}

function label(result: StoreResult): string {
  return `${storeLabels[result.store]} (round ${result.round})`;
}

/** Returns the problems found; every one is a wrong answer from some store, never a slow one. */
function checkAgreement(results: StoreResult[], records: number): string[] {
  const problems: string[] = [];
  for (const result of results) {
    if (result.count !== records)
      problems.push(`${label(result)}: count is ${result.count}, expected ${records}`);
    if (!result.spotCheckOk)
      problems.push(`${label(result)}: the first key's value did not read back as put`);
    if (result.getsMissing !== 0)
      problems.push(`${label(result)}: ${result.getsMissing} gets returned undefined`);
    if (result.scanRows !== records) {
      problems.push(`${label(result)}: scan saw ${result.scanRows} rows, expected ${records}`);
    }
  }
  const differing = (
    pick: (result: StoreResult) => string | null,
    what: string,
    among: StoreResult[],
  ): void => {
    const distinct = new Set(among.map(pick));
    if (distinct.size > 1) {
      const listing = among.map((result) => `${label(result)}=${pick(result)}`).join(', ');
      problems.push(`${what} MISMATCH: ${listing}`);
    }
  };
  differing((result) => result.getChecksum, 'get checksum', results);
  differing((result) => result.scanValueSum, 'scan value sum', results);
  differing(
    (result) => result.scanOrderHash,
    'scan order hash',
    results.filter((result) => result.ordered),
  );
  return problems;
}

/** One store's rounds reduced to medians; `spread` makes run-to-run noise visible next to the ratios. */
interface StoreSummary {
  store: StoreName;
  ordered: boolean;
  rounds: number;
  insertsPerSecond: number;
  getsPerSecond: number;
  scanRowsPerSecond: number;
  bytesPerKey: number;
  reservedBytesPerKey: number | null;
  /** Largest (max - min) / median over the three throughput columns, in percent. */
  spreadPercent: number;
  /** The first round's full result, for the checksum table (the checks cover every round). */
  first: StoreResult;
}

function summarize(store: StoreName, results: StoreResult[]): StoreSummary | undefined {
  const mine = results.filter((result) => result.store === store);
  const first = mine[0];
  if (first === undefined) return undefined;
  const spread = (pick: (result: StoreResult) => number): number => spreadPercent(mine.map(pick));
  const reserved = mine.flatMap((result) =>
    result.reservedBytesPerKey === null ? [] : [result.reservedBytesPerKey],
  );
  return {
    store,
    ordered: first.ordered,
    rounds: mine.length,
    insertsPerSecond: median(mine.map((result) => result.insertsPerSecond)),
    getsPerSecond: median(mine.map((result) => result.getsPerSecond)),
    scanRowsPerSecond: median(mine.map((result) => result.scanRowsPerSecond)),
    bytesPerKey: median(mine.map((result) => result.bytesPerKey)),
    reservedBytesPerKey: reserved.length === 0 ? null : median(reserved),
    spreadPercent: Math.max(
      spread((result) => result.insertsPerSecond),
      spread((result) => result.getsPerSecond),
      spread((result) => result.scanRowsPerSecond),
    ),
    first,
  };
}

function printSummaries(summaries: StoreSummary[], rounds: number): void {
  const rows = summaries.map((summary) => [
    storeLabels[summary.store],
    formatCount(summary.insertsPerSecond),
    formatCount(summary.getsPerSecond),
    `${formatCount(summary.scanRowsPerSecond)}${summary.ordered ? '' : ' *'}`,
    formatFixed(summary.bytesPerKey, 1),
    summary.reservedBytesPerKey === null ? '-' : formatFixed(summary.reservedBytesPerKey, 1),
    summary.rounds > 1 ? `${formatFixed(summary.spreadPercent, 0)}%` : '-',
  ]);
  console.log(`median of ${rounds} round${rounds === 1 ? '' : 's'} per store`);
  console.log(
    formatTable(
      ['store', 'inserts/s', 'gets/s', 'scan rows/s', 'bytes/key', 'reserved/key', 'spread'],
      rows,
      'lrrrrrr',
    ),
  );
  if (summaries.some((summary) => !summary.ordered)) {
    console.log('* Map has no key order: its scan iterates entries in insertion order, not sorted.');
  }
  console.log(
    'bytes/key: lightning-db = pagesInUse * pageSize / N (reserved/key = SharedArrayBuffer size / N);',
  );
  console.log(
    '           JS stores = growth of heapUsed + external after gc / N (keys, values and structure).',
  );
  console.log('spread: largest (max - min) / median across rounds of the three throughput columns (noise).');

  const ours = summaries.find((summary) => summary.store === 'lightning-db');
  const others = summaries.filter((summary) => summary.store !== 'lightning-db');
  if (ours !== undefined && others.length > 0) {
    console.log(
      '\nlightning-db ÷ other: throughput > 1.00x means lightning-db is faster; bytes/key < 1.00x means smaller.',
    );
    const ratioRows = others.map((other) => [
      `vs ${storeLabels[other.store]}`,
      formatRatio(ours.insertsPerSecond / other.insertsPerSecond),
      formatRatio(ours.getsPerSecond / other.getsPerSecond),
      `${formatRatio(ours.scanRowsPerSecond / other.scanRowsPerSecond)}${other.ordered ? '' : ' *'}`,
      formatRatio(ours.bytesPerKey / other.bytesPerKey),
    ]);
    console.log(
      formatTable(['ratio', 'inserts/s', 'gets/s', 'scan rows/s', 'bytes/key'], ratioRows, 'lrrrr'),
    );
  }

  console.log(
    '\nchecksums (get checksum and scan value sum must match across stores and rounds, order hash across sorted ones)',
  );
  console.log(
    formatTable(
      ['store', 'count', 'get checksum', 'missing', 'scan rows', 'scan value sum', 'scan order hash'],
      summaries.map(({ first }) => [
        storeLabels[first.store],
        formatCount(first.count),
        first.getChecksum,
        String(first.getsMissing),
        formatCount(first.scanRows),
        first.scanValueSum,
        first.scanOrderHash ?? 'n/a (unordered)',
      ]),
      'lrrrrrr',
    ),
  );
}

function phaseTimes(wallSeconds: number, cpuSeconds: number): string {
  return `${wallSeconds.toFixed(2)} s (cpu ${cpuSeconds.toFixed(2)} s)`;
}

async function runParent(options: Options): Promise<number> {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const meta = {
    records: options.records,
    keyBytes,
    valueBytes,
    seed: options.seed,
    pageSizeBytes: options.pageSizeBytes,
    rounds: options.rounds,
    warmupGets: Math.min(options.records, warmupGetsMax),
    node: process.version,
    cpu,
    cpus: os.cpus().length,
    // Recorded because other work on the machine is the main source of noise between runs.
    loadAverage1m: os.loadavg()[0],
    platform: `${process.platform} ${process.arch}`,
    startedAt: new Date().toISOString(),
  };
  console.log('bench:tree — lightning-db shared-memory B+Tree vs sorted-btree vs Map');
  console.log(
    `records ${formatCount(meta.records)}, keys ${keyBytes} random bytes, values ${valueBytes} bytes, ` +
      `seed ${meta.seed}, lightning-db page size ${meta.pageSizeBytes}, warm-up ${formatCount(meta.warmupGets)} gets`,
  );
  console.log(
    `node ${meta.node}, ${cpu} (${meta.cpus} CPUs), ${meta.platform}, ` +
      `load average ${formatFixed(meta.loadAverage1m, 2)} at start`,
  );
  console.log(
    `each store runs in a fresh child process, ${options.rounds} round(s), store order rotated per round`,
  );
  console.log(
    'per round: wall seconds of each timed phase (cpu = process CPU seconds; wall >> cpu means contention)\n',
  );

  const results: StoreResult[] = [];
  const failures: string[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const store of rotation(options.stores, round)) {
      const outcome = runStoreInChild(store, round, options);
      if (typeof outcome === 'string') {
        failures.push(`${storeLabels[store]} (round ${round}): ${outcome}`);
        console.log(`  round ${round} ${storeLabels[store]}: FAILED, ${outcome}`);
      } else {
        results.push(outcome);
        console.log(
          `  round ${round} ${storeLabels[store]}: ` +
            `insert ${phaseTimes(outcome.insertSeconds, outcome.insertCpuSeconds)}, ` +
            `get ${phaseTimes(outcome.getSeconds, outcome.getCpuSeconds)}, ` +
            `scan ${phaseTimes(outcome.scanSeconds, outcome.scanCpuSeconds)}`,
        );
      }
    }
  }
  const summaries = options.stores.flatMap((store) => summarize(store, results) ?? []);
  console.log('');
  printSummaries(summaries, options.rounds);

  const problems = [...failures, ...checkAgreement(results, options.records)];
  return finishRun(repoRoot, 'tree', meta.startedAt, 'the stores disagree or a store failed', problems, {
    meta,
    summaries: withoutFirst(summaries),
    results,
  });
}

// ---------------------------------------------------------------------------------------------------
// Arguments.

function parseArguments(argv: string[]): Options {
  const options: Options = {
    records: recordsDefault,
    seed: seedDefault,
    pageSizeBytes: 4096,
    rounds: roundsDefault,
    stores: [...storeNames],
    child: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--quick':
        options.records = recordsQuick;
        break;
      case '--records':
        options.records = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--seed':
        options.seed = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--page-size':
        options.pageSizeBytes = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--rounds':
        options.rounds = parsePositiveInteger(flag, argv[++i]);
        break;
      case '--stores':
        options.stores = parseListOf('store', storeNames, argv[++i]);
        break;
      case '--child':
        options.child = parseOneOf('store', storeNames, argv[++i]);
        break;
      default:
        throw new Error(
          `unknown argument ${flag}; usage: tree.ts [--quick] [--records N] [--seed S] [--page-size B] [--rounds R] ` +
            `[--stores ${storeNames.join(',')}]`,
        );
    }
  }
  return options;
}

const options = parseArgumentsOrExit(parseArguments);
if (options.child === undefined) {
  process.exitCode = await runParent(options);
} else {
  const result = await runChild(options.child, options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
