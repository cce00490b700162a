/**
 * The power-loss workload's keys, values and journal notes, shared by the child that writes and the
 * parent that checks.
 *
 * Every key is written once, ever: `g<gen>.<seq>.<i>` (the run, the operation, the entry), and deleted
 * at most once, only after its put was acknowledged. So a key's presence says directly whether the put
 * that made it survived (or the delete that removed it), with no other write to confuse it, and its
 * value is a function of the key alone, so a value that is not exactly that is damage.
 */

/** Partitions of the databases the power-loss test creates. */
export const powerLossPartitions = 4;

export type EntryType = 'p' | 'd';
export interface OpEntry {
  readonly type: EntryType;
  readonly key: string;
}

/** put, del, batch (db.batch), tx (db.transaction). */
export type OpKind = 'put' | 'del' | 'batch' | 'tx';

function keyHash(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/** The one value a key ever holds: the key, then bytes derived from it; mostly small, some large. */
export function valueOfKey(key: string): Buffer {
  const hash = keyHash(key);
  const length = hash % 16 === 0 ? 6000 + (hash % 20_000) : hash % 600;
  const value = Buffer.alloc(key.length + 1 + length);
  value.write(`${key}=`);
  for (let i = 0; i < length; i++) value[key.length + 1 + i] = (hash + i * 31) & 0xff;
  return value;
}

/** "I <seq> <kind> p:key,d:key": written to the journal before the call. */
export function issueNote(seq: number, kind: OpKind, entries: readonly OpEntry[]): string {
  return `I ${seq} ${kind} ${entries.map((e) => `${e.type}:${e.key}`).join(',')}`;
}

export interface ParsedNote {
  readonly tag: 'I' | 'A' | 'X' | 'C' | 'R';
  readonly seq: number;
  readonly kind?: OpKind;
  readonly entries?: OpEntry[];
  readonly detail?: string;
}

/**
 * Notes: "I seq kind entries" issued; "A seq" acknowledged; "X seq code" rejected; "C seq" a
 * checkpoint issued; "R 0" the child's database finished opening.
 */
export function parseNote(text: string): ParsedNote {
  const [tag, seq, kind, list] = text.split(' ');
  if (tag === 'I') {
    const entries = (list ?? '')
      .split(',')
      .map((item) => ({ type: item[0] as EntryType, key: item.slice(2) }));
    return { tag, seq: Number(seq), kind: kind as OpKind, entries };
  }
  if (tag === 'A' || tag === 'X' || tag === 'C' || tag === 'R')
    return { tag, seq: Number(seq), ...(kind === undefined ? {} : { detail: kind }) };
  throw new Error(`unknown workload note: ${text}`);
}
