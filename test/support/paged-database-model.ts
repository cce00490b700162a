/**
 * Values and a reader thread for test/paged-database.test.ts.
 *
 * Every value the test writes is `valueBytes(key, version, length)`: the text `<key>@<version>:`
 * followed by letters that depend on the version and the position, cut (or filled) to `length`
 * bytes. Versions are unique per write and rise in the order the test issues writes, so any thread
 * can tell on its own whether a value is one its key was given (`checkValue`) and which write it came
 * from; a value shorter than its header is checked as far as it goes.
 *
 * Imported by the test for the values. Started as a worker thread (startTsWorker, workerData with
 * role 'paged-database-reader'), it attaches to the database with `db.share()`'s handle and reads
 * until told to stop: point reads of random keys and short scans, each value checked, a key's
 * versions never going back, and snapshots read twice to the same result. It counts its reads in
 * shared memory (Atomics.notify), so that the test can wait for a number of reads, never a duration.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { attach } from '../../src/index.js';
import { mulberry32 } from './seeded-random.js';

/** The key with index `index`: fixed width, so the keys sort as their indexes do. */
export function keyName(index: number): string {
  return `key/${String(index).padStart(5, '0')}`;
}

function fillByte(version: number, position: number): number {
  return 97 + ((version * 7 + position * 13 + (position >>> 6)) % 26);
}

/** The value written under `key` by the write numbered `version`, `length` bytes long (1 or more). */
export function valueBytes(key: string, version: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  const header = `${key}@${version}:`;
  const written = bytes.write(header.slice(0, length), 'latin1');
  for (let position = written; position < length; position++) bytes[position] = fillByte(version, position);
  return bytes;
}

/**
 * What `value` says of itself as a value of `key`: the write it came from (`version`), or `partial`
 * when it is too short to hold a whole header and agrees with one as far as it goes, or a problem.
 */
export type ValueCheck = { version: number } | { partial: true } | { problem: string };

export function checkValue(key: string, value: Uint8Array): ValueCheck {
  const prefix = `${key}@`;
  const head = Buffer.from(
    value.buffer,
    value.byteOffset,
    Math.min(value.length, prefix.length + 12),
  ).toString('latin1');
  const describe = () => `${value.length} bytes starting ${JSON.stringify(head)}`;
  if (value.length < prefix.length) {
    return prefix.startsWith(head) ? { partial: true } : { problem: `not a value of ${key}: ${describe()}` };
  }
  if (!head.startsWith(prefix)) return { problem: `not a value of ${key}: ${describe()}` };
  const rest = head.slice(prefix.length);
  const colon = rest.indexOf(':');
  const digits = colon < 0 ? rest : rest.slice(0, colon);
  if (!/^[0-9]*$/.test(digits) || (colon < 0 && value.length > prefix.length + digits.length)) {
    return { problem: `a value of ${key} with a broken header: ${describe()}` };
  }
  if (colon < 0) return { partial: true };
  const version = Number(digits);
  if (!Number.isSafeInteger(version) || version <= 0) return { problem: `bad version in ${describe()}` };
  if (!valueBytes(key, version, value.length).equals(value)) {
    return { problem: `${key}: the ${value.length} bytes of version ${version} are damaged` };
  }
  return { version };
}

/** Words of the reader's shared Int32Array. */
export const readerWords = {
  /** Point reads done so far (the test waits on this word). */
  reads: 0,
  /** Set to 1 by the test: finish, close and report. */
  stop: 1,
  /** Set to 1 by the reader once it stopped reading (a failure included). */
  done: 2,
} as const;

export interface PagedReaderInput {
  readonly role: 'paged-database-reader';
  readonly handle: Parameters<typeof attach>[0];
  /** Keys are keyName(0 .. keyCount - 1). */
  readonly keyCount: number;
  readonly seed: number;
  readonly shared: SharedArrayBuffer;
}

export type PagedReaderMessage =
  | { readonly type: 'ready' }
  | {
      readonly type: 'done';
      readonly reads: number;
      /** Point reads that found a value, that checked whole, and that found the key absent. */
      readonly found: number;
      readonly whole: number;
      readonly absent: number;
      readonly scans: number;
      readonly scannedEntries: number;
      readonly snapshotRereads: number;
      readonly problems: string[];
    }
  | { readonly type: 'failed'; readonly message: string };

async function runReader(input: PagedReaderInput, port: NonNullable<typeof parentPort>): Promise<void> {
  const words = new Int32Array(input.shared);
  const random = mulberry32(input.seed);
  const db = await attach(input.handle);
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 20) problems.push(text);
  };
  /** The newest version this thread saw of each key (0: none yet). */
  const newest = new Float64Array(input.keyCount);
  let reads = 0;
  let found = 0;
  let whole = 0;
  let absent = 0;
  let scans = 0;
  let scannedEntries = 0;
  let snapshotRereads = 0;
  const seen = (index: number, key: string, value: Buffer, where: string): void => {
    const check = checkValue(key, value);
    if ('problem' in check) {
      problem(`${where}: ${check.problem}`);
      return;
    }
    if (!('version' in check)) return;
    whole++;
    if (check.version < newest[index]!) {
      problem(`${where}: ${key} went back from version ${newest[index]} to ${check.version}`);
    }
    newest[index] = Math.max(newest[index]!, check.version);
  };
  port.postMessage({ type: 'ready' } satisfies PagedReaderMessage);
  try {
    while (Atomics.load(words, readerWords.stop) === 0) {
      const index = random() % input.keyCount;
      const key = keyName(index);
      const value = db.get(key);
      if (value === undefined) absent++;
      else {
        found++;
        seen(index, key, value, 'get');
      }
      reads++;
      Atomics.store(words, readerWords.reads, reads);
      Atomics.notify(words, readerWords.reads);
      if (reads % 50 === 0) {
        // A short scan from a random key: sorted, each value its key's.
        let previous = '';
        for (const [rawKey, rawValue] of db.range({ gte: key, limit: 12 })) {
          const scanned = rawKey.toString('latin1');
          if (scanned <= previous) problem(`scan from ${key}: ${scanned} after ${previous}`);
          previous = scanned;
          const scannedIndex = Number(scanned.slice(4));
          if (!(scannedIndex >= 0 && scannedIndex < input.keyCount)) problem(`scan: unknown key ${scanned}`);
          else seen(scannedIndex, scanned, rawValue, 'scan');
          scannedEntries++;
        }
        scans++;
      }
      if (reads % 200 === 0) {
        // A snapshot reads the same bytes before and after a stretch of the writer's work.
        const snapshot = db.snapshot();
        try {
          const keys = Array.from({ length: 6 }, () => keyName(random() % input.keyCount));
          const first = keys.map((k) => snapshot.get(k));
          for (let i = 0; i < 40; i++) db.get(keyName(random() % input.keyCount));
          await new Promise<void>((resolve) => setImmediate(resolve));
          keys.forEach((k, i) => {
            const again = snapshot.get(k);
            const before = first[i];
            if (before === undefined ? again !== undefined : again === undefined || !again.equals(before))
              problem(`snapshot ${snapshot.timestamp}: ${k} read twice differently`);
          });
          snapshotRereads += keys.length;
        } finally {
          snapshot.release();
        }
      }
      // Let the thread's event loop run now and then (timers, the database's own work).
      if (reads % 256 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    Atomics.store(words, readerWords.done, 1);
    Atomics.notify(words, readerWords.reads);
  }
  await db.close();
  port.postMessage({
    type: 'done',
    reads,
    found,
    whole,
    absent,
    scans,
    scannedEntries,
    snapshotRereads,
    problems,
  } satisfies PagedReaderMessage);
}

const input = workerData as Partial<PagedReaderInput> | null;
if (!isMainThread && parentPort !== null && input?.role === 'paged-database-reader') {
  const port = parentPort;
  runReader(input as PagedReaderInput, port).catch((error: unknown) => {
    const words = new Int32Array((input as PagedReaderInput).shared);
    Atomics.store(words, readerWords.done, 1);
    Atomics.notify(words, readerWords.reads);
    port.postMessage({
      type: 'failed',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    } satisfies PagedReaderMessage);
  });
}
