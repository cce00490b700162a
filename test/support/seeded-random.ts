/**
 * Seeded randomness shared by the randomized tests: the seed comes from LIGHTNING_SEED (or a per-file
 * default), and every random choice comes from mulberry32, so a failure replays exactly from the seed
 * its test prints.
 */

/**
 * The seed for a test file: LIGHTNING_SEED (decimal or 0x-hex) when set, `defaultSeed` when unset or
 * blank. Any safe integer is accepted, negative ones included, and reduced to an unsigned 32-bit value.
 */
export function seedFromEnv(defaultSeed: number): number {
  const raw = process.env.LIGHTNING_SEED;
  if (raw === undefined || raw.trim() === '') return defaultSeed >>> 0;
  const parsed = Number(raw);
  if (!Number.isSafeInteger(parsed)) throw new Error(`LIGHTNING_SEED must be an integer, got ${raw}`);
  return parsed >>> 0;
}

/** mulberry32: small, fast, and the same sequence of uint32s on every platform for a given seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** `length` random bytes, one call of `random` (a uint32 source such as mulberry32) per byte. */
export function randomBytes(random: () => number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = random() & 0xff;
  return bytes;
}

/** Fisher–Yates shuffle in place, one call of `random` (a uint32 source) per position. */
export function shuffle<T>(items: { length: number; [index: number]: T }, random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random() % (i + 1);
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
}
