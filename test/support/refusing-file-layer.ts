/**
 * A file layer that makes the disk look full to the owners' logs on demand: while the file named by
 * LIGHTNING_REFUSE_FLAG exists, every write to a file under a `wal/` directory lands half of its
 * bytes and then fails with ENOSPC, as a write that runs out of space mid-way does (with the errno
 * the flag file holds instead, if any: EROFS for a file system remounted read-only). A flag holding
 * `cut-fails` also fails every truncate of those files with EIO, so the cut-back of a refused write
 * fails too. Everything else
 * (decision logs, checkpoints, manifests) is written normally. Loaded in every thread through the
 * testing-only `fileLayer` open option; the flag is a file so that one switch reaches all threads.
 */
import { existsSync, readFileSync } from 'node:fs';
import { sep } from 'node:path';
import { type FileLayer, type LayerFileHandle, nodeFileLayer } from '../../src/storage/file-layer.js';

export const refuseFlagEnvName = 'LIGHTNING_REFUSE_FLAG';

function refusing(path: string): boolean {
  const flag = process.env[refuseFlagEnvName];
  return flag !== undefined && path.includes(`${sep}wal${sep}`) && existsSync(flag);
}

function flagText(): string {
  try {
    return readFileSync(process.env[refuseFlagEnvName]!, 'utf8').trim();
  } catch {
    // Removed meanwhile: the write that saw it still fails, as it would have a moment earlier.
    return '';
  }
}

function noSpace(path: string): NodeJS.ErrnoException {
  const text = flagText();
  const code = text === '' || text === 'cut-fails' ? 'ENOSPC' : text;
  return Object.assign(new Error(`${code}: refused, write '${path}'`), { code, syscall: 'write', path });
}

class RefusingHandle implements LayerFileHandle {
  readonly #real: LayerFileHandle;
  readonly #path: string;

  constructor(real: LayerFileHandle, path: string) {
    this.#real = real;
    this.#path = path;
  }

  async write(
    buffer: Uint8Array,
    offset = 0,
    length = buffer.length - offset,
    position: number | null = null,
  ): Promise<{ bytesWritten: number }> {
    if (!refusing(this.#path)) return this.#real.write(buffer, offset, length, position);
    const half = length >>> 1;
    if (half > 0) await this.#real.write(buffer, offset, half, position);
    throw noSpace(this.#path);
  }

  async writev(
    buffers: readonly NodeJS.ArrayBufferView[],
    position?: number,
  ): Promise<{ bytesWritten: number }> {
    if (refusing(this.#path)) throw noSpace(this.#path);
    return this.#real.writev(buffers, position);
  }

  async writeFile(data: string | Uint8Array): Promise<void> {
    if (refusing(this.#path)) throw noSpace(this.#path);
    return this.#real.writeFile(data);
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

  async truncate(length?: number): Promise<void> {
    if (refusing(this.#path) && flagText() === 'cut-fails') {
      throw Object.assign(new Error(`EIO: i/o error, ftruncate '${this.#path}'`), { code: 'EIO' });
    }
    return this.#real.truncate(length);
  }

  datasync(): Promise<void> {
    return this.#real.datasync();
  }

  sync(): Promise<void> {
    return this.#real.sync();
  }

  close(): Promise<void> {
    return this.#real.close();
  }
}

export const refusingFileLayer: FileLayer = {
  ...nodeFileLayer,
  async open(path, flags) {
    const real = await nodeFileLayer.open(path, flags);
    return flags === 'r' ? real : new RefusingHandle(real, path);
  },
};

/** The entry point `installFileLayerModule` calls in each thread. */
export function createFileLayer(): FileLayer {
  return refusingFileLayer;
}
