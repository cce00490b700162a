/**
 * YCSB's key choosers, ported from its Java sources (site.ycsb.generator): the zipfian generator of
 * Gray et al., the scrambled zipfian that spreads the popular items over the key space with an FNV
 * hash, the skewed 'latest' generator that favours recently inserted keys, and a uniform one. Each
 * draws from a seeded generator, so every store sees the same sequence. They run once per operation
 * while a workload is generated: no allocation, one Math.pow and one 64-bit hash per draw.
 */
import { mulberry32 } from '../lib/rng.js';

/** YCSB's ZipfianGenerator.ZIPFIAN_CONSTANT: the skew of every zipfian workload. */
export const zipfianConstant = 0.99;

const twoPow32 = 0x1_0000_0000;

/** Uniform doubles in [0, 1) from the seed (32 bits of resolution, plenty for item counts below 2^32). */
export function randomDoubles(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / twoPow32;
}

// ---------------------------------------------------------------------------------------------------
// FNV-1a 64, as YCSB's Utils.fnvhash64: the 8 little-endian bytes of the value, then Math.abs. JS has
// no 64-bit integers that are fast, so the hash is kept as two 32-bit halves.

const fnvOffsetHi = 0xcbf29ce4;
const fnvOffsetLo = 0x84222325;
/** The FNV prime is 2^40 + 0x1b3: multiplying by it is one small multiply plus a shift by 40. */
const fnvPrimeLow = 0x1b3;

/** Scratch output of fnvHash64: [hi, lo] of the last hash. */
const fnvOut = new Uint32Array(2);

/** Hashes `value` (an integer in [0, 2^53)) into fnvOut, as YCSB's fnvhash64 does for a long. */
function fnvHash64(value: number): void {
  let hi = fnvOffsetHi;
  let lo = fnvOffsetLo;
  let valueLo = value >>> 0;
  let valueHi = Math.floor(value / twoPow32) >>> 0;
  for (let i = 0; i < 8; i++) {
    const octet = valueLo & 0xff;
    valueLo = ((valueLo >>> 8) | ((valueHi & 0xff) << 24)) >>> 0;
    valueHi >>>= 8;
    lo = (lo ^ octet) >>> 0;
    // (hi:lo) * (2^40 + 0x1b3) mod 2^64. lo * 0x1b3 < 2^41 and hi * 0x1b3 < 2^41: exact in a double.
    const loProduct = lo * fnvPrimeLow;
    const carry = Math.floor(loProduct / twoPow32);
    hi = (hi * fnvPrimeLow + carry + (lo << 8)) >>> 0;
    lo = loProduct >>> 0;
  }
  // Math.abs of the signed 64-bit result (two's complement negation when the sign bit is set).
  if (hi >= 0x8000_0000) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  fnvOut[0] = hi;
  fnvOut[1] = lo;
}

/** (a * b) mod n for a, b < n < 2^32, exact: b is split in 16-bit halves so no product passes 2^53. */
function mulMod(a: number, b: number, n: number): number {
  const high = ((a * (b >>> 16)) % n) * 0x10000;
  return (high + a * (b & 0xffff)) % n;
}

/** fnvhash64(value) % n, as YCSB's ScrambledZipfianGenerator computes it. */
export function fnvHash64Mod(value: number, n: number): number {
  fnvHash64(value);
  const hiMod = fnvOut[0] % n;
  return (mulMod(hiMod, twoPow32 % n, n) + (fnvOut[1] % n)) % n;
}

/** fnvhash64(value) in decimal, as YCSB's CoreWorkload.buildKeyName writes it into a key. */
export function fnvHash64Decimal(value: number): string {
  fnvHash64(value);
  return ((BigInt(fnvOut[0]) << 32n) | BigInt(fnvOut[1])).toString();
}

// ---------------------------------------------------------------------------------------------------
// Zipfian.

/** zeta(n, theta) = sum of 1 / i^theta for i = 1..n; cached, because it costs one Math.pow per item. */
const zetaCache = new Map<string, number>();

/** Adds the terms for items from+1..to to `initial` (YCSB's incremental zeta(st, n, theta, initialsum)). */
function zetaFrom(from: number, to: number, theta: number, initial: number): number {
  let sum = initial;
  for (let i = from; i < to; i++) sum += 1 / (i + 1) ** theta;
  return sum;
}

export function zeta(items: number, theta: number): number {
  const cacheKey = `${items}:${theta}`;
  let value = zetaCache.get(cacheKey);
  if (value === undefined) {
    value = zetaFrom(0, items, theta, 0);
    zetaCache.set(cacheKey, value);
  }
  return value;
}

/**
 * Ranks in [0, items) with P(rank r) proportional to 1 / (r + 1)^theta: rank 0 is the most popular.
 * The draw is the closed form of Gray et al., "Quickly Generating Billion-Record Synthetic
 * Databases" (SIGMOD 1994), as in YCSB's ZipfianGenerator.
 */
export class ZipfianGenerator {
  readonly #theta: number;
  readonly #alpha: number;
  readonly #zeta2: number;
  readonly #random: () => number;
  #items = 0;
  #zetan = 0;
  #eta = 0;

  constructor(items: number, random: () => number, theta = zipfianConstant) {
    if (!(items >= 1 && items < twoPow32)) throw new Error(`zipfian item count ${items} out of range`);
    this.#theta = theta;
    this.#alpha = 1 / (1 - theta);
    this.#zeta2 = zetaFrom(0, 2, theta, 0);
    this.#random = random;
    this.#items = items;
    this.#zetan = zeta(items, theta);
    this.#eta = this.#etaFor(items);
  }

  get items(): number {
    return this.#items;
  }

  /** zeta(items, theta): P(rank 0) = 1 / zetan. */
  get zetan(): number {
    return this.#zetan;
  }

  /** A rank in [0, items). */
  next(): number {
    const u = this.#random();
    const uz = u * this.#zetan;
    if (uz < 1) return 0;
    if (uz < 1 + 0.5 ** this.#theta) return 1;
    const rank = Math.floor(this.#items * (this.#eta * u - this.#eta + 1) ** this.#alpha);
    // Rounding can land exactly on `items` when u is within an ulp of 1.
    return rank < this.#items ? rank : this.#items - 1;
  }

  /**
   * Grows the item count, extending zeta by the new terms only (YCSB's nextLong(itemcount) does the
   * same when its count grows): the 'latest' generator grows by one item per insert.
   */
  grow(items: number): void {
    if (items === this.#items) return;
    if (items < this.#items) throw new Error(`zipfian item count may only grow (${this.#items} -> ${items})`);
    this.#zetan = zetaFrom(this.#items, items, this.#theta, this.#zetan);
    this.#items = items;
    this.#eta = this.#etaFor(items);
  }

  #etaFor(items: number): number {
    return (1 - (2 / items) ** (1 - this.#theta)) / (1 - this.#zeta2 / this.#zetan);
  }
}

/**
 * Items in [0, items), zipfian in popularity, but with the popular items scattered over the range
 * instead of clustered at its start: item = fnvhash64(rank) % items (YCSB's ScrambledZipfianGenerator;
 * YCSB draws ranks from a fixed 10^10 items, here zeta is computed for the real item count).
 */
export class ScrambledZipfianGenerator {
  readonly #zipfian: ZipfianGenerator;
  readonly #items: number;

  constructor(items: number, random: () => number, theta = zipfianConstant) {
    this.#zipfian = new ZipfianGenerator(items, random, theta);
    this.#items = items;
  }

  next(): number {
    return fnvHash64Mod(this.#zipfian.next(), this.#items);
  }
}

/**
 * Key numbers in [0, latest], where `latest` is the newest inserted key: the newest is the most
 * popular, and popularity falls off zipfian with age (YCSB's SkewedLatestGenerator: latest minus a
 * zipfian rank over `latest` items).
 */
export class SkewedLatestGenerator {
  readonly #zipfian: ZipfianGenerator;

  constructor(latest: number, random: () => number, theta = zipfianConstant) {
    this.#zipfian = new ZipfianGenerator(Math.max(1, latest), random, theta);
  }

  next(latest: number): number {
    if (latest < 1) return 0;
    this.#zipfian.grow(latest);
    return latest - this.#zipfian.next();
  }
}

/** Integers in [min, max], all equally likely (YCSB's UniformLongGenerator). */
export class UniformGenerator {
  readonly #min: number;
  readonly #span: number;
  readonly #random: () => number;

  constructor(min: number, max: number, random: () => number) {
    if (!(max >= min)) throw new Error(`uniform range [${min}, ${max}] is empty`);
    this.#min = min;
    this.#span = max - min + 1;
    this.#random = random;
  }

  next(): number {
    return this.#min + Math.floor(this.#random() * this.#span);
  }
}
