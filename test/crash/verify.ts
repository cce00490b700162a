/**
 * The parent's side of a kill: reopen the directory, read every key (and scan the whole range), check
 * it against the crash model (check-state.ts), then make the recovered database take new writes, read
 * them back exactly, and close cleanly, leaving logs that read back with no torn tail. What was found
 * (plus the parent's writes) becomes the model's baseline for the next run on the directory.
 */
import { open } from '../../src/index.js';
import { createPartitionRouter, type PartitionRouter } from '../../src/main/partition-router.js';
import { walDirectory } from '../../src/storage/layout.js';
import { readWal } from '../../src/storage/wal/index.js';
import { type CheckStats, checkRecoveredState, describeVersion, holds } from './check-state.js';
import { absent, type CrashModel, crashPartitions, type KeyVersion } from './crash-model.js';
import { encodeValue, type H32, keyCount, keyIndexOf, keyName, loadH32, type ValueSpec } from './workload.js';

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: ${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface VerifyOptions {
  readonly workers: number;
  /** The generation of the parent's own writes after recovery. */
  readonly writeGen: number;
  /** A uint32 source for the parent's writes. */
  readonly random: () => number;
}

export interface VerifyResult {
  readonly problems: string[];
  readonly stats: CheckStats;
  /** Logs the crash left with a torn tail (an interrupted write that recovery cuts), and their bytes. */
  readonly tornTails: number;
  readonly tornBytes: number;
  readonly openMs: number;
  readonly parentWrites: number;
}

const openTimeoutMs = 60_000;
const closeTimeoutMs = 30_000;

/**
 * Reopens `dir`, checks it against the model, then writes, reads back and closes. On success the
 * model's baseline becomes what was found plus the parent's writes. On problems the database is
 * closed without writing and the problems are returned (the caller keeps the evidence).
 */
export async function verifyAfterCrash(
  dir: string,
  model: CrashModel,
  options: VerifyOptions,
): Promise<VerifyResult> {
  const h32 = await loadH32();
  const router = await createPartitionRouter(crashPartitions);
  const torn = await findTornTails(dir);
  const opened = performance.now();
  const db = await within(
    open(dir, { partitions: crashPartitions, workers: options.workers }),
    openTimeoutMs,
    'open() of the crashed directory',
  );
  const openMs = performance.now() - opened;
  let closed = false;
  try {
    const observed = Array.from({ length: keyCount }, (_, key) => db.get(keyName(key)));
    const problems: string[] = [];
    // The range scan must agree with point reads, and show nothing this workload never wrote.
    let scanned = 0;
    for (const [name, value] of db.range()) {
      scanned++;
      const key = keyIndexOf(name.toString('utf8'));
      if (key === null)
        problems.push(
          `an unexpected key in the database: ${JSON.stringify(name.toString('utf8').slice(0, 80))}`,
        );
      else if (observed[key] === undefined || !observed[key]!.equals(value)) {
        problems.push(`key ${key}: range() and get() disagree`);
      }
    }
    const present = observed.filter((value) => value !== undefined).length;
    if (scanned !== present) problems.push(`range() returned ${scanned} entries, get() found ${present}`);
    const result = checkRecoveredState(model, observed, router, h32);
    problems.push(...result.problems);
    if (problems.length > 0) return { problems, stats: result.stats, ...torn, openMs, parentWrites: 0 };

    // The recovered database must take writes: a few puts (one large), deletes and batches, on
    // distinct keys so that each key's final state is known, read back exactly.
    const found = [...result.found];
    const writes = await writeAfterRecovery(db, router, h32, options, found);
    for (let key = 0; key < keyCount; key++) {
      if (!holds(h32, db.get(keyName(key)), found[key]!)) {
        problems.push(`after recovery, key ${key} does not read back as ${describeVersion(found[key]!)}`);
      }
    }
    closed = true;
    await within(db.close(), closeTimeoutMs, 'close() of the recovered database');
    // A clean close leaves every log readable to its end, with nothing to cut.
    const logs = await readWal(walDirectory(dir), { partitions: new Map(), onRecord: () => {} });
    for (const torn of logs.tornTails)
      problems.push(`after a clean close a log has a torn tail at ${torn.file}:${torn.offset}`);
    if (problems.length === 0) for (let key = 0; key < keyCount; key++) model.baseline[key] = found[key]!;
    return { problems, stats: result.stats, ...torn, openMs, parentWrites: writes };
  } finally {
    if (!closed) await within(db.close(), closeTimeoutMs, 'close() of the recovered database');
  }
}

type Database = Awaited<ReturnType<typeof open>>;

/**
 * Reads (without changing anything) every log, where a crash can leave a torn tail at the end of
 * each, to count how many the kill produced. Damage is left for open() to report.
 */
async function findTornTails(dir: string): Promise<{ tornTails: number; tornBytes: number }> {
  const logs = await readWal(walDirectory(dir), { partitions: new Map(), onRecord: () => {} }).catch(
    () => null,
  );
  const tornTails = logs?.tornTails ?? [];
  return {
    tornTails: tornTails.length,
    tornBytes: tornTails.reduce((sum, torn) => sum + torn.bytesDropped, 0),
  };
}

async function writeAfterRecovery(
  db: Database,
  router: PartitionRouter,
  h32: H32,
  options: VerifyOptions,
  found: KeyVersion[],
): Promise<number> {
  const { random, writeGen: gen } = options;
  const used = new Set<number>();
  const freshKey = (): number => {
    for (;;) {
      const key = random() % keyCount;
      if (!used.has(key)) {
        used.add(key);
        return key;
      }
    }
  };
  let seq = 0;
  const pending: Promise<void>[] = [];
  const put = (key: number, length: number): void => {
    const spec: ValueSpec = { key, gen, seq: ++seq, entry: 0, length };
    found[key] = { kind: 'value', spec };
    pending.push(db.put(keyName(key), encodeValue(h32, spec)));
  };
  for (let i = 0; i < 8; i++) put(freshKey(), random() % 4096);
  put(freshKey(), 300 * 1024);
  for (let i = 0; i < 3; i++) {
    const key = freshKey();
    found[key] = absent;
    seq++;
    pending.push(db.del(keyName(key)));
  }
  // A batch of two keys of one partition (found with the routing function), and a batch that
  // writes one key three times (only the last entry may remain).
  const first = freshKey();
  const partition = router.partitionOf(Buffer.from(keyName(first)));
  let second = -1;
  for (let key = 0; key < keyCount && second < 0; key++) {
    if (!used.has(key) && router.partitionOf(Buffer.from(keyName(key))) === partition) second = key;
  }
  const batchSeq = ++seq;
  const pair: ValueSpec[] = [first, second]
    .filter((key) => key >= 0)
    .map((key, entry) => ({ key, gen, seq: batchSeq, entry, length: 100 + (random() % 2000) }));
  for (const spec of pair) {
    used.add(spec.key);
    found[spec.key] = { kind: 'value', spec };
  }
  pending.push(
    db.batch(pair.map((spec) => ({ type: 'put', key: keyName(spec.key), value: encodeValue(h32, spec) }))),
  );
  const same = freshKey();
  const sameSeq = ++seq;
  const sameSpecs = [0, 1, 2].map(
    (entry): ValueSpec => ({ key: same, gen, seq: sameSeq, entry, length: 50 + entry }),
  );
  found[same] = { kind: 'value', spec: sameSpecs[2]! };
  pending.push(
    db.batch([
      { type: 'put', key: keyName(same), value: encodeValue(h32, sameSpecs[0]!) },
      { type: 'del', key: keyName(same) },
      { type: 'put', key: keyName(same), value: encodeValue(h32, sameSpecs[2]!) },
    ]),
  );
  await within(Promise.all(pending), 30_000, 'writes to the recovered database');
  return pending.length;
}
