/**
 * Seeded pseudo-random numbers for the benchmarks. Every child process regenerates the same keys,
 * values and orders from the seed, so the stores see identical workloads and their checksums must agree.
 */

/** mulberry32: tiny, fast, good enough for benchmark data (not for anything security related). */
export function mulberry32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * `count` records of `width` bytes each in one Buffer, filled from the seed. One big allocation keeps
 * the raw workload compact, so it adds little to the heap the JS stores are measured against.
 * `width` must be a multiple of 4 (we fill 32-bit words).
 */
export function randomRecords(count: number, width: number, seed: number): Buffer {
  if (width % 4 !== 0) throw new Error(`record width ${width} is not a multiple of 4`);
  // Buffer.alloc above the pool size gets its own ArrayBuffer at offset 0, so the word view is aligned.
  const bytes = Buffer.alloc(count * width);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const next = mulberry32(seed);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return bytes;
}

/** A random permutation of 0..count-1 (Fisher-Yates). */
export function permutation(count: number, seed: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const next = mulberry32(seed);
  for (let i = count - 1; i > 0; i--) {
    // Multiply instead of modulo: avoids modulo bias for large counts and is cheaper.
    const j = Math.floor((next() / 0x1_0000_0000) * (i + 1));
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  return order;
}
