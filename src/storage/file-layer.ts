import * as fs from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { LightningError } from '../shared-memory/errors.js';

/**
 * The one seam between the durable writers (WAL segments, checkpoints, manifests, metadata, decision
 * logs) and the file system: every call that creates, writes, syncs, renames or removes one of the
 * database's files goes through the layer installed in the calling thread. The default is node's
 * own `fs/promises`, handed over as it is (its FileHandle is a LayerFileHandle), so the default path
 * costs one property read per call. A test installs a layer that records every write and sync and
 * can then rebuild the directory as a power loss would leave it.
 *
 * Readers (recovery, verify, backup) may read with `fs` directly: a layer must keep the real files
 * exactly as the calls through it left them.
 */

/** The calls the writers make on an open file; node's FileHandle has all of them. */
export interface LayerFileHandle {
  write(
    buffer: Uint8Array,
    offset?: number,
    length?: number,
    position?: number | null,
  ): Promise<{ bytesWritten: number }>;
  writev(buffers: readonly NodeJS.ArrayBufferView[], position?: number): Promise<{ bytesWritten: number }>;
  writeFile(data: string | Uint8Array): Promise<void>;
  read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<{ bytesRead: number }>;
  readFile(): Promise<Buffer>;
  stat(): Promise<{ size: number }>;
  truncate(length?: number): Promise<void>;
  /** fdatasync(2): the file's data and the metadata needed to read it back. */
  datasync(): Promise<void>;
  /** fsync(2): data and all metadata. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Open flags the writers use: 'r', 'r+', 'w' (create or truncate), 'wx' (create, fail if present), 'a'. */
export type LayerOpenFlags = 'r' | 'r+' | 'w' | 'wx' | 'a';

/** Every file-system call of the durable writers. */
export interface FileLayer {
  open(path: string, flags: LayerOpenFlags): Promise<LayerFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** `recursive: true` returns the top-most directory it created, or undefined if none. */
  mkdir(path: string, options: { recursive: true }): Promise<string | undefined>;
  /** Removes a file or a directory tree; `force` ignores a missing path. */
  rm(path: string, options: { recursive: true; force: true }): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  /** fsync(2) of a directory: makes the entries created, renamed or removed in it durable. */
  syncDirectory(path: string): Promise<void>;
}

/** node:fs/promises itself, with directory fsync spelled out. */
export const nodeFileLayer: FileLayer = {
  open: (path, flags) => fs.open(path, flags),
  rename: fs.rename,
  unlink: fs.unlink,
  mkdir: fs.mkdir,
  rm: fs.rm,
  readdir: (path) => fs.readdir(path),
  readFile: fs.readFile,
  async syncDirectory(path) {
    const directory = await fs.open(path, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  },
};

let installed: FileLayer = nodeFileLayer;

/** The layer this thread's writers use. */
export function fileLayer(): FileLayer {
  return installed;
}

/** Replaces this thread's layer (tests); `nodeFileLayer` puts the default back. */
export function installFileLayer(layer: FileLayer): void {
  installed = layer;
}

/** A module that supplies a layer: its `createFileLayer` is called once per thread that loads it. */
export interface FileLayerModule {
  createFileLayer(): FileLayer | Promise<FileLayer>;
}

const loadedModules = new Map<string, Promise<void>>();

/**
 * Loads the layer module at `modulePath` (an absolute path or file URL) and installs its layer in
 * this thread, once per module; a different module later replaces it. Testing only: the `fileLayer`
 * open option of the coordinating thread and of every owner worker comes here.
 */
export function installFileLayerModule(modulePath: string): Promise<void> {
  let loading = loadedModules.get(modulePath);
  if (loading === undefined) {
    loading = (async () => {
      const url = modulePath.startsWith('file:') ? modulePath : pathToFileURL(modulePath).href;
      const loaded = (await import(url)) as Partial<FileLayerModule>;
      if (typeof loaded.createFileLayer !== 'function') {
        throw new LightningError('ERR_BAD_ARGUMENT', `${modulePath} does not export createFileLayer()`);
      }
      installFileLayer(await loaded.createFileLayer());
    })();
    loadedModules.set(modulePath, loading);
  }
  return loading;
}
