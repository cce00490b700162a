/**
 * A page file of `pageCount` sealed pages for bench:pool, written in 16 MiB pieces: each page holds
 * its id and a pattern, so a reader can check the byte it samples.
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { pageFileName, sealPage } from '../../src/storage/page-file/page-file-format.js';
import { createPageFile } from '../../src/storage/page-file/page-file-writer.js';
import { xxhashApi } from '../../src/storage/xxhash.js';

export const benchPageSize = 4096;
/** The byte a reader samples, and what it must hold for page `pageId`. */
export const sampleAt = 100;
export function sampleByte(pageId: number): number {
  return (pageId * 31 + sampleAt) & 0xff;
}

export async function buildPageFile(dir: string, pageCount: number): Promise<void> {
  await createPageFile(dir, { pageSizeBytes: benchPageSize, partition: 0 });
  const api = await xxhashApi();
  const piecePages = 4096;
  for (let first = 1; first <= pageCount; first += piecePages) {
    const count = Math.min(piecePages, pageCount - first + 1);
    const piece = new Uint8Array(count * benchPageSize);
    for (let i = 0; i < count; i++) {
      const pageId = first + i;
      const page = piece.subarray(i * benchPageSize, (i + 1) * benchPageSize);
      page.fill(sampleByte(pageId), 32);
      sealPage(api, page, pageId);
    }
    await appendFile(path.join(dir, pageFileName), piece);
  }
}
