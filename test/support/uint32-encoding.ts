import type { CustomEncoding } from '../../src/index.js';

/** A custom key encoding for the encoding tests: big-endian uint32, whose bytes sort as the numbers do. */
export const uint32: CustomEncoding<number> = {
  encode: (n) => {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(n);
    return bytes;
  },
  decode: (bytes) => bytes.readUInt32BE(0),
};
