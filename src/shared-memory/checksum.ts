/**
 * 32-bit FNV-1a over 32-bit words. Used for small in-memory headers (the arena header), where it is
 * computed once at creation and verified at attach; on-disk formats use xxhash.
 */
export function checksumWords(words: ArrayLike<number>): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]! >>> 0;
    for (let shift = 0; shift < 32; shift += 8) {
      hash ^= (word >>> shift) & 0xff;
      hash = Math.imul(hash, 0x01000193);
    }
  }
  return hash >>> 0;
}
