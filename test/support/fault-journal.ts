/**
 * The journal of the fault-injecting file layer: one append-only file that every thread of the
 * database process appends to (O_APPEND, one write(2) per record, so records of different threads
 * never interleave and their order is the order in which the calls completed). A record is
 *
 *   total bytes u32 | header bytes u32 | header (JSON) | payload (the bytes of a write)
 *
 * little-endian. Each record is appended after the real call returned and before the layer returns
 * to the engine, so whatever the engine did next (acknowledge a write, issue the next call) comes
 * later in the journal. A SIGKILL can cut the last record short; the reader drops it, which is right:
 * the engine never saw that call return.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

/** The environment variable naming the journal file; the layer refuses to start without it. */
export const journalEnvName = 'LIGHTNING_FAULT_JOURNAL';

export type JournalHeader =
  /** A file opened for writing: `flags` as passed to open; `h` names the handle in later records. */
  | {
      readonly op: 'open';
      readonly h: string;
      readonly path: string;
      readonly flags: 'w' | 'wx' | 'a' | 'r+';
    }
  /** A write of the payload at `pos`, or at the end of the file (`pos` -1, a handle opened 'a'). */
  | { readonly op: 'write'; readonly h: string; readonly pos: number }
  | { readonly op: 'truncate'; readonly h: string; readonly length: number }
  /** fdatasync or fsync of a file: both make its data durable (its name needs a directory sync). */
  | { readonly op: 'sync'; readonly h: string }
  | { readonly op: 'rename'; readonly from: string; readonly to: string }
  | { readonly op: 'unlink'; readonly path: string }
  /** A recursive mkdir: the directory and its parents exist; those the replay has not seen are new. */
  | { readonly op: 'mkdir'; readonly path: string }
  /** A file or a directory tree removed. */
  | { readonly op: 'rm'; readonly path: string }
  /** fsync of a directory: the entries created, renamed or removed in it become durable. */
  | { readonly op: 'dirsync'; readonly path: string }
  /** A line of the workload (an operation issued, acknowledged, rejected), in order with the I/O. */
  | { readonly op: 'note'; readonly text: string };

export interface JournalRecord {
  readonly header: JournalHeader;
  readonly payload: Buffer;
}

const prefixBytes = 8;

/** Appends records to a journal; one per thread. */
export class JournalAppender {
  readonly #fd: number;

  constructor(path: string) {
    this.#fd = openSync(path, 'a');
  }

  append(header: JournalHeader, payload?: Uint8Array): void {
    const json = Buffer.from(JSON.stringify(header));
    const payloadBytes = payload?.byteLength ?? 0;
    const record = Buffer.allocUnsafe(prefixBytes + json.length + payloadBytes);
    record.writeUInt32LE(record.length, 0);
    record.writeUInt32LE(json.length, 4);
    json.copy(record, prefixBytes);
    if (payload !== undefined) record.set(payload, prefixBytes + json.length);
    // One call, or the record could interleave with another thread's: a short write is a failure.
    const written = writeSync(this.#fd, record);
    if (written !== record.length) throw new Error(`journal: short append (${written} of ${record.length})`);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Every whole record of a journal, in order; a torn last record is dropped. */
export function readJournal(path: string): JournalRecord[] {
  const bytes = readFileSync(path);
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + prefixBytes <= bytes.length) {
    const total = bytes.readUInt32LE(at);
    const headerBytes = bytes.readUInt32LE(at + 4);
    if (total < prefixBytes + headerBytes || at + total > bytes.length) break;
    const header = JSON.parse(
      bytes.toString('utf8', at + prefixBytes, at + prefixBytes + headerBytes),
    ) as JournalHeader;
    records.push({ header, payload: bytes.subarray(at + prefixBytes + headerBytes, at + total) });
    at += total;
  }
  return records;
}
