import { once } from 'node:events';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LightningError } from '../../shared-memory/index.js';

/**
 * Line output for commands that may write millions of lines (scan, dump): lines are gathered into
 * chunks of about 64 KiB, and each chunk is written with back-pressure, so memory stays bounded
 * whatever the reader's speed. Only a chunk write is awaited, never a line.
 */

const chunkChars = 64 * 1024;

export interface TextSink {
  write(text: string): Promise<void>;
}

/** stdout, waiting for 'drain' when the pipe is full. */
export function stdoutSink(): TextSink {
  return {
    async write(text) {
      if (!process.stdout.write(text)) await once(process.stdout, 'drain');
    },
  };
}

export class LineWriter {
  readonly #sink: TextSink;
  #parts: string[] = [];
  #chars = 0;
  /** Bytes handed to the sink so far. */
  bytes = 0;

  constructor(sink: TextSink) {
    this.#sink = sink;
  }

  /** Adds `line` and a newline; returns a promise to await only when a chunk was written. */
  line(line: string): Promise<void> | null {
    this.#parts.push(line, '\n');
    this.#chars += line.length + 1;
    return this.#chars >= chunkChars ? this.flush() : null;
  }

  flush(): Promise<void> {
    if (this.#parts.length === 0) return Promise.resolve();
    const text = this.#parts.join('');
    this.#parts = [];
    this.#chars = 0;
    this.bytes += Buffer.byteLength(text);
    return this.#sink.write(text);
  }
}

/**
 * Writes `file` through a temporary file in the same directory, synced and renamed into place only
 * when `work` succeeds, so a failed or interrupted dump never leaves a file that looks complete. An
 * existing `file` is replaced only with `force` (ERR_BAD_ARGUMENT otherwise: it may be the last
 * good dump).
 */
export async function writeFileAtomically<T>(
  file: string,
  force: boolean,
  work: (sink: TextSink) => Promise<T>,
): Promise<T> {
  const exists = await stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
  if (exists && !force) {
    throw new LightningError('ERR_BAD_ARGUMENT', `${file} exists; add --force to replace it`);
  }
  const temporary = `${file}.tmp-${process.pid}`;
  let handle: FileHandle | null = await open(temporary, 'wx');
  try {
    const sink: TextSink = {
      async write(text) {
        await handle!.write(text);
      },
    };
    const result = await work(sink);
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(temporary, file);
    await syncDirectory(dirname(file));
    return result;
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
