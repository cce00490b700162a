/**
 * XXH32 (seed 0) of a byte array, in JavaScript: the reference algorithm (xxhash.h) on Math.imul.
 *
 * Written here rather than taken from xxhash-wasm because routing hashes every key of every read and
 * write: xxhash-wasm's h32Raw first copies the key into the wasm module's memory (about 1.4x the
 * time of this on 23-byte keys), and the JavaScript ports on npm convert through strings or
 * allocate. test/partition-router.test.ts checks it against xxhash-wasm over seeded random inputs.
 */
const prime1 = 0x9e3779b1 | 0;
const prime2 = 0x85ebca77 | 0;
const prime3 = 0xc2b2ae3d | 0;
const prime4 = 0x27d4eb2f | 0;
const prime5 = 0x165667b1 | 0;

function read32(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

function round(accumulator: number, input: number): number {
  return Math.imul(rotateLeft((accumulator + Math.imul(input, prime2)) | 0, 13), prime1);
}

/** xxh32(bytes, seed 0) as an unsigned 32-bit integer. */
export function xxh32(bytes: Uint8Array): number {
  const length = bytes.length;
  let at = 0;
  let hash: number;
  if (length >= 16) {
    let v1 = (prime1 + prime2) | 0;
    let v2 = prime2;
    let v3 = 0;
    let v4 = -prime1 | 0;
    for (const last = length - 16; at <= last; at += 16) {
      v1 = round(v1, read32(bytes, at));
      v2 = round(v2, read32(bytes, at + 4));
      v3 = round(v3, read32(bytes, at + 8));
      v4 = round(v4, read32(bytes, at + 12));
    }
    hash = (rotateLeft(v1, 1) + rotateLeft(v2, 7) + rotateLeft(v3, 12) + rotateLeft(v4, 18)) | 0;
  } else {
    hash = prime5;
  }
  hash = (hash + length) | 0;
  for (; at + 4 <= length; at += 4) {
    hash = Math.imul(rotateLeft((hash + Math.imul(read32(bytes, at), prime3)) | 0, 17), prime4);
  }
  for (; at < length; at++) {
    hash = Math.imul(rotateLeft((hash + Math.imul(bytes[at]!, prime5)) | 0, 11), prime1);
  }
  hash ^= hash >>> 15;
  hash = Math.imul(hash, prime2);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, prime3);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
