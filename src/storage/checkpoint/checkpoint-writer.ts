import { join } from 'node:path';
import { assert } from '../../shared-memory/assert.js';
import { compareBytes } from '../../shared-memory/bytes.js';
import { LightningError } from '../../shared-memory/errors.js';
import { keyBytesMax, valueBytesMax } from '../../shared-memory/limits.js';
import { ensureDirectory, writeFileDurably } from '../durable-file.js';
import type { LayerFileHandle } from '../file-layer.js';
import { writevFully } from '../write-fully.js';
import { type XxhashApi, xxhashApi } from '../xxhash.js';
import {
  blockTargetBytes,
  checkpointFileName,
  checkpointHeaderBytes,
  encodeBlockHeader,
  encodeFooter,
  encodeHeader,
  entryHeaderBytes,
  kHeaderChecksum,
  lsnMax,
  u32Max,
} from './checkpoint-format.js';
import { loadLz4 } from './lz4.js';

/** One entry of a checkpoint: key and value bytes. */
export type CheckpointEntry = readonly [key: Uint8Array, value: Uint8Array];
/** Entries arrive in batches so a walker can hand over a leaf's worth at a time. */
export type CheckpointBatch = readonly CheckpointEntry[];

export interface CheckpointWriteResult {
  /** The file's name inside `dir`, as a manifest records it. */
  file: string;
  /** `dir` joined with `file`. */
  path: string;
  entries: number;
  /** Size of the finished file. */
  bytes: number;
  blocks: number;
  uncompressedBytes: number;
}

/**
 * Writes one partition's entries as a checkpoint in `dir`, the partition's own directory (file names
 * carry only the start LSN, which partitions share). The file is written as
 * `checkpoint-<startLsn as 16 hex>.ckp.tmp`, fsynced, renamed to `checkpoint-<startLsn>.ckp`, and the
 * directory fsynced, so the name only ever denotes a complete, durable file; a crash leaves at most a
 * `.tmp` that readers ignore and the next cleanup removes.
 *
 * `entries` yields batches in strictly ascending key order (memcmp). Each batch is copied before the
 * next is requested, so the caller may reuse or mutate its buffers afterwards, and each block is
 * compressed on the libuv pool, so a partition owner can interleave its walk with serving writes.
 * O(total bytes); memory holds one block (about 64 KiB, or one oversized entry).
 */
export async function writeCheckpoint(
  dir: string,
  partition: number,
  startLsn: bigint,
  entries: AsyncIterable<CheckpointBatch> | Iterable<CheckpointBatch>,
): Promise<CheckpointWriteResult> {
  if (typeof dir !== 'string' || dir.length === 0) throw badArgument('dir must be a non-empty string');
  if (!Number.isInteger(partition) || partition < 0 || partition > u32Max) {
    throw badArgument(`partition must be an integer in [0, ${u32Max}], got ${String(partition)}`);
  }
  if (typeof startLsn !== 'bigint' || startLsn < 0n || startLsn > lsnMax) {
    throw badArgument(`startLsn must be a bigint in [0, 2^64), got ${String(startLsn)}`);
  }
  await ensureDirectory(dir);
  const api = await xxhashApi();
  const file = checkpointFileName(startLsn);
  const path = join(dir, file);
  // Written as `<file>.tmp` (the format's temporaryFileName), which readers ignore until the rename.
  const summary = await writeFileDurably(path, async (handle) => {
    const blocks = new BlockWriter(handle, api, encodeHeader(api, { partition, startLsn }));
    for await (const batch of entries) {
      if (!Array.isArray(batch)) throw badArgument('entries must yield arrays of [key, value] pairs');
      await blocks.addBatch(batch);
    }
    await blocks.finish();
    return blocks.summary();
  });
  return { file, path, ...summary! };
}

function badArgument(message: string): LightningError {
  return new LightningError('ERR_BAD_ARGUMENT', `writeCheckpoint: ${message}`);
}

/** Packs entries into blocks, compresses and appends them; one per checkpoint being written. */
class BlockWriter {
  readonly #handle: LayerFileHandle;
  readonly #api: XxhashApi;
  readonly #headerChecksum: number;
  /** The block being filled; reused after each flush because compression is awaited before reuse. */
  readonly #block = Buffer.allocUnsafe(blockTargetBytes);
  #blockUsedBytes = 0;
  #blockEntryCount = 0;
  /** A copy of the last key written, so order is checked even across batches the caller reuses. */
  readonly #lastKey = Buffer.allocUnsafe(keyBytesMax);
  #lastKeyLength = -1;
  #position = 0;
  #entryCount = 0;
  #blockCount = 0;
  #uncompressedBytes = 0;
  #headerPending: Buffer | null;

  constructor(handle: LayerFileHandle, api: XxhashApi, header: Buffer) {
    assert(header.length === checkpointHeaderBytes, 'header encoded whole');
    this.#handle = handle;
    this.#api = api;
    this.#headerPending = header;
    this.#headerChecksum = header.readUInt32LE(kHeaderChecksum);
  }

  async addBatch(batch: CheckpointBatch): Promise<void> {
    for (const entry of batch) {
      const [key, value] = this.#checkEntry(entry);
      const entryBytes = entryHeaderBytes + key.length + value.length;
      if (this.#blockUsedBytes > 0 && this.#blockUsedBytes + entryBytes > blockTargetBytes) {
        await this.#flushBlock();
      }
      if (entryBytes > blockTargetBytes) {
        // An oversized entry (a large value) gets a block of its own, sized to fit it exactly.
        const single = Buffer.allocUnsafe(entryBytes);
        writeEntry(single, 0, key, value);
        await this.#writeBlock(single, 1);
      } else {
        this.#blockUsedBytes = writeEntry(this.#block, this.#blockUsedBytes, key, value);
        this.#blockEntryCount++;
      }
    }
  }

  summary(): Pick<CheckpointWriteResult, 'entries' | 'bytes' | 'blocks' | 'uncompressedBytes'> {
    return {
      entries: this.#entryCount,
      bytes: this.#position,
      blocks: this.#blockCount,
      uncompressedBytes: this.#uncompressedBytes,
    };
  }

  async finish(): Promise<void> {
    if (this.#blockUsedBytes > 0) await this.#flushBlock();
    const footer = encodeFooter(
      this.#api,
      {
        blockCount: this.#blockCount,
        entryCount: this.#entryCount,
        uncompressedBytes: this.#uncompressedBytes,
      },
      this.#headerChecksum,
    );
    await this.#append([footer]);
  }

  #checkEntry(entry: CheckpointEntry): CheckpointEntry {
    if (!Array.isArray(entry) || !(entry[0] instanceof Uint8Array) || !(entry[1] instanceof Uint8Array)) {
      throw badArgument('each entry must be a [key, value] pair of Uint8Arrays');
    }
    const [key, value] = entry;
    if (key.length > keyBytesMax) {
      throw new LightningError(
        'ERR_KEY_TOO_LARGE',
        `key is ${key.length} bytes; the limit is ${keyBytesMax}`,
      );
    }
    if (value.length > valueBytesMax) {
      throw new LightningError(
        'ERR_VALUE_TOO_LARGE',
        `value is ${value.length} bytes; the limit is ${valueBytesMax}`,
      );
    }
    if (
      this.#lastKeyLength >= 0 &&
      compareBytes(this.#lastKey, 0, this.#lastKeyLength, key, 0, key.length) >= 0
    ) {
      throw badArgument(`keys must be strictly ascending; entry ${this.#entryCount + this.#blockEntryCount}`);
    }
    this.#lastKey.set(key);
    this.#lastKeyLength = key.length;
    return entry;
  }

  async #flushBlock(): Promise<void> {
    await this.#writeBlock(this.#block.subarray(0, this.#blockUsedBytes), this.#blockEntryCount);
    this.#blockUsedBytes = 0;
    this.#blockEntryCount = 0;
  }

  async #writeBlock(content: Buffer, entryCount: number): Promise<void> {
    assert(entryCount > 0 && content.length > 0, 'blocks are never empty');
    // Async compression runs on the libuv pool: the owner's event loop keeps serving writes meanwhile.
    const { compress } = await loadLz4();
    const compressed = await compress(content);
    const header = encodeBlockHeader(compressed, content.length, entryCount, this.#api);
    await this.#append([header, compressed]);
    this.#blockCount++;
    this.#entryCount += entryCount;
    this.#uncompressedBytes += content.length;
  }

  /** Appends buffers at the current position; the file header goes out with the first append. */
  async #append(buffers: Buffer[]): Promise<void> {
    if (this.#headerPending !== null) {
      buffers.unshift(this.#headerPending);
      this.#headerPending = null;
    }
    const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    await writevFully(this.#handle, buffers, this.#position);
    this.#position += total;
  }
}

/** Encodes one entry at `offset` and returns the offset after it. */
function writeEntry(target: Buffer, offset: number, key: Uint8Array, value: Uint8Array): number {
  target.writeUInt16LE(key.length, offset);
  target.writeUInt32LE(value.length, offset + 2);
  target.set(key, offset + entryHeaderBytes);
  target.set(value, offset + entryHeaderBytes + key.length);
  return offset + entryHeaderBytes + key.length + value.length;
}
