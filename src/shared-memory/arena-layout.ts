/**
 * Layout of the arena header, which occupies page 0 of every arena SharedArrayBuffer. Each field is an
 * index into an Int32Array over the buffer; the header is written once at creation except for the
 * allocator fields, which only the owner writes (with Atomics.store, so other threads read whole words).
 */
export const arenaMagic = 0x4c_54_44_42; // "LTDB"
export const arenaFormatVersion = 1;

export const kArenaMagic = 0;
export const kArenaFormatVersion = 1;
export const kArenaPageSizeBytes = 2;
export const kArenaPagesMax = 3;
/** FNV-1a over the static fields above; verified when another thread attaches. */
export const kArenaHeaderChecksum = 4;
/** Pages handed out at least once: page ids below this are in use or on the free list. */
export const kArenaPagesAllocated = 5;
export const kArenaFreeListHead = 6;
export const kArenaFreePageCount = 7;
export const kArenaFieldCount = 8;

/** The static fields covered by the header checksum. */
export const arenaChecksummedFieldCount = kArenaHeaderChecksum;
