/**
 * A simulated power loss: replays the fault layer's journal (fault-journal.ts) over the directory as
 * it was when the journaled run started, and writes out what a disk could hold after losing power
 * at a chosen record:
 *
 * - file data: exactly the bytes every fdatasync/fsync covered, plus a random part of each later
 *   write (kept whole, torn at a random byte, or dropped) and of each later truncate (kept or not);
 * - directory entries (created, renamed, unlinked, mkdir, rm): those a directory fsync covered, plus
 *   each later one kept or undone at random. A rename is atomic: old name or new name, never both.
 *   A directory whose own entry is lost takes everything under it along.
 *
 * "Durable" starts as the whole directory at the run's start (the previous run closed cleanly, or
 * was itself rebuilt from a journal). Files the journal never opened for writing keep their content.
 * The real files of the killed process are not consulted.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { JournalRecord } from './fault-journal.js';

type DataOp =
  | { readonly kind: 'write'; readonly pos: number; readonly bytes: Buffer }
  | { readonly kind: 'truncate'; readonly length: number };

interface Inode {
  readonly id: number;
  durable: Buffer;
  live: Buffer;
  pending: DataOp[];
}

type Entry = { readonly kind: 'dir' } | { readonly kind: 'file'; readonly inode: Inode };

/** A change of one directory's entries, pending until that directory is synced. */
type EntryOp =
  | { readonly kind: 'link'; readonly name: string; readonly entry: Entry }
  | { readonly kind: 'unlink'; readonly name: string }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string };

/** How much of what was not synced survives. */
export interface LossPolicy {
  /** Chance that an unsynced write, truncate or directory change reaches the disk. */
  readonly keep: number;
  /** Of the unsynced writes that reach the disk, the chance that one is torn at a random byte. */
  readonly tear: number;
}

export interface CrashImage {
  /** What happened to each unsynced change, for messages and for the self-test. */
  readonly choices: string[];
  /** Relative path → content of every file the image holds. */
  readonly files: Map<string, Buffer>;
  readonly directories: string[];
}

function writeInto(target: Buffer, pos: number, bytes: Buffer): Buffer {
  const size = Math.max(target.length, pos + bytes.length);
  const grown = size === target.length ? target : Buffer.concat([target, Buffer.alloc(size - target.length)]);
  bytes.copy(grown, pos);
  return grown;
}

function truncateTo(target: Buffer, length: number): Buffer {
  return length <= target.length
    ? Buffer.from(target.subarray(0, length))
    : Buffer.concat([target, Buffer.alloc(length - target.length)]);
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '' : path.slice(0, at);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function childPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Relative paths ('' is the root) → entry; a namespace of the live or of the durable tree. */
type Namespace = Map<string, Entry>;

function removeTree(namespace: Namespace, path: string): void {
  namespace.delete(path);
  const prefix = `${path}/`;
  for (const key of [...namespace.keys()]) if (key.startsWith(prefix)) namespace.delete(key);
}

function reachable(namespace: Namespace, path: string): boolean {
  for (let dir = parentOf(path); ; dir = parentOf(dir)) {
    if (namespace.get(dir)?.kind !== 'dir') return false;
    if (dir === '') return true;
  }
}

function applyEntryOp(namespace: Namespace, dir: string, op: EntryOp): void {
  if (op.kind === 'link') {
    removeTree(namespace, childPath(dir, op.name));
    namespace.set(childPath(dir, op.name), op.entry);
  } else if (op.kind === 'unlink') {
    removeTree(namespace, childPath(dir, op.name));
  } else {
    const entry = namespace.get(childPath(dir, op.from));
    if (entry === undefined) return; // Its creation did not survive: the rename has nothing to move.
    namespace.delete(childPath(dir, op.from));
    namespace.set(childPath(dir, op.to), entry);
  }
}

/**
 * The journal replayed over a starting directory. Feed records in order with `apply`; `image` can be
 * taken at any point and does not change the state.
 */
export class PowerLossReplay {
  readonly #root: string;
  #nextInode = 1;
  readonly #live: Namespace = new Map();
  readonly #durable: Namespace = new Map();
  readonly #pendingEntries = new Map<string, EntryOp[]>();
  readonly #handles = new Map<string, Inode>();
  /** Records applied so far. */
  applied = 0;

  private constructor(root: string) {
    this.#root = root;
    this.#live.set('', { kind: 'dir' });
    this.#durable.set('', { kind: 'dir' });
  }

  /** Starts from the directory `root` as it is now, all of it durable. */
  static async fromDirectory(root: string): Promise<PowerLossReplay> {
    const replay = new PowerLossReplay(root);
    const walk = async (dir: string): Promise<void> => {
      for (const dirent of await readdir(join(root, dir), { withFileTypes: true })) {
        const path = childPath(dir, dirent.name);
        if (dirent.isDirectory()) {
          replay.#live.set(path, { kind: 'dir' });
          replay.#durable.set(path, { kind: 'dir' });
          await walk(path);
        } else if (dirent.isFile()) {
          const content = await readFile(join(root, path));
          const entry: Entry = { kind: 'file', inode: replay.#newInode(content) };
          replay.#live.set(path, entry);
          replay.#durable.set(path, entry);
        }
      }
    };
    await walk('');
    return replay;
  }

  #newInode(content: Buffer): Inode {
    return { id: this.#nextInode++, durable: content, live: Buffer.from(content), pending: [] };
  }

  #relative(path: string): string {
    const inside = relative(this.#root, path);
    if (inside.startsWith('..') || inside.startsWith(sep)) {
      throw new Error(`journal names ${path}, outside the database directory ${this.#root}`);
    }
    return inside.split(sep).join('/');
  }

  #pendIn(dir: string, op: EntryOp): void {
    const list = this.#pendingEntries.get(dir) ?? [];
    list.push(op);
    this.#pendingEntries.set(dir, list);
    applyEntryOp(this.#live, dir, op);
  }

  #inodeOf(handle: string): Inode {
    const inode = this.#handles.get(handle);
    if (inode === undefined) throw new Error(`journal: handle ${handle} was never opened`);
    return inode;
  }

  #dataOp(inode: Inode, op: DataOp): void {
    inode.pending.push(op);
    inode.live =
      op.kind === 'write' ? writeInto(inode.live, op.pos, op.bytes) : truncateTo(inode.live, op.length);
  }

  /** Applies one record; notes are the caller's and are ignored. */
  apply(record: JournalRecord): void {
    const header = record.header;
    switch (header.op) {
      case 'open': {
        const path = this.#relative(header.path);
        const existing = this.#live.get(path);
        if (existing?.kind === 'dir') throw new Error(`journal: open of directory ${path}`);
        let inode: Inode;
        if (existing === undefined) {
          if (header.flags === 'r+') throw new Error(`journal: ${path} opened r+ but not known to exist`);
          inode = this.#newInode(Buffer.alloc(0));
          this.#pendIn(parentOf(path), { kind: 'link', name: nameOf(path), entry: { kind: 'file', inode } });
        } else {
          if (header.flags === 'wx') throw new Error(`journal: ${path} created 'wx' but exists`);
          inode = existing.inode;
          if (header.flags === 'w') this.#dataOp(inode, { kind: 'truncate', length: 0 });
        }
        this.#handles.set(header.h, inode);
        break;
      }
      case 'write': {
        const inode = this.#inodeOf(header.h);
        const pos = header.pos === -1 ? inode.live.length : header.pos;
        this.#dataOp(inode, { kind: 'write', pos, bytes: Buffer.from(record.payload) });
        break;
      }
      case 'truncate':
        this.#dataOp(this.#inodeOf(header.h), { kind: 'truncate', length: header.length });
        break;
      case 'sync': {
        const inode = this.#inodeOf(header.h);
        inode.durable = Buffer.from(inode.live);
        inode.pending = [];
        break;
      }
      case 'rename': {
        const from = this.#relative(header.from);
        const to = this.#relative(header.to);
        if (parentOf(from) !== parentOf(to))
          throw new Error(`journal: rename across directories ${from} → ${to}`);
        if (!this.#live.has(from)) throw new Error(`journal: rename of unknown ${from}`);
        this.#pendIn(parentOf(from), { kind: 'rename', from: nameOf(from), to: nameOf(to) });
        break;
      }
      case 'unlink':
      case 'rm': {
        const path = this.#relative(header.path);
        if (!this.#live.has(path)) throw new Error(`journal: ${header.op} of unknown ${path}`);
        this.#pendIn(parentOf(path), { kind: 'unlink', name: nameOf(path) });
        break;
      }
      case 'mkdir': {
        const path = this.#relative(header.path);
        if (!this.#live.has(parentOf(path)))
          throw new Error(`journal: mkdir of ${path} in an unknown directory`);
        this.#pendIn(parentOf(path), { kind: 'link', name: nameOf(path), entry: { kind: 'dir' } });
        break;
      }
      case 'dirsync': {
        const dir = this.#relative(header.path);
        for (const op of this.#pendingEntries.get(dir) ?? []) applyEntryOp(this.#durable, dir, op);
        this.#pendingEntries.delete(dir);
        break;
      }
      case 'note':
        break;
    }
    this.applied++;
  }

  /**
   * The directory as a power loss now could leave it: durable state plus, for each unsynced change,
   * a choice drawn from `random` under `policy`. Does not change the replay.
   */
  image(random: () => number, policy: LossPolicy): CrashImage {
    const choices: string[] = [];
    const chance = (p: number): boolean => p >= 1 || (p > 0 && random() / 2 ** 32 < p);
    const namespace: Namespace = new Map(this.#durable);
    for (const [dir, ops] of this.#pendingEntries) {
      for (const op of ops) {
        const kept = chance(policy.keep);
        const what =
          op.kind === 'rename'
            ? `rename ${childPath(dir, op.from)} → ${op.to}`
            : `${op.kind} ${childPath(dir, op.name)}`;
        choices.push(`${kept ? 'kept' : 'undone'}: ${what}`);
        if (kept) applyEntryOp(namespace, dir, op);
      }
    }
    const files = new Map<string, Buffer>();
    const directories: string[] = [];
    const contents = new Map<number, Buffer>();
    const paths = [...namespace.keys()].sort();
    for (const path of paths) {
      // An entry whose directory did not survive went with it.
      if (path === '' || !reachable(namespace, path)) continue;
      const entry = namespace.get(path)!;
      if (entry.kind === 'dir') {
        directories.push(path);
        continue;
      }
      let content = contents.get(entry.inode.id);
      if (content === undefined) {
        content = Buffer.from(entry.inode.durable);
        for (const op of entry.inode.pending) {
          if (!chance(policy.keep)) {
            choices.push(
              `dropped: ${op.kind} of ${path}${op.kind === 'write' ? ` at ${op.pos}, ${op.bytes.length} B` : ''}`,
            );
            continue;
          }
          if (op.kind === 'truncate') {
            choices.push(`kept: truncate of ${path} to ${op.length}`);
            content = truncateTo(content, op.length);
          } else if (op.bytes.length > 1 && chance(policy.tear)) {
            const cut = 1 + (random() % (op.bytes.length - 1));
            choices.push(`torn: write of ${path} at ${op.pos}, ${cut} of ${op.bytes.length} B`);
            content = writeInto(content, op.pos, op.bytes.subarray(0, cut));
          } else {
            choices.push(`kept: write of ${path} at ${op.pos}, ${op.bytes.length} B`);
            content = writeInto(content, op.pos, op.bytes);
          }
        }
        contents.set(entry.inode.id, content);
      }
      files.set(path, content);
    }
    return { choices, files, directories };
  }
}

/** Writes an image into `target` (a directory that does not exist yet). */
export async function writeImage(image: CrashImage, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const dir of image.directories) await mkdir(join(target, dir), { recursive: true });
  for (const [path, content] of image.files) await writeFile(join(target, path), content);
}
