import { LightningError } from '../../shared-memory/index.js';
import type { SnapshotSource } from '../snapshot.js';
import { type Codec, decode, type Encodings, encodeKeyCopy } from './encodings.js';

/** Most keys one getMany call takes: a bound on the work (and memory) of one synchronous call. */
export const getManyKeysMax = 1 << 20;

/** Every key of a getMany call, checked and encoded before any is read. */
export function keysToBytes(keys: unknown, codec: Codec | null): Uint8Array[] {
  if (!Array.isArray(keys)) throw new LightningError('ERR_BAD_ARGUMENT', 'getMany takes an array of keys');
  if (keys.length > getManyKeysMax) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `getMany takes at most ${getManyKeysMax} keys, got ${keys.length}: split the call`,
    );
  }
  const bytes = new Array<Uint8Array>(keys.length);
  for (let i = 0; i < keys.length; i++) bytes[i] = encodeKeyCopy(codec, keys[i], `key ${i}`);
  return bytes;
}

/** The values of `keys` at `readTimestamp`, in order, undefined where missing. O(k log n). */
export function readMany<T>(
  source: SnapshotSource,
  keys: readonly unknown[],
  readTimestamp: number,
  encodings: Encodings,
): (T | undefined)[] {
  const bytes = keysToBytes(keys, encodings.keys);
  const { readers, router } = source;
  const values = new Array<T | undefined>(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const key = bytes[i]!;
    values[i] = decode<T>(encodings.values, readers[router.partitionOf(key)]!.get(key, readTimestamp));
  }
  return values;
}
