import { compareBytes } from '../bytes.js';
import { get16, leafKeyAt, leafKeyLengthOffset } from '../tree/node-format.js';
import { type OptimisticView, RestartBudget, restart } from '../tree/optimistic-view.js';
import { decodeVersionValue, versionKey } from './version-key.js';

/** What one attempt returns when a page it read changed meanwhile. */
const retry = 0;

/**
 * The newest version of `key` at or before `readTimestamp` in a version store, or null (none, or a
 * tombstone): the first entry at or after versionKey(key, readTimestamp), if it is a version of `key`.
 *
 * One descent to that entry, its key compared in place and only its value copied. The entry lies in
 * the next leaf when the target sorts after every key of the leaf it descends to: then the scan goes
 * on from that leaf's fence, as a range scan does, never by a sibling link.
 */
export function seekOlderVersion(
  view: OptimisticView,
  key: Uint8Array,
  readTimestamp: number,
): Buffer | null {
  const target = versionKey(key, readTimestamp);
  let budget: RestartBudget | null = null;
  for (;;) {
    const found = trySeek(view, key, target);
    if (found !== retry) return found;
    view.restarts++;
    budget ??= new RestartBudget();
    budget.spend();
  }
}

function trySeek(view: OptimisticView, key: Uint8Array, target: Uint8Array): Buffer | null | typeof retry {
  let from = target;
  let strict = false;
  // Each leaf crossed starts above the previous one's fence, so the loop ends at the tree's edge.
  for (;;) {
    const page = view.descend(from, strict, true, false);
    if (page === restart) return retry;
    const version = view.leafVersion;
    const count = view.leafCount(page);
    if (count === restart) return retry;
    const index = view.leafSearch(page, count, from, strict);
    if (index === restart) return retry;
    if (index === count) {
      const { fencePage, fenceVersion, fenceCell } = view;
      if (!view.validate(page, version)) return retry;
      if (fencePage === 0) return null;
      const fence = view.copyFence(fencePage, fenceVersion, fenceCell);
      if (fence === null) return retry;
      from = fence;
      strict = true;
      continue;
    }
    const cell = view.leafCell(page, count, index);
    if (cell === restart) return retry;
    const u8 = view.arena.u8;
    const storedStart = leafKeyAt(u8, cell);
    const storedLength = get16(u8, cell + leafKeyLengthOffset);
    if (storedStart + storedLength > view.arena.pageOffset(page) + view.arena.pageSizeBytes) return retry;
    // A version key is the key's length (u16 BE), the key, and eight bytes of inverted timestamp.
    const isVersion =
      storedLength === key.length + 10 &&
      u8[storedStart] === key.length >>> 8 &&
      u8[storedStart + 1] === (key.length & 0xff) &&
      compareBytes(u8, storedStart + 2, key.length, key, 0, key.length) === 0;
    if (!isVersion) return view.validate(page, version) ? null : retry;
    const stored = view.copyLeafValue(page, version, cell);
    if (stored === null || !view.validate(page, version)) return retry;
    return decodeVersionValue(stored);
  }
}
