import { type FileHandle, open } from 'node:fs/promises';
import { keyBytesMax, valueBytesMax } from '../../shared-memory/limits.js';
import { type XxhashApi, xxhashApi } from '../xxhash.js';
import {
  type BlockHeader,
  blockBytesMax,
  blockHeaderBytes,
  type CheckpointFooter,
  type CheckpointHeader,
  checkpointFooterBytes,
  checkpointHeaderBytes,
  compressedBytesMax,
  corruption,
  decodeBlockHeader,
  decodeFooter,
  decodeHeader,
  entryHeaderBytes,
  incomplete,
  lz4SizePrefixBytes,
} from './checkpoint-format.js';
import { loadLz4 } from './lz4.js';

/** What a checkpoint's header and footer say, both verified. */
export interface CheckpointInfo extends CheckpointHeader, CheckpointFooter {
  fileBytes: number;
}

interface OpenCheckpoint {
  handle: FileHandle;
  api: XxhashApi;
  info: CheckpointInfo;
}

/**
 * Reads and verifies a checkpoint's header and footer without reading its blocks: enough to know
 * which partition and WAL position it covers and that it was completely written. O(1).
 * Throws ERR_CORRUPTION (a bad header, or "incomplete checkpoint" without a valid footer) or
 * ERR_FORMAT_VERSION.
 */
export async function readCheckpointHeader(file: string): Promise<CheckpointInfo> {
  const { handle, info } = await openCheckpoint(file);
  await handle.close();
  return info;
}

/**
 * Streams a checkpoint's entries in key order, one batch per block. The header and footer are
 * verified before the first batch, so a truncated file fails before it yields anything; each block is
 * verified (checksum, lengths, entry count, key order) before it is yielded, and the footer's totals
 * after the last. A corrupt block in the middle therefore fails after earlier batches were yielded:
 * a caller loading a partition must discard what it loaded when the iteration throws.
 *
 * Keys and values are views into the block's decompressed buffer (no copy per entry); holding one
 * keeps its block's memory alive. Decompression runs on the libuv pool. O(file bytes).
 */
export async function* readCheckpoint(file: string): AsyncGenerator<[Buffer, Buffer][], void, undefined> {
  const { handle, api, info } = await openCheckpoint(file);
  try {
    const { uncompress } = await loadLz4();
    const end = info.fileBytes - checkpointFooterBytes;
    let offset = checkpointHeaderBytes;
    let blockCount = 0;
    let entryCount = 0;
    let uncompressedBytes = 0;
    let lastKey: Buffer | null = null;
    // The next block's header is read together with the previous block's body: one read per block.
    let headerBytes =
      offset < end ? await readExactly(handle, offset, Math.min(blockHeaderBytes, end - offset), file) : null;
    while (headerBytes !== null) {
      const where = `block ${blockCount}`;
      if (headerBytes.length < blockHeaderBytes)
        throw corruption(file, offset, `${where}: header overlaps the footer`);
      const header = decodeBlockHeader(headerBytes);
      const bodyStart = offset + blockHeaderBytes;
      checkBlockHeader(header, end - bodyStart, file, offset, where);
      const bodyEnd = bodyStart + header.compressedBytes;
      const lookahead = Math.min(blockHeaderBytes, end - bodyEnd);
      const body = await readExactly(handle, bodyStart, header.compressedBytes + lookahead, file);
      const compressed = body.subarray(0, header.compressedBytes);
      if (api.h32Raw(compressed) !== header.checksum)
        throw corruption(file, offset, `${where}: checksum mismatch`);
      if (compressed.readUInt32LE(0) !== header.uncompressedBytes) {
        throw corruption(file, offset, `${where}: uncompressed length disagrees with the lz4 size prefix`);
      }
      let content: Buffer;
      try {
        content = await uncompress(compressed);
      } catch (error) {
        throw corruption(file, offset, `${where}: lz4 data does not decode`, error);
      }
      if (content.length !== header.uncompressedBytes) {
        throw corruption(
          file,
          offset,
          `${where}: decoded to ${content.length} bytes, not ${header.uncompressedBytes}`,
        );
      }
      const batch = decodeEntries(content, header.entryCount, lastKey);
      if (typeof batch === 'string') throw corruption(file, offset, `${where}: ${batch}`);
      lastKey = batch[batch.length - 1]![0];
      blockCount++;
      entryCount += batch.length;
      uncompressedBytes += content.length;
      offset = bodyEnd;
      headerBytes = lookahead > 0 ? body.subarray(header.compressedBytes) : null;
      yield batch;
    }
    if (
      blockCount !== info.blockCount ||
      entryCount !== info.entryCount ||
      uncompressedBytes !== info.uncompressedBytes
    ) {
      throw corruption(
        file,
        end,
        `footer says ${info.blockCount} blocks, ${info.entryCount} entries, ${info.uncompressedBytes} bytes; ` +
          `the file holds ${blockCount}, ${entryCount}, ${uncompressedBytes}`,
      );
    }
  } finally {
    await handle.close();
  }
}

/** Reads a whole checkpoint, verifying everything readCheckpoint verifies, and returns its info. */
export async function verifyCheckpoint(file: string): Promise<CheckpointInfo> {
  for await (const _batch of readCheckpoint(file)) {
    // Reading is the verification; the entries themselves are not needed.
  }
  return readCheckpointHeader(file);
}

async function openCheckpoint(file: string): Promise<OpenCheckpoint> {
  const api = await xxhashApi();
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < checkpointHeaderBytes) throw incomplete(file, `${size} bytes is shorter than its header`);
    const header = decodeHeader(api, await readExactly(handle, 0, checkpointHeaderBytes, file), file);
    if (size < checkpointHeaderBytes + checkpointFooterBytes) {
      throw incomplete(file, `${size} bytes is too short for a footer`);
    }
    const footerBytes = await readExactly(handle, size - checkpointFooterBytes, checkpointFooterBytes, file);
    const footer = decodeFooter(api, footerBytes, header.checksum, file);
    const info: CheckpointInfo = {
      partition: header.partition,
      startLsn: header.startLsn,
      ...footer,
      fileBytes: size,
    };
    return { handle, api, info };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Bounds every block header field before it sizes a read or an allocation, so a corrupt length is
 * reported as corruption instead of attempting a multi-gigabyte read.
 */
function checkBlockHeader(
  header: BlockHeader,
  roomBytes: number,
  file: string,
  offset: number,
  where: string,
): void {
  if (header.uncompressedBytes === 0 || header.uncompressedBytes > blockBytesMax) {
    throw corruption(file, offset, `${where}: uncompressed length ${header.uncompressedBytes} out of range`);
  }
  if (header.entryCount === 0 || header.entryCount * entryHeaderBytes > header.uncompressedBytes) {
    throw corruption(file, offset, `${where}: entry count ${header.entryCount} out of range`);
  }
  if (
    header.compressedBytes <= lz4SizePrefixBytes ||
    header.compressedBytes > compressedBytesMax(header.uncompressedBytes) ||
    header.compressedBytes > roomBytes
  ) {
    throw corruption(file, offset, `${where}: compressed length ${header.compressedBytes} out of range`);
  }
}

/**
 * Splits a block's content into entries, checking that they fill it exactly and that keys ascend
 * strictly (also across blocks, from `lastKey`). Returns the reason as a string when they do not.
 */
function decodeEntries(
  content: Buffer,
  entryCount: number,
  lastKey: Buffer | null,
): [Buffer, Buffer][] | string {
  const batch: [Buffer, Buffer][] = [];
  let previous = lastKey;
  let at = 0;
  for (let i = 0; i < entryCount; i++) {
    if (content.length - at < entryHeaderBytes) return `entry ${i} header runs past the block`;
    const keyLength = content.readUInt16LE(at);
    const valueLength = content.readUInt32LE(at + 2);
    if (keyLength > keyBytesMax || valueLength > valueBytesMax) return `entry ${i} exceeds the size limits`;
    const keyStart = at + entryHeaderBytes;
    const valueStart = keyStart + keyLength;
    at = valueStart + valueLength;
    if (at > content.length) return `entry ${i} runs past the block`;
    const key = content.subarray(keyStart, valueStart);
    if (previous !== null && previous.compare(key) >= 0) return `entry ${i} is out of key order`;
    batch.push([key, content.subarray(valueStart, at)]);
    previous = key;
  }
  if (at !== content.length) return `${content.length - at} bytes left after ${entryCount} entries`;
  return batch;
}

/** Reads exactly `length` bytes at `position`; a file that ends early was truncated while open. */
async function readExactly(
  handle: FileHandle,
  position: number,
  length: number,
  file: string,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw incomplete(file, `the file ends before byte ${position + length}`);
    done += bytesRead;
  }
  return buffer;
}
