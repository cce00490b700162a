/**
 * The tree meta page: one page per tree holding its root pointer. Its version word (the page latch)
 * guards the root and height, which change together on a root split or collapse; readers validate it
 * around loading the root. Field indices are Int32 words from the page start, after the page header.
 */
export const treeMagic = 0x54_52_45_45; // "TREE"
export const treeFormatVersion = 2;

export const kTreeMagic = 8;
export const kTreeFormatVersion = 9;
/** FNV-1a over magic and version, verified at attach. */
export const kTreeChecksum = 10;
export const kTreeRootPageId = 11;
export const kTreeHeight = 12;
/** Entry count: written by the owner without taking the meta latch, so it never makes readers restart. */
export const kTreeEntryCount = 13;
export const kTreeOverflowPageCount = 14;
/** Cells that are tombstones (MVCC): counted in the entry count, not in `count`. */
export const kTreeTombstoneCount = 15;
export const kTreeFieldEnd = 16;

/** Deepest tree the readers will descend before deciding they are looking at garbage. */
export const treeHeightMax = 32;
