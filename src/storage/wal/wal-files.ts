import { join } from 'node:path';
import { assert } from '../../shared-memory/assert.js';
import { LightningError } from '../../shared-memory/errors.js';
import { ensureDirectory, readdirIfExists, syncDirectory } from '../durable-file.js';
import { fileLayer, type LayerFileHandle } from '../file-layer.js';
import { type LogId, parseSegmentFileName, type SegmentName, segmentBytesMax } from './wal-format.js';

/** Directory fsync is shared with the other on-disk formats. */
export { ensureDirectory, syncDirectory };

/**
 * The file-system side of the log directory: listing its segments by log, reading one whole, and
 * making directory entries durable. Nothing here knows about records.
 */

export interface SegmentFile {
  /** Absolute or caller-relative path: `join(dir, fileName)`. */
  readonly path: string;
  readonly fileName: string;
  /** The log and ordinal the file name claims; the header must agree. */
  readonly name: SegmentName;
}

/** One log's segments in the directory, in ordinal order. */
export interface LogFiles {
  readonly log: LogId;
  readonly segments: readonly SegmentFile[];
}

/**
 * What a segment holds, as far as removing it is concerned: the last LSN of each partition with
 * records in it. A segment can go once every one of those partitions checkpointed past that LSN.
 */
export interface SegmentContents {
  readonly path: string;
  readonly log: LogId;
  readonly ordinal: number;
  readonly lastLsns: ReadonlyMap<number, number>;
}

/**
 * The segments of a log directory, sorted by run epoch, worker and ordinal. Other files are
 * ignored. A directory that does not exist holds no log.
 */
export async function listSegments(dir: string): Promise<SegmentFile[]> {
  const names = await readdirIfExists(dir);
  const segments: SegmentFile[] = [];
  for (const fileName of names) {
    const name = parseSegmentFileName(fileName);
    if (name !== null) segments.push({ path: join(dir, fileName), fileName, name });
  }
  // Fixed-width hex names sort like their numbers, but compare the numbers to say what is meant.
  return segments.sort(
    (a, b) => a.name.epoch - b.name.epoch || a.name.worker - b.name.worker || a.name.ordinal - b.name.ordinal,
  );
}

/** The logs of a directory, oldest run first, each with its segments in order. */
export async function listLogs(dir: string): Promise<LogFiles[]> {
  const logs: { log: LogId; segments: SegmentFile[] }[] = [];
  for (const segment of await listSegments(dir)) {
    const last = logs.at(-1);
    if (
      last !== undefined &&
      last.log.epoch === segment.name.epoch &&
      last.log.worker === segment.name.worker
    ) {
      last.segments.push(segment);
    } else {
      logs.push({ log: { epoch: segment.name.epoch, worker: segment.name.worker }, segments: [segment] });
    }
  }
  return logs;
}

/** Deletes a file; one that is already gone is fine (another owner may have removed it first). */
export async function removeFileIfExists(path: string): Promise<boolean> {
  try {
    await fileLayer().unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Size of a file in bytes, or -1 if it does not exist. */
export async function fileSizeBytes(path: string): Promise<number> {
  try {
    const handle = await fileLayer().open(path, 'r');
    try {
      return (await handle.stat()).size;
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw error;
  }
}

/**
 * Reads a whole segment into one Buffer. This is deliberate: a segment is bounded by
 * `segmentBytesMax` (its target size plus one flush), checksums are verified over whole records,
 * and deciding whether a bad record is a torn tail needs to look at everything after it. A file
 * larger than the bound was not written by a writer of this format and is reported as damage
 * before anything is allocated.
 */
export async function readSegmentFile(path: string): Promise<Buffer> {
  const handle = await fileLayer().open(path, 'r');
  try {
    const sizeBytes = (await handle.stat()).size;
    if (sizeBytes > segmentBytesMax) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `${path} at byte 0: segment is ${sizeBytes} bytes, more than any writer produces (${segmentBytesMax})`,
      );
    }
    const bytes = Buffer.allocUnsafe(sizeBytes);
    let filled = 0;
    while (filled < sizeBytes) {
      const { bytesRead } = await handle.read(bytes, filled, sizeBytes - filled, filled);
      if (bytesRead === 0) break; // The file shrank since stat: what is there is all there is.
      filled += bytesRead;
    }
    return bytes.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** Reads at most `bytes` bytes from the start of a file (a segment header). */
export async function readFilePrefix(path: string, bytes: number): Promise<Buffer> {
  const handle = await fileLayer().open(path, 'r');
  try {
    const prefix = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(prefix, 0, bytes, 0);
    return prefix.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Writes `bytes` bytes of `buffer` at `position` with one positioned write call. A regular file takes
 * the whole buffer at once unless something is wrong (say the disk filled mid-write); then the rest
 * goes in further calls, which fail with the real error if the condition persists.
 */
export async function writeFully(
  handle: LayerFileHandle,
  buffer: Buffer,
  bytes: number,
  position: number,
): Promise<void> {
  let written = 0;
  while (written < bytes) {
    const result = await handle.write(buffer, written, bytes - written, position + written);
    assert(result.bytesWritten > 0, 'write(2) on a regular file makes progress or fails');
    written += result.bytesWritten;
  }
}
