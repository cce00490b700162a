/**
 * A fault-injecting file layer (after RocksDB's FaultInjectionTestFS and SQLite's crash-test VFS),
 * loaded into the database process through the testing-only `fileLayer` open option, in the opening
 * thread and in every owner worker. It writes through to the real files, so the running database
 * sees an ordinary file system, and appends every mutating call (open for writing, write, truncate,
 * fdatasync/fsync, rename, unlink, mkdir, rm, directory fsync) to one journal shared by all threads
 * (see fault-journal.ts), with the bytes of every write.
 *
 * The journal, not the real files, is what a simulated power loss starts from: power-loss-image.ts
 * replays it and keeps only what was synced (file data by fdatasync/fsync, directory entries by a
 * directory fsync) plus a seeded random part of the rest.
 *
 * The journal path comes from LIGHTNING_FAULT_JOURNAL (worker threads share the environment).
 */
import * as fs from 'node:fs/promises';
import { resolve } from 'node:path';
import { threadId } from 'node:worker_threads';
import type { FileLayer, LayerFileHandle, LayerOpenFlags } from '../../src/storage/file-layer.js';
import { JournalAppender, journalEnvName } from './fault-journal.js';

let journal: JournalAppender | null = null;
let handlesOpened = 0;

function journalOf(): JournalAppender {
  if (journal === null) {
    const path = process.env[journalEnvName];
    if (path === undefined || path.length === 0) {
      throw new Error(`the fault file layer needs ${journalEnvName} (the journal file)`);
    }
    journal = new JournalAppender(path);
  }
  return journal;
}

/** Records a workload line in the journal, in order with the file calls of every thread. */
export function noteInJournal(text: string): void {
  journalOf().append({ op: 'note', text });
}

function bytesOf(data: string | Uint8Array): Buffer {
  return typeof data === 'string'
    ? Buffer.from(data)
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** A real FileHandle whose mutations are journaled; handles opened 'r' are not journaled at all. */
class JournaledHandle implements LayerFileHandle {
  readonly #real: fs.FileHandle;
  readonly #id: string;
  readonly #append: boolean;
  /** The file position of writes without one (node's FileHandle keeps the same). */
  #position = 0;

  constructor(real: fs.FileHandle, id: string, append: boolean) {
    this.#real = real;
    this.#id = id;
    this.#append = append;
  }

  async write(
    buffer: Uint8Array,
    offset = 0,
    length = buffer.byteLength - offset,
    position: number | null = null,
  ): Promise<{ bytesWritten: number }> {
    if (this.#append) {
      const { bytesWritten } = await this.#real.write(buffer, offset, length);
      journalOf().append(
        { op: 'write', h: this.#id, pos: -1 },
        buffer.subarray(offset, offset + bytesWritten),
      );
      return { bytesWritten };
    }
    const at = position ?? this.#position;
    const { bytesWritten } = await this.#real.write(buffer, offset, length, at);
    if (position === null) this.#position = at + bytesWritten;
    journalOf().append({ op: 'write', h: this.#id, pos: at }, buffer.subarray(offset, offset + bytesWritten));
    return { bytesWritten };
  }

  async writev(
    buffers: readonly NodeJS.ArrayBufferView[],
    position?: number,
  ): Promise<{ bytesWritten: number }> {
    const joined = Buffer.concat(buffers.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
    let written = 0;
    while (written < joined.length) {
      const at = position === undefined ? null : position + written;
      const { bytesWritten } = await this.write(joined, written, joined.length - written, at);
      if (bytesWritten === 0) break;
      written += bytesWritten;
    }
    return { bytesWritten: written };
  }

  async writeFile(data: string | Uint8Array): Promise<void> {
    const bytes = bytesOf(data);
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await this.write(bytes, written, bytes.length - written);
      if (bytesWritten === 0) throw new Error('writeFile made no progress');
      written += bytesWritten;
    }
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number | null) {
    return this.#real.read(buffer, offset, length, position);
  }

  readFile(): Promise<Buffer> {
    return this.#real.readFile();
  }

  stat(): Promise<{ size: number }> {
    return this.#real.stat();
  }

  async truncate(length = 0): Promise<void> {
    await this.#real.truncate(length);
    journalOf().append({ op: 'truncate', h: this.#id, length });
  }

  async datasync(): Promise<void> {
    await this.#real.datasync();
    journalOf().append({ op: 'sync', h: this.#id });
  }

  async sync(): Promise<void> {
    await this.#real.sync();
    journalOf().append({ op: 'sync', h: this.#id });
  }

  close(): Promise<void> {
    return this.#real.close();
  }
}

/** Whether a path exists (without following a last symbolic link). */
async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch {
    return false;
  }
}

export const faultFileLayer: FileLayer = {
  async open(path: string, flags: LayerOpenFlags): Promise<LayerFileHandle> {
    const real = await fs.open(path, flags);
    if (flags === 'r') return real;
    const id = `${threadId}.${++handlesOpened}`;
    journalOf().append({ op: 'open', h: id, path: resolve(path), flags });
    return new JournaledHandle(real, id, flags === 'a');
  },
  async rename(from, to) {
    await fs.rename(from, to);
    journalOf().append({ op: 'rename', from: resolve(from), to: resolve(to) });
  },
  async unlink(path) {
    await fs.unlink(path);
    journalOf().append({ op: 'unlink', path: resolve(path) });
  },
  async mkdir(path, options) {
    const first = await fs.mkdir(path, options);
    // Recorded whether or not this call created anything: another thread may have made the same
    // directories a moment earlier and not yet journaled them, and this thread's next records
    // (files created in there) must not come before any record of the directory.
    journalOf().append({ op: 'mkdir', path: resolve(path) });
    return first;
  },
  async rm(path, options) {
    const existed = await exists(path);
    await fs.rm(path, options);
    if (existed) journalOf().append({ op: 'rm', path: resolve(path) });
  },
  readdir: (path) => fs.readdir(path),
  readFile: fs.readFile,
  async syncDirectory(path) {
    const directory = await fs.open(path, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
    journalOf().append({ op: 'dirsync', path: resolve(path) });
  },
};

/** The entry point `installFileLayerModule` calls in each thread. */
export function createFileLayer(): FileLayer {
  journalOf();
  return faultFileLayer;
}
