import { PageArena } from '../arena.js';
import { checksumWords } from '../checksum.js';
import { LightningError } from '../errors.js';
import { pageTypeTreeMeta, pType } from '../page-layout.js';
import type { PageSpace } from '../page-space.js';
import {
  kTreeChecksum,
  kTreeFormatVersion,
  kTreeMagic,
  treeFormatVersion,
  treeMagic,
} from './meta-layout.js';

/** What `share()` hands to another thread: structured-cloneable, the buffer itself is shared. */
export interface TreeHandle {
  kind: 'lightning-db/tree';
  formatVersion: number;
  sab: SharedArrayBuffer;
  metaPageId: number;
}

/** Checks a handle from another thread and attaches to its arena, verifying both headers. */
export function openTreeHandle(handle: unknown): { arena: PageArena; metaPageId: number } {
  if (
    typeof handle !== 'object' ||
    handle === null ||
    (handle as Partial<TreeHandle>).kind !== 'lightning-db/tree'
  ) {
    throw new LightningError('ERR_BAD_ARGUMENT', 'not a tree handle: pass the result of tree.share()');
  }
  const { formatVersion, sab, metaPageId } = handle as TreeHandle;
  if (formatVersion !== treeFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `tree handle format version ${String(formatVersion)}; this build reads version ${treeFormatVersion}`,
    );
  }
  const arena = PageArena.attach(sab);
  if (!Number.isInteger(metaPageId) || metaPageId <= 0 || !arena.covers(metaPageId)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `tree handle names page ${String(metaPageId)} outside its arena`,
    );
  }
  verifyTreeMeta(arena, metaPageId);
  return { arena, metaPageId };
}

/** Writes the static fields of a tree meta page and their checksum. */
export function writeTreeMetaHeader(arena: PageSpace, metaPageId: number): void {
  const word = arena.pageWordIndex(metaPageId);
  arena.u8[arena.pageOffset(metaPageId) + pType] = pageTypeTreeMeta;
  arena.i32[word + kTreeMagic] = treeMagic;
  arena.i32[word + kTreeFormatVersion] = treeFormatVersion;
  arena.i32[word + kTreeChecksum] = checksumWords([treeMagic, treeFormatVersion]) | 0;
}

export function verifyTreeMeta(arena: PageSpace, metaPageId: number): void {
  const word = arena.pageWordIndex(metaPageId);
  const i32 = arena.i32;
  const magic = i32[word + kTreeMagic]!;
  const version = i32[word + kTreeFormatVersion]!;
  if (arena.u8[arena.pageOffset(metaPageId) + pType] !== pageTypeTreeMeta || magic !== treeMagic) {
    throw new LightningError('ERR_CORRUPTION', `tree meta page ${metaPageId}: bad type or magic number`);
  }
  if (i32[word + kTreeChecksum] !== (checksumWords([magic, version]) | 0)) {
    throw new LightningError('ERR_CORRUPTION', `tree meta page ${metaPageId}: checksum mismatch`);
  }
  if (version !== treeFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `tree format version ${version}; this build reads version ${treeFormatVersion}`,
    );
  }
}
