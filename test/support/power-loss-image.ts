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

/** A directory has an identity of its own: removed and made again under one name, it is another. */
type Entry = { readonly kind: 'dir'; readonly id: number } | { readonly kind: 'file'; readonly inode: Inode };

/** A change of one directory's entries, pending until that directory is synced. */
type EntryOp =
  | { readonly kind: 'link'; readonly name: string; readonly entry: Entry }
  | { readonly kind: 'unlink'; readonly name: string }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string };

/** How much of what was not synced survives. */
export interface LossPolicy {
  /**
   * 'subset': each page of a file (4 KiB) and each change of a directory's entries survives or not on
   * its own, as when the page cache writes pages back in any order. 'prefix': the changes of each file
   * (and of each directory) survive in the order they were made, up to a random point, as a file
   * system that writes back in order would leave them (RocksDB's FaultInjectionTestFS keeps such
   * a prefix: the file cut at a position at or after its last sync).
   */
  readonly order: 'subset' | 'prefix';
  /** 'subset': the chance that each unsynced change survives; 'prefix': that all of them do. */
  readonly keep: number;
  /** The chance that a surviving ('subset') or the first lost ('prefix') write is torn at a random byte. */
  readonly tear: number;
}

/**
 * Which of `count` unsynced changes survive. 'prefix' keeps all with chance `keep`, else a random
 * number of the first; keep 0 keeps nothing and keep 1 everything, in both orders.
 */
function survivors(
  count: number,
  policy: LossPolicy,
  chance: (p: number) => boolean,
  random: () => number,
): boolean[] {
  if (policy.order === 'subset') return Array.from({ length: count }, () => chance(policy.keep));
  const kept = policy.keep <= 0 ? 0 : chance(policy.keep) ? count : random() % (count + 1);
  return Array.from({ length: count }, (_, i) => i < kept);
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

/** Directory id → its entries by name; the root is directory 0. One for the live tree, one durable. */
type Tree = Map<number, Map<string, Entry>>;
const rootId = 0;

function entriesOf(tree: Tree, dirId: number): Map<string, Entry> {
  let entries = tree.get(dirId);
  if (entries === undefined) {
    entries = new Map();
    tree.set(dirId, entries);
  }
  return entries;
}

function applyEntryOp(tree: Tree, dirId: number, op: EntryOp): void {
  const entries = entriesOf(tree, dirId);
  if (op.kind === 'link') entries.set(op.name, op.entry);
  else if (op.kind === 'unlink') entries.delete(op.name);
  else {
    const entry = entries.get(op.from);
    if (entry === undefined) return; // Its creation did not survive: the rename has nothing to move.
    entries.delete(op.from);
    entries.set(op.to, entry);
  }
}

function copyTree(tree: Tree): Tree {
  return new Map([...tree].map(([id, entries]) => [id, new Map(entries)]));
}

/**
 * The journal replayed over a starting directory. Feed records in order with `apply`; `image` can be
 * taken at any point and does not change the state.
 */
export class PowerLossReplay {
  readonly #root: string;
  #nextInode = 1;
  #nextDirectory = rootId + 1;
  readonly #live: Tree = new Map();
  readonly #durable: Tree = new Map();
  readonly #pendingEntries = new Map<number, EntryOp[]>();
  readonly #handles = new Map<string, Inode>();
  /** Records applied so far. */
  applied = 0;

  private constructor(root: string) {
    this.#root = root;
  }

  /** Starts from the directory `root` as it is now, all of it durable. */
  static async fromDirectory(root: string): Promise<PowerLossReplay> {
    const replay = new PowerLossReplay(root);
    const walk = async (dir: string, dirId: number): Promise<void> => {
      for (const dirent of await readdir(join(root, dir), { withFileTypes: true })) {
        const path = childPath(dir, dirent.name);
        let entry: Entry | null = null;
        if (dirent.isDirectory()) entry = { kind: 'dir', id: replay.#nextDirectory++ };
        else if (dirent.isFile())
          entry = { kind: 'file', inode: replay.#newInode(await readFile(join(root, path))) };
        if (entry === null) continue;
        entriesOf(replay.#live, dirId).set(dirent.name, entry);
        entriesOf(replay.#durable, dirId).set(dirent.name, entry);
        if (entry.kind === 'dir') await walk(path, entry.id);
      }
    };
    await walk('', rootId);
    return replay;
  }

  #newInode(content: Buffer): Inode {
    return { id: this.#nextInode++, durable: content, live: Buffer.from(content), pending: [] };
  }

  #relative(path: string): string {
    const inside = relative(this.#root, path);
    if (inside === '') return '';
    if (inside.startsWith('..') || inside.startsWith(sep)) {
      throw new Error(`journal names ${path}, outside the database directory ${this.#root}`);
    }
    return inside.split(sep).join('/');
  }

  /** The live entry at a relative path ('' is the root directory). */
  #lookUp(path: string): Entry | undefined {
    let entry: Entry | undefined = { kind: 'dir', id: rootId };
    if (path === '') return entry;
    for (const name of path.split('/')) {
      if (entry?.kind !== 'dir') return undefined;
      entry = this.#live.get(entry.id)?.get(name);
    }
    return entry;
  }

  #directoryId(path: string): number {
    const entry = this.#lookUp(path);
    if (entry?.kind !== 'dir') throw new Error(`journal: ${path} is not a known directory`);
    return entry.id;
  }

  #pendIn(dir: string, op: EntryOp): void {
    const dirId = this.#directoryId(dir);
    const list = this.#pendingEntries.get(dirId) ?? [];
    list.push(op);
    this.#pendingEntries.set(dirId, list);
    applyEntryOp(this.#live, dirId, op);
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
        const existing = this.#lookUp(path);
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
        if (this.#lookUp(from) === undefined) throw new Error(`journal: rename of unknown ${from}`);
        this.#pendIn(parentOf(from), { kind: 'rename', from: nameOf(from), to: nameOf(to) });
        break;
      }
      case 'unlink':
      case 'rm': {
        const path = this.#relative(header.path);
        if (this.#lookUp(path) === undefined) throw new Error(`journal: ${header.op} of unknown ${path}`);
        this.#pendIn(parentOf(path), { kind: 'unlink', name: nameOf(path) });
        break;
      }
      case 'mkdir': {
        // Each directory of the path not seen yet is new, with a pending entry in its parent.
        const path = this.#relative(header.path);
        let at = '';
        for (const name of path === '' ? [] : path.split('/')) {
          const next = childPath(at, name);
          const existing = this.#lookUp(next);
          if (existing === undefined) {
            const entry: Entry = { kind: 'dir', id: this.#nextDirectory++ };
            this.#pendIn(at, { kind: 'link', name, entry });
          } else if (existing.kind !== 'dir') throw new Error(`journal: mkdir over file ${next}`);
          at = next;
        }
        break;
      }
      case 'dirsync': {
        const dirId = this.#directoryId(this.#relative(header.path));
        for (const op of this.#pendingEntries.get(dirId) ?? []) applyEntryOp(this.#durable, dirId, op);
        this.#pendingEntries.delete(dirId);
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
    const tree = copyTree(this.#durable);
    for (const [dirId, ops] of this.#pendingEntries) {
      const kept = survivors(ops.length, policy, chance, random);
      for (const [i, op] of ops.entries()) {
        const what = op.kind === 'rename' ? `rename ${op.from} → ${op.to}` : `${op.kind} ${op.name}`;
        choices.push(`${kept[i] ? 'kept' : 'undone'}: ${what}`);
        if (kept[i]) applyEntryOp(tree, dirId, op);
      }
    }
    const files = new Map<string, Buffer>();
    const directories: string[] = [];
    const contents = new Map<number, Buffer>();
    // Only what the root still reaches: a directory whose entry was lost took its contents along.
    const walk = (dir: string, dirId: number): void => {
      for (const [name, entry] of tree.get(dirId) ?? []) {
        const path = childPath(dir, name);
        if (entry.kind === 'dir') {
          directories.push(path);
          walk(path, entry.id);
          continue;
        }
        let content = contents.get(entry.inode.id);
        if (content === undefined) {
          content = this.#survivingData(entry.inode, path, random, policy, chance, choices);
          contents.set(entry.inode.id, content);
        }
        files.set(path, content);
      }
    };
    walk('', rootId);
    return { choices, files, directories };
  }

  /** An inode's synced bytes, then each later change kept, torn or dropped. */
  #survivingData(
    inode: Inode,
    path: string,
    random: () => number,
    policy: LossPolicy,
    chance: (p: number) => boolean,
    choices: string[],
  ): Buffer {
    return policy.order === 'prefix'
      ? this.#survivingPrefix(inode, path, random, policy, chance, choices)
      : survivingPages(inode, path, random, policy, chance, choices);
  }

  #survivingPrefix(
    inode: Inode,
    path: string,
    random: () => number,
    policy: LossPolicy,
    chance: (p: number) => boolean,
    choices: string[],
  ): Buffer {
    let content: Buffer = Buffer.from(inode.durable);
    const kept = survivors(inode.pending.length, policy, chance, random);
    for (const [i, op] of inode.pending.entries()) {
      // The first write that did not survive whole may have reached the disk in part.
      const firstLost = !kept[i] && (i === 0 || kept[i - 1]!);
      const torn = op.kind === 'write' && op.bytes.length > 1 && firstLost && chance(policy.tear);
      if (op.kind === 'write' && torn) {
        const cut = 1 + (random() % (op.bytes.length - 1));
        choices.push(`torn: write of ${path} at ${op.pos}, ${cut} of ${op.bytes.length} B`);
        content = writeInto(content, op.pos, op.bytes.subarray(0, cut));
      } else if (!kept[i]) {
        choices.push(
          `dropped: ${op.kind} of ${path}${op.kind === 'write' ? ` at ${op.pos}, ${op.bytes.length} B` : ''}`,
        );
      } else if (op.kind === 'truncate') {
        choices.push(`kept: truncate of ${path} to ${op.length}`);
        content = truncateTo(content, op.length);
      } else {
        choices.push(`kept: write of ${path} at ${op.pos}, ${op.bytes.length} B`);
        content = writeInto(content, op.pos, op.bytes);
      }
    }
    return content;
  }
}

/** Page cache pages: the unit in which unsynced data reaches the disk in 'subset' order. */
const pageBytes = 4096;

/**
 * 'subset' order: each page of the file reaches the disk (or not) on its own, as write-back in any
 * order leaves it, but a page holds its writes as of one moment: the changes to it up to a random
 * one, the next of them possibly torn at a random byte. So a later write survives without an earlier
 * one only when they lie in different pages. The file's size is its size after the newest change
 * any page shows whole, or more to hold a torn piece.
 */
function survivingPages(
  inode: Inode,
  path: string,
  random: () => number,
  policy: LossPolicy,
  chance: (p: number) => boolean,
  choices: string[],
): Buffer {
  const ops = inode.pending;
  if (ops.length === 0) return Buffer.from(inode.durable);
  // The file's size after each change, and the pages each change touches (a truncate: all of them).
  const sizes: number[] = [inode.durable.length];
  for (const op of ops) {
    const before = sizes[sizes.length - 1]!;
    sizes.push(op.kind === 'write' ? Math.max(before, op.pos + op.bytes.length) : op.length);
  }
  const pageCount = Math.ceil(Math.max(...sizes) / pageBytes);
  const opsOfPage: number[][] = Array.from({ length: pageCount }, () => []);
  ops.forEach((op, i) => {
    if (op.kind === 'truncate') {
      for (const list of opsOfPage) list.push(i);
      return;
    }
    const last = Math.floor((op.pos + op.bytes.length - 1) / pageBytes);
    for (let page = Math.floor(op.pos / pageBytes); page <= last; page++) opsOfPage[page]!.push(i);
  });
  const content = Buffer.alloc(pageCount * pageBytes);
  inode.durable.copy(content);
  // The newest change some page shows whole, and the end of any torn piece: the size covers both.
  let newest = -1;
  let tornEnd = 0;
  opsOfPage.forEach((list, page) => {
    if (list.length === 0) return;
    const start = page * pageBytes;
    const end = start + pageBytes;
    const keptCount = survivors(list.length, policy, chance, random).filter(Boolean).length;
    const tornAt = keptCount < list.length && chance(policy.tear) ? keptCount : -1;
    for (let k = 0; k < list.length; k++) {
      const i = list[k]!;
      const op = ops[i]!;
      const what =
        op.kind === 'write'
          ? `write of ${path} at ${Math.max(op.pos, start)}`
          : `truncate of ${path} to ${op.length}`;
      if (k >= keptCount && k !== tornAt) {
        choices.push(`dropped: ${what} (page ${page})`);
        continue;
      }
      if (k !== tornAt || op.kind === 'truncate') newest = Math.max(newest, i);
      if (op.kind === 'truncate') {
        if (op.length < end) content.fill(0, Math.max(start, op.length), end);
        choices.push(`kept: ${what} (page ${page})`);
        continue;
      }
      const from = Math.max(op.pos, start);
      const to = Math.min(op.pos + op.bytes.length, end);
      const piece = to - from;
      const cut = k === tornAt && piece > 1 ? 1 + (random() % (piece - 1)) : piece;
      content.set(op.bytes.subarray(from - op.pos, from - op.pos + cut), from);
      if (cut < piece) tornEnd = Math.max(tornEnd, from + cut);
      choices.push(cut < piece ? `torn: ${what}, ${cut} of ${piece} B` : `kept: ${what}, ${piece} B`);
    }
  });
  return Buffer.from(content.subarray(0, Math.max(sizes[newest + 1]!, tornEnd)));
}

/** Writes an image into `target` (a directory that does not exist yet). */
export async function writeImage(image: CrashImage, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const dir of image.directories) await mkdir(join(target, dir), { recursive: true });
  for (const [path, content] of image.files) await writeFile(join(target, path), content);
}
